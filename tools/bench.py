"""
Speed, measured side by side in one run and reported as a ratio. Three benchmarks:

    python bench.py                                  # models: ViT-B/16 ours vs torchvision, batch 2, 224x224, CPU
    python bench.py --device=cuda --batch=64 --dtype=bfloat16
    python bench.py --backbone=vit --dim=192 --depth=6 --num_heads=3 --img_size=64 --patch_size=8 --batch=32
    python bench.py --backbone=mvit                  # MViTv2-S, batch 2, 16x224x224 videos, on the CPU
    python bench.py --backbone=mvit --mvit_preset=tiny --num_frames=8 --img_size=32 --batch=32 --steps=10
    python bench.py --backbone=mvit --num_frames=32 --grad_checkpoint   # also ours with activation checkpointing
    python bench.py --objective                      # the MultiTrain objective vs plain cross-entropy, ViT-B/16
    python bench.py --decode                         # reading clips: ours vs torchcodec vs decoding everything

Models: this project's model and torchvision's of the same shape carry the same weights (ours is converted from
torchvision's), so both the outputs and the work are the same; each step is forward + backward of the mean
logit. For the MViT, torchvision's MViT is built from the block table of --mvit_preset with torchvision's switches
(class token, relative positions), as from_torchvision requires: for mvit_v2_s that is torchvision's mvit_v2_s.
Stochastic depth and dropout are off in both models, so that both do the same work. With --grad_checkpoint, a
third contender is our model with activation checkpointing of its blocks (grad_checkpoint=True): its step peak
memory against ours without, for the compute it adds.

Objective: one training step (forward + backward) of the same model on the same mixed batch, with plain
cross-entropy per dataset against the full MultiTrain objective (every head on every sample, projections between
four label spaces of K400/MiT/SSv2/ActivityNet sizes, the 768 -> 4096 -> 768 expander with the informative loss,
uncertainty weights). The paper calls the overhead negligible.

Decode: milliseconds for one process to read a clip at a random start, an IV-ViT training clip (8 frames over
2.67 s) and an MViT one (16x4: 16 frames 4 apart), from two videos: a Kinetics-like one (10 s of 452x340 H.264 at
30 fps, a key frame every 2 s, an AAC track) and a UCF101-like one (7 s of 320x240 XviD AVI at 29.97 fps, a key
frame every 12 frames, an MP3 track). The contenders: decode.read_clips (see decode.py), torchcodec when installed
(the PyTorch project's decoder, an optional import: it needs FFmpeg's shared libraries from the system; its fast
seek mode, one FFmpeg thread like ours), decoding from the start to the clip's last frame, and decoding the whole
video. Every file is opened anew for every clip, as a dataset does, and torch runs one thread, as in a data-loader
worker (torchcodec would otherwise spread its copies over both cores). The frames of every clip are checked equal
across all.

In every benchmark the contenders alternate step by step, so that a machine that slows down mid-run slows all
alike; the median step time is reported. Models and objective also print the FLOPs of a step
(torch.utils.flop_counter), the achieved TFLOP/s, the step's peak memory (what a step holds at its peak above what
was held before it: on a GPU from torch.cuda's counters, on a Linux CPU from the resident set of a second process,
see step_peak), and on a GPU the MFU against the GPU's bf16 dense peak (--peak_tflops, 989 for an H100/H200 SXM).
"""

import argparse
import copy
import os
import statistics
import subprocess
import sys
from pathlib import Path
import tempfile
import time
import types
from contextlib import nullcontext
from fractions import Fraction

import av
import numpy as np
import torch
import torchvision
try:  # optional, for --decode: it needs FFmpeg's shared libraries from the system (see the README)
    from torchcodec.decoders import VideoDecoder
except (ImportError, OSError, RuntimeError):
    VideoDecoder = None
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import decode
from tools import encode
import losses
from model import MVIT_PRESETS, VisionTransformer
from pretrained import from_torchvision


def alternate(steps, n, sync=lambda: None, warmup=2):
    """Run the callables of steps ({name: fn}) in turn, n + warmup times each; their median times after warm-up."""
    times = {name: [] for name in steps}
    for i in range(n + warmup):
        for name, fn in steps.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def step_peak(fn, on_gpu):
    """The memory a training step holds at its peak above what was held before it (activations, the gradients'
    first allocation, workspace), in MiB, after a warm-up step. On a GPU from the caching allocator's counters; on a
    CPU from the process's resident set (Linux /proc), which follows the tensors only when the C allocator hands
    freed blocks back to the system: peak_in_child() runs this in a process started with that setting."""
    fn()
    if on_gpu:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    before = resident('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets the peak resident set size, VmHWM
    fn()
    return (resident('VmHWM') - before) / 2 ** 20


def resident(key):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ':'))


def peak_in_child(name):
    """step_peak of contender name, measured by this script run again with --peak_of=name in a fresh process whose
    glibc malloc serves every block over 64 KiB with mmap, so that a freed tensor leaves the resident set."""
    if not os.path.exists('/proc/self/clear_refs'):
        return None  # not Linux: no per-step peak on the CPU
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    child = subprocess.run([sys.executable, __file__, *sys.argv[1:], f'--peak_of={name}'], env=env,
                           capture_output=True, text=True, check=True)
    return float(child.stdout.split()[-1])


def measure(steps, flops, args, sync, reference):
    """Each contender's median step time, TFLOP/s and step peak memory (on a GPU also the MFU), then the ratio of
    the first contender's time to the second's. With --peak_of=name, only print that contender's step peak."""
    on_gpu = args.device.startswith('cuda')
    if args.peak_of:
        print(step_peak(steps[args.peak_of], on_gpu))
        return
    medians = alternate(steps, args.steps, sync)
    peak = {name: step_peak(fn, True) if on_gpu else peak_in_child(name) for name, fn in steps.items()}
    for name, median in medians.items():
        line = f'{name:<14} {median * 1000:9.1f} ms/step  {flops[name] / median / 1e12:7.3f} TFLOP/s'
        if on_gpu:
            line += f'  MFU {100 * flops[name] / median / 1e12 / args.peak_tflops:5.1f}%'
        line += f'  step peak memory {peak[name]:.1f} MiB' if peak[name] is not None else ''
        print(line)
    first, second = list(medians)[:2]
    print(f'ratio {first} / {second}: {medians[first] / medians[second]:.3f} ({reference})')


def count_flops(fn):
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# -----------------------------------------------------------------------------
# models: ours against torchvision's


def torchvision_mvit(preset, num_frames, img_size):
    """torchvision's MViT with the block table of our preset (mvit_v2_s itself for that preset)."""
    from torchvision.models.video.mvit import MSBlockConfig
    blocks = [MSBlockConfig(heads, dim_in, dim_out, [3, 3, 3], [3, 3, 3], list(q_stride), list(kv_stride))
              for heads, dim_in, dim_out, q_stride, kv_stride in MVIT_PRESETS[preset]['blocks']]
    return torchvision.models.video.MViT((img_size, img_size), num_frames, blocks, residual_pool=True,
                                         residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True,
                                         dropout=0.0, num_classes=400)


def bench_models(args, device, autocast, sync):
    if args.backbone == 'vit':
        theirs = torchvision.models.VisionTransformer(image_size=args.img_size, patch_size=args.patch_size,
                                                      num_layers=args.depth, num_heads=args.num_heads,
                                                      hidden_dim=args.dim, mlp_dim=4 * args.dim, num_classes=1000)
        shape = (args.batch, 3, args.img_size, args.img_size)
        what = (f'dim {args.dim}, depth {args.depth}, heads {args.num_heads}, {args.img_size}x{args.img_size} '
                f'patch {args.patch_size}')
    else:
        theirs = torchvision_mvit(args.mvit_preset, args.num_frames, args.img_size)
        shape = (args.batch, 3, args.num_frames, args.img_size, args.img_size)
        what = f'{args.mvit_preset} blocks, {args.num_frames}x{args.img_size}x{args.img_size}'
    ours = from_torchvision(theirs, 'bench')
    theirs, ours = theirs.to(device).train(), ours.to(device).train()
    x = torch.randn(*shape, device=device)

    def step(forward):
        with autocast:
            loss = forward().float().mean()
        loss.backward()

    steps = {'ours': lambda: step(lambda: ours(x, 'bench')), 'torchvision': lambda: step(lambda: theirs(x))}
    if args.grad_checkpoint:  # the same weights, each block recomputed in backward (model.run_block)
        checkpointed = copy.deepcopy(ours)
        checkpointed.grad_checkpoint = True
        steps['ours_grad_ckpt'] = lambda: step(lambda: checkpointed(x, 'bench'))
    flops = count_flops(steps['ours'])
    if not args.peak_of:
        print(f'{args.backbone}: {what}, batch {args.batch}; {flops / 1e9:.1f} GFLOP per step')
    measure(steps, {name: flops for name in steps}, args, sync, 'below 1: ours is faster')


# -----------------------------------------------------------------------------
# the MultiTrain objective against plain cross-entropy

PAPER_CLASSES = {'k400': 400, 'mit': 339, 'ssv2': 174, 'actnet': 200}
OBJECTIVES = {
    'multitrain': dict(projection='add', var_weight=1.0, cov_weight=1.0, uncertainty=True),
    'cross-entropy': dict(projection='none', var_weight=0.0, cov_weight=0.0, uncertainty=False),
}  # the first is timed against the second


def bench_objective(args, device, autocast, sync):
    model = VisionTransformer(PAPER_CLASSES, img_size=args.img_size, patch_size=args.patch_size, dim=args.dim,
                              depth=args.depth, num_heads=args.num_heads).to(device).train()
    objectives = {name: losses.Objective(PAPER_CLASSES, model.num_features, types.SimpleNamespace(
        label_smoothing=0.0, projection_init='normal', expander_hidden=4096, expander_out=768, loss_weights={},
        **switches)).to(device) for name, switches in OBJECTIVES.items()}
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, generator=generator).to(device)
    ds = torch.arange(args.batch) % len(PAPER_CLASSES)                # every dataset in the mixed batch
    y = torch.stack([torch.randint(c, (), generator=generator) for c in
                     [list(PAPER_CLASSES.values())[k] for k in ds.tolist()]])
    names, ds, y = tuple(PAPER_CLASSES), ds.to(device), y.to(device)

    def step(objective):
        with autocast:
            loss, *_ = objective(model, names, x, y, ds)
        loss.backward()

    steps = {name: (lambda o=objective: step(o)) for name, objective in objectives.items()}
    flops = {name: count_flops(fn) for name, fn in steps.items()}
    if not args.peak_of:
        print(f'objective: ViT dim {args.dim}, depth {args.depth}, {args.img_size}x{args.img_size} patch '
          f'{args.patch_size}, batch {args.batch} mixing {len(names)} datasets '
          f'({", ".join(f"{n} {c}" for n, c in PAPER_CLASSES.items())} classes)')
    measure(steps, flops, args, sync, 'the step-time overhead of the full objective is ratio - 1')


# -----------------------------------------------------------------------------
# decoding a training clip


def panning_frame(t, xx, yy, rng):
    """Frame t (H, W, 3) uint8 of a panning texture with moving discs; xx, yy: the pixel grid (H, W)."""
    height, width = xx.shape
    x, y = xx + 2 * t, yy + 0.5 * t  # the camera pans
    image = np.stack([128 + 60 * np.sin(x / 17 + np.sin(y / 23)), 128 + 60 * np.sin(y / 13 + x / 41),
                      128 + 50 * np.cos((x + y) / 29)], -1) + rng.normal(0, 4, (height, width, 3))
    for k in range(4):  # discs that move on their own
        cx, cy = (50 + 97 * k + 3 * t * (k + 1)) % width, (60 + 70 * k + np.sin(t / 10 + k) * 40) % height
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < (20 + 5 * k) ** 2] = (255 * (k % 2), 80 * k, 255 - 60 * k)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_kinetics_like(path, seconds=10, fps=30, width=452, height=340, seed=0):
    """A Kinetics-like H.264 + AAC MP4 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W)
    with av.open(str(path), 'w', format='mp4') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.codec_context.gop_size = 2 * fps  # a key frame every 2 s
        encode.write_sine(container, seconds, 440)
        for t in range(round(seconds * fps)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(panning_frame(t, xx, yy, rng), format='rgb24')))
        container.mux(stream.encode())


def write_ucf_like(path, seconds=7, fps=Fraction(30000, 1001), width=320, height=240, seed=0):
    """A UCF101-like XviD + MP3 AVI (see the module docstring), written by encode.write_video."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W)
    frames = np.stack([panning_frame(t, xx, yy, rng) for t in range(round(seconds * fps))])  # (T, H, W, 3)
    encode.write_video(path, frames, fps, 'mpeg4', audio=True, key_every=12)


def read_from_start(path, indices, whole):
    """Frames at indices (N,) decoding from the first frame: up to the last index, or every frame (whole)."""
    with av.open(str(path)) as container:
        stream, _ = decode._first_video_stream(container)
        wanted, last, arrays = set(indices.tolist()), int(indices.max()), {}
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                arrays[i] = frame.to_ndarray(format='rgb24')  # (H, W, 3)
            if i == last and not whole:
                break
    return torch.from_numpy(np.stack([arrays[i] for i in indices.tolist()])).permute(0, 3, 1, 2)  # (N, 3, H, W)


def torchcodec_version():
    if VideoDecoder is None:
        return 'not installed'
    import torchcodec
    from torchcodec._core import get_ffmpeg_library_versions
    return f"{torchcodec.__version__} (FFmpeg {get_ffmpeg_library_versions()['ffmpeg_version']})"


def read_torchcodec(path, indices):
    """Frames at indices (N,) read by torchcodec, the way its documentation recommends for sampling clips."""
    decoder = VideoDecoder(str(path), seek_mode='approximate', num_ffmpeg_threads=1)
    return decoder.get_frames_at(indices.tolist()).data  # (N, 3, H, W)


DECODE_CLIPS = {'8 over 2.67 s': dict(sampler='window', num_frames=8, clip_seconds=2.67),
                '16x4': dict(sampler='stride', num_frames=16, frame_stride=4)}


def bench_decode(args):
    contenders = ['seek'] + (['torchcodec'] if VideoDecoder else []) + ['start', 'whole']
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {args.decode_video: args.decode_video} if args.decode_video else {
            'Kinetics-like H.264': os.path.join(tmp, 'kinetics_like.mp4'),
            'UCF101-like XviD': os.path.join(tmp, 'ucf101_like.avi')}
        if not args.decode_video:
            write_kinetics_like(videos['Kinetics-like H.264'])
            write_ucf_like(videos['UCF101-like XviD'])
        for video, path in videos.items():
            with av.open(str(path)) as container:
                stream, fps, count, _ = decode._video_stream(container)
                about = f'{stream.codec_context.width}x{stream.codec_context.height} {stream.codec_context.name}, ' \
                        f'{count} frames at {fps:.2f} fps'
            for clip, spec in DECODE_CLIPS.items():
                def indices(u):
                    return decode.clip_indices(spec, count, fps, u)[0]
                methods = {
                    'seek': lambda u: decode.read_clips(path, spec, u)[0],
                    'torchcodec': lambda u: read_torchcodec(path, indices(u)),
                    'start': lambda u: read_from_start(path, indices(u), whole=False),
                    'whole': lambda u: read_from_start(path, indices(u), whole=True),
                }
                generator = torch.Generator().manual_seed(0)
                times = {name: [] for name in contenders}
                cpu = {name: [] for name in contenders}  # process CPU time: steadier on a shared machine
                for i in range(args.steps + 2):  # all in turn on the same clip, as alternate() does for models,
                    u = torch.rand(1, 1, generator=generator, dtype=torch.float64).expand(1, spec['num_frames'])
                    clips = {}  # each clip in another order: none always runs after the slow whole-video decode
                    for name in contenders[i % len(contenders):] + contenders[:i % len(contenders)]:
                        t0, c0 = time.perf_counter(), time.process_time()
                        clips[name] = methods[name](u)
                        if i >= 2:
                            times[name].append(time.perf_counter() - t0)
                            cpu[name].append(time.process_time() - c0)
                    assert all(torch.equal(clips[name], clips['whole']) for name in contenders), (video, clip, i)
                rows.append((f'{video} ({about})', clip, *({name: statistics.median(t) for name, t in d.items()}
                                                           for d in (times, cpu))))
    print(f'decode: one process, {args.steps} clips at random starts per row, each contender in turn on the same '
          f'clip (frames equal); median ms per clip (wall clock, and CPU time of the process), and how many times '
          f'longer than seek it takes')
    for video, clip, wall, cpu in rows:
        print(f'{video}, clip {clip}:')
        for what, medians in (('wall', wall), ('cpu ', cpu)):
            print(f'  {what}  ' + '  '.join(f'{name} {medians[name] * 1e3:.2f} ms '
                                            f'({medians[name] / medians["seek"]:.2f}x)' for name in contenders))


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--objective', action='store_true', help='the MultiTrain objective vs cross-entropy')
    parser.add_argument('--decode', action='store_true', help='clip decoding: ours vs torchcodec vs from the start')
    parser.add_argument('--decode_video', default=None, help='--decode: a video file (default: two synthetic ones)')
    parser.add_argument('--backbone', default='vit', choices=['vit', 'mvit'])
    parser.add_argument('--img_size', type=int, default=224)
    parser.add_argument('--num_frames', type=int, default=16, help='mvit: frames per clip')
    parser.add_argument('--mvit_preset', default='mvit_v2_s', choices=list(MVIT_PRESETS), help='mvit: block table')
    parser.add_argument('--patch_size', type=int, default=16)
    parser.add_argument('--dim', type=int, default=768)
    parser.add_argument('--depth', type=int, default=12)
    parser.add_argument('--num_heads', type=int, default=12)
    parser.add_argument('--batch', type=int, default=None, help='default 2 (8 with --objective: 2 per dataset)')
    parser.add_argument('--steps', type=int, default=None, help='timed steps per contender after 2 warm-up steps '
                        '(default 10; 3 for mvit; 100 clips for --decode)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'], help='autocast dtype on GPU')
    parser.add_argument('--grad_checkpoint', action='store_true', help='models: also ours with grad_checkpoint=True')
    parser.add_argument('--peak_of', default=None, help=argparse.SUPPRESS)  # set by peak_in_child
    parser.add_argument('--peak_tflops', type=float, default=989.0, help='GPU peak for the MFU (bf16 dense)')
    args = parser.parse_args()
    args.batch = args.batch or (8 if args.objective else 2)
    args.steps = args.steps or (100 if args.decode else 3 if args.backbone == 'mvit' else 10)
    torch.manual_seed(0)
    on_gpu = args.device.startswith('cuda')
    autocast = torch.autocast('cuda', dtype=torch.bfloat16) if on_gpu and args.dtype == 'bfloat16' else nullcontext()
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    if not args.peak_of:
        print(f'{args.device}, {args.dtype if on_gpu else "float32"}, torch {torch.__version__}, '
              f'torchvision {torchvision.__version__}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})'
              + (f', torchcodec {torchcodec_version()}' if args.decode else ''))
    if args.decode:
        torch.set_num_threads(1)  # as DataLoader does in its workers, where clips are read
        bench_decode(args)
    elif args.objective:
        bench_objective(args, args.device, autocast, sync)
    else:
        bench_models(args, args.device, autocast, sync)

"""
Speed, measured side by side in one run and reported as a ratio. Five benchmarks:

    python -m tools.bench                                  # models: ViT-B/16 ours vs torchvision, batch 2, 224x224, CPU
    python -m tools.bench --device=cuda --batch=64 --dtype=bfloat16
    python -m tools.bench --backbone=vit --dim=192 --depth=6 --num_heads=3 --img_size=64 --patch_size=8 --batch=32
    python -m tools.bench --backbone=mvit                  # MViTv2-S, batch 2, 16x224x224 videos, on the CPU
    python -m tools.bench --backbone=mvit --mvit_preset=tiny --num_frames=8 --img_size=32 --batch=32 --steps=10
    python -m tools.bench --backbone=mvit --num_frames=32 --grad_checkpoint   # also ours with activation checkpointing
    python -m tools.bench --objective                      # the MultiTrain objective vs plain cross-entropy, ViT-B/16
    python -m tools.bench --decode                         # reading clips: ours vs torchcodec vs decoding everything
    python -m tools.bench --loader                         # a training sample: ours vs torchcodec + transforms.v2
    python -m tools.bench --prepare                        # prepared copies (tools/prepare.py) vs the original

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

Loader: samples per second of one data-loader worker (one process, torch on one thread) running the full training
pipeline of a video sample, data.VideoDataset's decoding, random resize, crop, flip and normalisation, then
default_collate of a batch, against a reference pipeline built from torchcodec (when installed) and
torchvision.transforms.v2 with the same settings, which must make the same sample from the same seed; on the demo's
video (64x48 XviD, 32x32 crops) and a Kinetics-like one as real downloads are (454x256 H.264 at 25 fps, 250 frames,
one key frame, 224x224 crops; 8 frames over 2.67 s as IV-ViT, and 16x4 as MViT), or on --loader_video files.

Prepare: for that Kinetics-like video and the UCF101-like one, the original against copies written by
tools/prepare.py with several key-frame intervals, qualities and with or without x264's tune fastdecode, and against
a frame folder (JPEG, quality 90, read with frames=True): file size, encoding time, PSNR against the original's
frames, clips per second of decode.read_clips, and samples per second of the full training pipeline.

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
try:  # optional, for --decode: it needs FFmpeg's shared libraries from the system (docs/speed.md)
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
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets the peak resident set size, VmHWM, to the resident set now
    before = resident('VmHWM')  # read after the reset: the resident set may shrink between two reads of it
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


def write_kinetics_like(path, seconds=10, fps=30, width=452, height=340, seed=0, key_every=60):
    """A Kinetics-like H.264 + AAC MP4 (see the module docstring): a key frame every key_every frames (2 s), or
    only the first one for key_every=None, as in many real downloads (x264's scene-cut key frames off)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W)
    with av.open(str(path), 'w', format='mp4') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.codec_context.gop_size = key_every or round(seconds * fps) + 1
        if key_every is None:
            stream.options = {'sc_threshold': '0'}
        encode.write_sine(container, seconds, 440)
        for t in range(round(seconds * fps)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(panning_frame(t, xx, yy, rng), format='rgb24')))
        container.mux(stream.encode())


KINETICS_REAL = dict(seconds=10, fps=25, width=454, height=256, key_every=None)  # as a real download checked


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
# the full training pipeline of a video sample: decode, augment, collate


LOADER_CLIPS = {'8 over 2.67 s': dict(sampler='window', num_frames=8, clip_seconds=2.67),
                '16x4': dict(sampler='stride', num_frames=16, frame_stride=4)}
DEMO = dict(img_size=32, spec=dict(sampler='window', num_frames=8, clip_seconds=2.67, flip=False))  # config.py


def video_dataset(path, clip, img_size, frames_fps=None):
    """A one-video training VideoDataset (data.py) with clip's settings and the project's defaults for the rest;
    frames_fps: read the video's frame folder (decode.frame_folder, under the video's folder) instead."""
    import config
    import data
    frames = dict(frames=True, frames_fps=frames_fps) if frames_fps else {}
    spec = config.dataset_spec('bench', dict(format='ucf101', root=str(Path(path).parent), **clip, **frames))
    cfg = types.SimpleNamespace(img_size=img_size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                num_temporal_clips=1, num_spatial_crops=1)
    return data.VideoDataset([(str(path), 0)], ['x'], True, spec, cfg)


def reference_sample(path, dataset, seed):
    """The same training sample as dataset's (the same seed: the same frames, resize, crop and flip) from a reference
    pipeline: torchcodec's decoder (its fast seek mode, one FFmpeg thread) and torchvision.transforms.v2, with the
    sampler's index arithmetic of decode.py so that both read the same frames."""
    from torchvision.transforms import v2
    spec = dataset.spec
    cfg = dataset.cfg
    low, high = spec['short_side']
    transform = v2.Compose([v2.RandomResize(round(low * cfg.img_size), round(high * cfg.img_size) + 1, antialias=True),
                            v2.RandomCrop(cfg.img_size), v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(cfg.mean, cfg.std)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = VideoDecoder(str(path), seek_mode='approximate', num_ffmpeg_threads=1)
        u = decode.train_positions(spec['sampler'], spec['num_frames'])
        indices = decode.clip_indices(spec, decoder.metadata.num_frames, decoder.metadata.average_fps, u)[0]
        clip = decoder.get_frames_at(indices.tolist()).data          # (T, 3, H, W)
        return transform(clip).permute(1, 0, 2, 3), 0                  # (3, T, S, S)


def time_pipelines(pipelines, steps, batch):
    """{name: fn(seed) -> (sample, label)} run in turn, a batch of `batch` samples (seeds shared by all) and its
    collation a step, steps + 2 times each, the first two not timed; the order rotates every step. Returns
    ({name: median wall seconds per sample}, {name: median CPU seconds per sample})."""
    from torch.utils.data import default_collate
    names = list(pipelines)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for i in range(steps + 2):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            default_collate([pipelines[name](i * batch + b) for b in range(batch)])
            if i >= 2:
                wall[name].append((time.perf_counter() - t0) / batch)
                cpu[name].append((time.process_time() - c0) / batch)
    return ({name: statistics.median(t) for name, t in wall.items()},
            {name: statistics.median(t) for name, t in cpu.items()})


def bench_loader(args):
    """Samples per second for one worker (one process, torch on one thread as in a DataLoader worker) of the full
    training pipeline, data.VideoDataset's decode + augment and default_collate, against the reference pipeline
    (torchcodec + torchvision.transforms.v2) on the same files, samples checked equal."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = []  # (video, clip name, clip settings, image size)
        if args.loader_video:
            rows += [(path, f'{path}, {name}', clip, args.img_size)
                     for path in args.loader_video for name, clip in LOADER_CLIPS.items()]
        else:
            from tools import synthetic
            demo = os.path.join(tmp, 'demo.avi')  # a video of the demo's motions dataset, as its writer writes it
            frames = synthetic.render_video('BounceBall', np.random.default_rng(0), 64, 48, 75)
            encode.write_video(demo, frames, 25, 'mpeg4')
            kinetics = os.path.join(tmp, 'kinetics_like.mp4')
            write_kinetics_like(kinetics, **KINETICS_REAL)
            rows += [(demo, "the demo's (64x48 XviD, 8 frames over 2.67 s)", DEMO['spec'], DEMO['img_size'])]
            rows += [(kinetics, f'Kinetics-like (454x256 H.264, one key frame), {name}', clip, 224)
                     for name, clip in LOADER_CLIPS.items()]
        print(f'loader: one worker (torch on one thread), the full training pipeline (decode, augment, collate) of '
              f'batches of {args.batch}, {args.steps} batches per row, the pipelines in turn on the same samples; '
              f'samples/s from the median time per sample (wall clock, and CPU time of the process)')
        if VideoDecoder is None:
            print('reference: torchcodec is not installed (pip install torchcodec; it needs FFmpeg\'s shared '
                  'libraries, e.g. apt-get install ffmpeg): only ours is measured')
        for path, name, clip, img_size in rows:
            dataset = video_dataset(path, clip, img_size)
            pipelines = {'ours': lambda seed, d=dataset: d[(0, seed)]}
            if VideoDecoder is not None:
                pipelines['torchcodec'] = lambda seed, p=path, d=dataset: reference_sample(p, d, seed)
                same = torch.equal(pipelines['ours'](0)[0], pipelines['torchcodec'](0)[0])
                assert same, f'{path}: the reference pipeline made another sample'
            wall, cpu = time_pipelines(pipelines, args.steps, args.batch)
            print(f'{name}, {img_size}x{img_size}:')
            for what, medians in (('wall', wall), ('cpu ', cpu)):
                line = '  '.join(f'{n} {1 / t:.1f} samples/s' for n, t in medians.items())
                if 'torchcodec' in medians:
                    line += f'  ratio ours / torchcodec {medians["torchcodec"] / medians["ours"]:.2f}x'
                print(f'  {what}  {line}')


# -----------------------------------------------------------------------------
# a prepared copy (tools/prepare.py) against the original and a frame folder

PREPARED = {  # the variants of tools.prepare.encode_video compared; the first is the default
    'gop 16 fastdecode': dict(gop=16, crf=23, fastdecode=True),
    'gop 16': dict(gop=16, crf=23, fastdecode=False),
    'gop 8 fastdecode': dict(gop=8, crf=23, fastdecode=True),
    'gop 32 fastdecode': dict(gop=32, crf=23, fastdecode=True),
    'gop 16 fastdecode crf 18': dict(gop=16, crf=18, fastdecode=True),
    'gop 16 fastdecode crf 28': dict(gop=16, crf=28, fastdecode=True),
}


def all_frames(path):
    """Every frame of a video as decode.py reads it, (N, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        count = decode._video_stream(container)[2]
    return decode.read_video_frames(path, list(range(count))).permute(0, 2, 3, 1).numpy()


def bench_prepare(args):
    """For a Kinetics-like and a UCF101-like video: the original, prepared copies (PREPARED) and a frame folder
    (JPEG, quality 90): size, encoding time, PSNR against the original's frames, clips/s with decode.read_clips
    (all, in turn on the same clips) and samples/s of the full training pipeline (the original, the default
    copy and the frame folder, in turn on the same samples), one process, torch on one thread."""
    from tools import prepare
    print(f'prepare: one process, torch on one thread; read_clips over {args.steps} clips and the training pipeline '
          f'(224x224) over {max(1, args.steps // 8)} batches of {args.batch} per row, in turn on the same clips; '
          f'per second from the median time (CPU time of the process; wall clock in brackets)')
    with tempfile.TemporaryDirectory() as tmp:
        originals = {'Kinetics-like (454x256 H.264 25 fps, 250 frames, one key frame)': Path(tmp, 'k', 'kinetics.mp4'),
                     'UCF101-like (320x240 XviD AVI 29.97 fps, 210 frames, a key frame every 12)':
                         Path(tmp, 'u', 'ucf101.avi')}
        for path in originals.values():
            path.parent.mkdir()
        write_kinetics_like(originals[next(iter(originals))], **KINETICS_REAL)
        write_ucf_like(originals[list(originals)[1]])
        for video, original in originals.items():
            decode.write_frame_folders(original.parent)  # <folder>/frames/<name>/img_00001.jpg, ...
            folder = decode.frame_folder(original.parent, original)
            with av.open(str(original)) as container:
                fps = decode._video_stream(container)[1]
            paths = {'original': original}
            sizes = {'original': original.stat().st_size}
            seconds = {}  # encoding time of each copy
            for name, options in PREPARED.items():
                paths[name] = Path(tmp, name.replace(' ', '_'), original.name)
                paths[name].parent.mkdir(exist_ok=True)
                c0 = time.process_time()
                prepare.encode_video(original, paths[name], short_side=0, **options)
                seconds[name] = time.process_time() - c0
                sizes[name] = paths[name].stat().st_size
            sizes['frames'] = sum(f.stat().st_size for f in folder.iterdir())
            reference = all_frames(original)  # (N, H, W, 3)
            quality = {name: statistics.mean(prepare.psnr(a, b) for a, b in zip(reference, all_frames(path)))
                       for name, path in paths.items() if name != 'original'}
            quality['frames'] = statistics.mean(prepare.psnr(a, decode.read_image(folder / decode.FRAME_NAME.format(
                n + 1)).permute(1, 2, 0).numpy()) for n, a in enumerate(reference))
            print(f'{video}:')
            names = [*paths, 'frames']
            for name in names:
                print(f'  {name:<26} {sizes[name] / 1e3:8.0f} kB ({sizes[name] / sizes["original"]:4.0%})'
                      + (f'  PSNR {quality[name]:5.1f} dB' if name in quality else '')
                      + (f'  encoded in {seconds[name]:.2f} s CPU' if name in seconds else ''))
            for clip_name, clip in LOADER_CLIPS.items():
                readers = {name: (lambda u, p=path, c=clip: decode.read_clips(p, c, u)) for name, path in paths.items()}
                readers['frames'] = lambda u, c=clip: decode.read_frame_clips(folder, {**c, 'frames_fps': fps}, u)
                generator = torch.Generator().manual_seed(0)
                clips = [torch.rand(1, 1, generator=generator, dtype=torch.float64).expand(1, clip['num_frames'])
                         for _ in range(args.steps)]
                steps = {name: (lambda i, r=r: (r(clips[i % len(clips)]), 0)) for name, r in readers.items()}
                wall, cpu = time_pipelines(steps, args.steps, 1)
                default = next(iter(PREPARED))
                loaders = {name: (lambda seed, d=video_dataset(paths[name], clip, 224): d[(0, seed)])
                           for name in ('original', default)}
                loaders['frames'] = lambda seed, d=video_dataset(original, clip, 224, fps): d[(0, seed)]
                loader_wall, loader_cpu = time_pipelines(loaders, max(1, args.steps // 8), args.batch)
                print(f'  clip {clip_name}: read_clips clips/s, and x faster than the original')
                for name in names:
                    line = (f'    {name:<26} {1 / cpu[name]:7.1f} ({1 / wall[name]:7.1f})  '
                            f'{cpu["original"] / cpu[name]:5.2f}x')
                    if name in loaders:
                        line += (f'   training pipeline {1 / loader_cpu[name]:6.1f} ({1 / loader_wall[name]:6.1f}) '
                                 f'samples/s {loader_cpu["original"] / loader_cpu[name]:5.2f}x')
                    print(line)


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--objective', action='store_true', help='the MultiTrain objective vs cross-entropy')
    parser.add_argument('--decode', action='store_true', help='clip decoding: ours vs torchcodec vs from the start')
    parser.add_argument('--decode_video', default=None, help='--decode: a video file (default: two synthetic ones)')
    parser.add_argument('--prepare', action='store_true', help='prepared copies (tools/prepare.py) vs the original '
                        'vs a frame folder: size, PSNR, clips/s')
    parser.add_argument('--loader', action='store_true', help='the training pipeline of a video sample: ours vs '
                        'torchcodec + torchvision.transforms.v2, samples/s per worker')
    parser.add_argument('--loader_video', action='append', help='--loader: a video file (repeatable; default: the '
                        "demo's and a Kinetics-like one)")
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
    args.batch = args.batch or (8 if args.objective or args.loader or args.prepare else 2)
    args.steps = args.steps or (100 if args.decode or args.prepare else 20 if args.loader else
                                3 if args.backbone == 'mvit' else 10)
    torch.manual_seed(0)
    on_gpu = args.device.startswith('cuda')
    autocast = torch.autocast('cuda', dtype=torch.bfloat16) if on_gpu and args.dtype == 'bfloat16' else nullcontext()
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    if not args.peak_of:
        print(f'{args.device}, {args.dtype if on_gpu else "float32"}, torch {torch.__version__}, '
              f'torchvision {torchvision.__version__}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})'
              + (f', torchcodec {torchcodec_version()}' if args.decode or args.loader else ''))
    if args.loader or args.prepare:
        torch.set_num_threads(1)  # as DataLoader does in its workers
        bench_loader(args) if args.loader else bench_prepare(args)
    elif args.decode:
        torch.set_num_threads(1)  # as DataLoader does in its workers, where clips are read
        bench_decode(args)
    elif args.objective:
        bench_objective(args, args.device, autocast, sync)
    else:
        bench_models(args, args.device, autocast, sync)

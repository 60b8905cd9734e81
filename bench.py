"""
Time training steps of this project's model against torchvision's model of the same shape, in one run.

    python bench.py                                  # ViT-B/16, batch 2, 224x224 images, on the CPU
    python bench.py --device=cuda --batch=64 --dtype=bfloat16
    python bench.py --backbone=vit --dim=192 --depth=6 --num_heads=3 --img_size=64 --patch_size=8 --batch=32
    python bench.py --backbone=mvit                  # MViTv2-S, batch 2, 16x224x224 videos, on the CPU
    python bench.py --backbone=mvit --mvit_preset=tiny --num_frames=8 --img_size=32 --batch=32 --steps=10

For the MViT, torchvision's MViT is built from the block table of --mvit_preset with torchvision's switches (class
token, relative positions), as from_torchvision requires: for mvit_v2_s that is torchvision's mvit_v2_s.
Stochastic depth and dropout are off in both models, so that both do the same work.

Both models carry the same weights (ours is converted from torchvision's), so both the outputs and the work are
the same; each step is forward + backward of the mean logit. Steps alternate between the two models, so that a
machine that slows down mid-run slows both. It prints each model's median step time, the ratio ours / theirs,
the FLOPs of a step (torch.utils.flop_counter) and the achieved TFLOP/s, and on a GPU the peak memory and the
MFU against the GPU's bf16 dense peak (--peak_tflops, 989 for an H100/H200 SXM).
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from model import MVIT_PRESETS, from_torchvision

parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
parser.add_argument('--backbone', default='vit', choices=['vit', 'mvit'])
parser.add_argument('--img_size', type=int, default=224)
parser.add_argument('--num_frames', type=int, default=16, help='mvit: frames per clip')
parser.add_argument('--mvit_preset', default='mvit_v2_s', choices=list(MVIT_PRESETS), help='mvit: block table')
parser.add_argument('--patch_size', type=int, default=16)
parser.add_argument('--dim', type=int, default=768)
parser.add_argument('--depth', type=int, default=12)
parser.add_argument('--num_heads', type=int, default=12)
parser.add_argument('--batch', type=int, default=2)
parser.add_argument('--steps', type=int, default=None, help='timed steps per model after 2 warm-up steps '
                    '(default 10 for vit, 3 for mvit)')
parser.add_argument('--device', default='cpu')
parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'], help='autocast dtype on GPU')
parser.add_argument('--peak_tflops', type=float, default=989.0, help='GPU peak for the MFU (bf16 dense)')
args = parser.parse_args()
args.steps = args.steps or (10 if args.backbone == 'vit' else 3)


def torchvision_mvit(preset, num_frames, img_size):
    """torchvision's MViT with the block table of our preset (mvit_v2_s itself for that preset)."""
    from torchvision.models.video.mvit import MSBlockConfig
    blocks = [MSBlockConfig(heads, dim_in, dim_out, [3, 3, 3], [3, 3, 3], list(q_stride), list(kv_stride))
              for heads, dim_in, dim_out, q_stride, kv_stride in MVIT_PRESETS[preset]['blocks']]
    return torchvision.models.video.MViT((img_size, img_size), num_frames, blocks, residual_pool=True,
                                         residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True,
                                         dropout=0.0, num_classes=400)


torch.manual_seed(0)
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
theirs, ours = theirs.to(args.device).train(), ours.to(args.device).train()
x = torch.randn(*shape, device=args.device)
on_gpu = args.device.startswith('cuda')
autocast = torch.autocast('cuda', dtype=torch.bfloat16) if on_gpu and args.dtype == 'bfloat16' else nullcontext()
steps = {'ours': lambda: ours(x, 'bench'), 'torchvision': lambda: theirs(x)}


def step(name):
    with autocast:
        loss = steps[name]().float().mean()
    loss.backward()


def sync():
    if on_gpu:
        torch.cuda.synchronize()


flops = FlopCounterMode(display=False)
with flops:
    step('ours')
times = {name: [] for name in steps}
for i in range(args.steps + 2):
    for name in steps:
        sync()
        t0 = time.perf_counter()
        step(name)
        sync()
        if i >= 2:
            times[name].append(time.perf_counter() - t0)
peak = {}
if on_gpu:
    for name in steps:
        torch.cuda.reset_peak_memory_stats()
        step(name)
        peak[name] = torch.cuda.max_memory_allocated() / 2 ** 30

total = flops.get_total_flops()
print(f'{args.backbone}: {what}, batch {args.batch}, {args.device}, {args.dtype if on_gpu else "float32"}, '
      f'torch {torch.__version__}; {total / 1e9:.1f} GFLOP per step')
for name, t in times.items():
    median = statistics.median(t)
    line = f'{name:<12} {median * 1000:9.1f} ms/step  {total / median / 1e12:7.3f} TFLOP/s'
    if on_gpu:
        line += f'  MFU {100 * total / median / 1e12 / args.peak_tflops:5.1f}%  peak memory {peak[name]:.2f} GiB'
    print(line)
ratio = statistics.median(times['ours']) / statistics.median(times['torchvision'])
print(f'ratio ours / torchvision: {ratio:.3f} (below 1 is faster)')

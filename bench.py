"""
Time training steps of this project's model against torchvision's model of the same shape, in one run.

    python bench.py                                  # ViT-B/16, batch 2, 224x224 images, on the CPU
    python bench.py --device=cuda --batch=64 --dtype=bfloat16
    python bench.py --backbone=vit --dim=192 --depth=6 --num_heads=3 --img_size=64 --patch_size=8 --batch=32

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

from model import from_torchvision

parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
parser.add_argument('--backbone', default='vit', choices=['vit'], help="only 'vit' so far (MViT: issue 3)")
parser.add_argument('--img_size', type=int, default=224)
parser.add_argument('--patch_size', type=int, default=16)
parser.add_argument('--dim', type=int, default=768)
parser.add_argument('--depth', type=int, default=12)
parser.add_argument('--num_heads', type=int, default=12)
parser.add_argument('--batch', type=int, default=2)
parser.add_argument('--steps', type=int, default=10, help='timed steps per model (after 2 warm-up steps)')
parser.add_argument('--device', default='cpu')
parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'], help='autocast dtype on GPU')
parser.add_argument('--peak_tflops', type=float, default=989.0, help='GPU peak for the MFU (bf16 dense)')
args = parser.parse_args()

torch.manual_seed(0)
theirs = torchvision.models.VisionTransformer(image_size=args.img_size, patch_size=args.patch_size,
                                              num_layers=args.depth, num_heads=args.num_heads,
                                              hidden_dim=args.dim, mlp_dim=4 * args.dim, num_classes=1000)
ours = from_torchvision(theirs, 'bench')
theirs, ours = theirs.to(args.device).train(), ours.to(args.device).train()
x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=args.device)
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
print(f'{args.backbone}: dim {args.dim}, depth {args.depth}, heads {args.num_heads}, {args.img_size}x{args.img_size} '
      f'patch {args.patch_size}, batch {args.batch}, {args.device}, {args.dtype if on_gpu else "float32"}, '
      f'torch {torch.__version__}; {total / 1e9:.1f} GFLOP per step')
for name, t in times.items():
    median = statistics.median(t)
    line = f'{name:<12} {median * 1000:9.1f} ms/step  {total / median / 1e12:7.3f} TFLOP/s'
    if on_gpu:
        line += f'  MFU {100 * total / median / 1e12 / args.peak_tflops:5.1f}%  peak memory {peak[name]:.2f} GiB'
    print(line)
ratio = statistics.median(times['ours']) / statistics.median(times['torchvision'])
print(f'ratio ours / torchvision: {ratio:.3f} (below 1 is faster)')

"""
Co-train one transformer on several image and video datasets, one head per dataset.

    python train.py                                    # the demo: synthetic images + videos, minutes on a CPU
    python train.py config/tinyimagenet_ucf101.py --lr=3e-4 --max_iters=2000
    torchrun --standalone --nproc_per_node=2 train.py config/tinyimagenet_ucf101.py

Every setting is a value in config.py; a config file and --key=value arguments override them in order.
The update scheme is IV-ViT's (papers/iv-vit.txt section 5.3): each iteration takes one batch of every
dataset in a fixed order, and after each batch computes that dataset's loss and takes an optimizer step.
"""

import json
import math
import os
import sys
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import config
import data
import losses
from eval import evaluate, print_results, resolve_device
from model import build_model, configure_optimizer, load_torchvision_backbone

try:
    cfg = config.load(sys.argv[1:])
except config.ConfigError as e:
    sys.exit(f'config error: {e}')

# ---- processes and devices: one process per GPU under torchrun, or a single process
ddp = 'RANK' in os.environ
if ddp:
    on_gpu = torch.cuda.is_available() and cfg.device != 'cpu'
    dist.init_process_group('nccl' if on_gpu else 'gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{os.environ['LOCAL_RANK']}" if on_gpu else 'cpu'
    if on_gpu:
        torch.cuda.set_device(device)
else:
    rank, world = 0, 1
    device = resolve_device(cfg.device)
master = rank == 0
device_type = 'cuda' if device.startswith('cuda') else 'cpu'
torch.manual_seed(cfg.seed)  # the same initial weights on every rank
if device_type == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
# bf16 autocast on GPU; fp32 on CPU (bf16 matmuls are slow on most CPUs)
use_amp = device_type == 'cuda' and cfg.dtype == 'bfloat16'
autocast = torch.autocast('cuda', dtype=torch.bfloat16) if use_amp else nullcontext()
if master:
    os.makedirs(cfg.out_dir, exist_ok=True)
    config.print_config(cfg)
    with open(os.path.join(cfg.out_dir, 'config.json'), 'w') as f:
        json.dump(config.to_dict(cfg), f, indent=2)

# ---- data: one training loader and one evaluation loader per dataset, each rank with its own shard
specs = {name: data.dataset_spec(name, spec) for name, spec in cfg.datasets.items()}
train_loaders = {name: data.make_loader(spec, 'train', cfg, rank, world) for name, spec in specs.items()}
val_loaders = {name: data.make_loader(spec, 'val', cfg, rank, world) for name, spec in specs.items()}
classes = {name: loader.dataset.classes for name, loader in train_loaders.items()}
if master:
    for name, loader in train_loaders.items():
        print(f'{name}: {len(classes[name])} classes, {len(loader.dataset)} train and '
              f'{len(val_loaders[name].dataset)} val samples from {specs[name]["root"]}')

# ---- model and optimizer, from scratch or from out_dir/ckpt.pt
model = build_model(cfg, {name: len(c) for name, c in classes.items()}).to(device)
optimizer = configure_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device_type)
iter_num = 0
ckpt_path = os.path.join(cfg.out_dir, 'ckpt.pt')
if cfg.init_from == 'resume':
    ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    model.load_state_dict(ckpt['model'])
    optimizer.load_state_dict(ckpt['optimizer'])
    iter_num = ckpt['iter_num']
    torch.set_rng_state(ckpt['rng'].cpu())  # dropout and stochastic depth continue as if never stopped
    if device_type == 'cuda':
        torch.cuda.set_rng_state(ckpt['cuda_rng'].cpu())
    if master:
        print(f'resumed from {ckpt_path} at iteration {iter_num}')
    del ckpt
elif cfg.init_from.startswith('torchvision:'):
    if master:  # DDP's constructor copies rank 0's weights to the other ranks: one download is enough
        load_torchvision_backbone(model, cfg.init_from.split(':', 1)[1])
        print(f'backbone initialised from {cfg.init_from}; heads from scratch')
elif cfg.init_from != 'scratch':
    sys.exit(f"init_from must be 'scratch', 'resume' or 'torchvision:<model name>', got {cfg.init_from!r}")
if master:
    print(f'model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters')
raw_model = model  # evaluation and checkpoints use the plain module
if cfg.compile:
    model = torch.compile(model)
if ddp:
    # each step runs one dataset's head only, so the other heads take no part in that backward pass
    model = DDP(model, device_ids=[device] if device_type == 'cuda' else None, find_unused_parameters=True)


def get_lr(it):
    """Linear warm-up, then cosine decay to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    progress = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * (cfg.lr - cfg.min_lr)


def log(event):
    """One JSON line per event in out_dir/log.jsonl (rank 0 only)."""
    with open(os.path.join(cfg.out_dir, 'log.jsonl'), 'a') as f:
        f.write(json.dumps(event) + '\n')


def save_checkpoint(results):
    """Write the checkpoint to a temporary file, then rename it: a kill never leaves a half-written ckpt.pt."""
    ckpt = dict(model=raw_model.state_dict(), optimizer=optimizer.state_dict(), iter_num=iter_num,
                rng=torch.get_rng_state(), cuda_rng=torch.cuda.get_rng_state() if device_type == 'cuda' else None,
                config=config.to_dict(cfg), classes=classes, results=results)
    torch.save(ckpt, ckpt_path + '.tmp')
    os.replace(ckpt_path + '.tmp', ckpt_path)


# ---- the training loop. A resumed run continues every dataset's sample sequence at its batch iter_num (each
# iteration takes one batch of each), and the samples' randomness comes from their own seeds (data.py), so
# with the model, optimizer and RNG state restored it repeats the uninterrupted run exactly (on the CPU).
batches = data.round_robin(train_loaders, start=iter_num)
pbar = tqdm(total=cfg.max_iters, initial=iter_num, desc='train', disable=not master, dynamic_ncols=True)
t0 = time.time()
while True:
    if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
        last = iter_num == cfg.max_iters
        results = evaluate(raw_model, val_loaders, device, autocast, None if last else cfg.eval_max_batches)
        if master:
            log(dict(event='eval', iter=iter_num, **{f'{n}/{k}': v for n, r in results.items() for k, v in r.items()}))
            pbar.write(f'iter {iter_num}: ' + ', '.join(f'{n} top-1 {r["top1"]:.1f}%' for n, r in results.items()))
            if iter_num > 0:
                save_checkpoint(results)
    if iter_num == cfg.max_iters:
        break

    lr = get_lr(iter_num)
    for group in optimizer.param_groups:
        group['lr'] = lr
    batch_losses = {}
    for _ in train_loaders:  # one batch of every dataset, in the config's order; a step after each (IV-ViT)
        name, x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            logits = model(x, name)
        loss = losses.cross_entropy(logits, y, cfg.label_smoothing)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        batch_losses[name] = loss.detach()
    iter_num += 1
    pbar.update(1)

    if iter_num % cfg.log_interval == 0 and master:  # .item() waits for the device: only at log time
        dt = (time.time() - t0) / cfg.log_interval
        t0 = time.time()
        event = dict(event='train', iter=iter_num, lr=lr, sec_per_iter=dt,
                     **{f'{n}/loss': l.item() for n, l in batch_losses.items()})
        log(event)
        pbar.set_postfix({n: f'{l.item():.3f}' for n, l in batch_losses.items()})
pbar.close()

if master:
    print_results(results)
if ddp:
    dist.destroy_process_group()

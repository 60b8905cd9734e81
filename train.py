"""
Co-train one transformer on several image and video datasets, one head per dataset.

    python train.py                                    # the demo: synthetic images + videos, minutes on a CPU
    python train.py config/tinyimagenet_ucf101.py --lr=3e-4 --max_iters=2000
    torchrun --standalone --nproc_per_node=2 train.py config/tinyimagenet_ucf101.py

Every setting is a value in config.py; a config file and --key=value arguments override them in order.
One iteration takes one round of batches (sampling.rounds): by default one batch of every dataset in a fixed order
with an optimizer step after each (IV-ViT, arXiv:2308.10533, section 5.3); `sampling` and `update` switch to
CoVeR's and MultiTrain's schemes, and losses.Objective composes the loss from the config's switches.
Stopping and resuming: SIGTERM (what schedulers send before preemption) saves a checkpoint and exits; a run
killed in any way continues exactly from its last checkpoint when the same command runs again (init_from='auto',
the default, resumes from out_dir/ckpt.pt when it exists; 'scratch' starts anew, 'resume' insists on the file).
Fine-tuning: --init_from=PATH starts a new run (its own config, a fresh optimizer, schedule and iteration
count) from the weights of an earlier run's checkpoint: the backbone, and each head whose dataset and classes
match. Besides out_dir/log.jsonl, the same scalars go to Weights & Biases (wandb_log=True) and TensorBoard
(tensorboard=True) when asked for.

The file reads top to bottom: set-up (processes, data, model, optimizer), the helpers the loop calls, then the
training loop, whose first screen holds the batch, the forward pass, the loss and backward().
"""

import errno
import json
import math
import os
import shutil
import signal
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import augment
import config
import data
import losses
import sampling
from eval import CheckpointError, evaluate, print_results, safe_load
from model import build_model, configure_optimizer
from pretrained import load_torchvision_backbone

sys.excepthook = data.excepthook  # a mistake in a dataset's files (readers.DataError): one line, no traceback
try:
    config.handle_help(sys.argv[1:], 'python train.py [CONFIG.py ...] [--key=value ...]')
    cfg = config.load(sys.argv[1:])  # every value checked (config.check)
except config.ConfigError as e:
    sys.exit(f'config error: {e}')
if missing := config.missing_packages(cfg):  # wandb_log=True or tensorboard=True without the package
    sys.exit(missing)
if cfg.init_from.endswith(('.pt', '.pth')) and not os.path.isfile(cfg.init_from):
    sys.exit(f'init_from={cfg.init_from}: no such checkpoint (to fine-tune from an earlier run, give its ckpt.pt)')
ckpt_path = os.path.join(cfg.out_dir, 'ckpt.pt')


def other_checkpoints():
    """The checkpoints of out_dir other than ckpt.pt, newest first: ckpt_<iter>.pt (keep_last), then ckpt_best.pt."""
    names = os.listdir(cfg.out_dir) if os.path.isdir(cfg.out_dir) else []
    kept = sorted((n for n in names if n.startswith('ckpt_0') and n.endswith('.pt')), reverse=True)
    return [os.path.join(cfg.out_dir, n) for n in kept + ['ckpt_best.pt'] * ('ckpt_best.pt' in names)]


def missing_checkpoint_message():
    """What is wrong when init_from='resume' finds no ckpt.pt to resume from, or None."""
    if cfg.init_from != 'resume' or os.path.exists(ckpt_path):
        return None
    others = other_checkpoints()
    use = f'; to continue from {others[0]}, copy it to {ckpt_path}' if others else ''
    return (f"init_from='resume': there is no checkpoint at {ckpt_path}{use}; to start a run, use "
            f"--init_from=scratch, or --init_from=auto (resumes when the file exists), or point --out_dir at the "
            f"run to continue")


if missing := data.missing_roots_message(cfg, sys.argv[1:]) or missing_checkpoint_message():
    # before any process group or loader: one message from rank 0, and every rank stops without a traceback
    if os.environ.get('RANK', '0') == '0':
        print(missing, file=sys.stderr)
    sys.exit(1)

# ---- processes and devices: one process per GPU under torchrun, or a single process

def init_process_group(backend):
    """dist.init_process_group, made safe for torchrun's restarts (--max-restarts). torchrun's c10d rendezvous,
    --standalone included, hands every round of workers the same key-value store (TORCHELASTIC_USE_AGENT_STORE,
    torch >= 2.5), where the previous round's keys are still found: a restarted worker read the gloo address of a
    dead one ("Connection refused") or waited forever (pytorch issue 135712). On one node the round number
    (TORCHELASTIC_RESTART_COUNT) is one launcher's count, the same for every rank, and the group's keys go under a
    prefix of it. On several nodes the launchers count differently (one whose workers were healthy restarts them
    without counting), so no prefix is shared: there a fresh store per round must come from torchrun itself."""
    shared = os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True'
    if shared and os.environ.get('LOCAL_WORLD_SIZE') == os.environ.get('WORLD_SIZE'):
        store, rank, world = next(dist.rendezvous('env://'))
        restart = os.environ['TORCHELASTIC_RESTART_COUNT']
        dist.init_process_group(backend, store=dist.PrefixStore(f'restart{restart}', store), rank=rank,
                                world_size=world)
        return
    if shared and int(os.environ.get('TORCHELASTIC_MAX_RESTARTS', 0)) > 0 and os.environ['RANK'] == '0':
        print('warning: torchrun --max-restarts on several nodes can hang or fail after a restart unless every node '
              'runs torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (pytorch issue 135712)', file=sys.stderr)
    dist.init_process_group(backend)


ddp = 'RANK' in os.environ
if ddp:
    # imported before the process group exists, so that its default arguments do not hold that group (see
    # leave_process_groups)
    import torch.distributed.nn  # noqa: F401
    on_gpu = torch.cuda.is_available() and cfg.device != 'cpu'
    init_process_group('nccl' if on_gpu else 'gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{os.environ['LOCAL_RANK']}" if on_gpu else 'cpu'
    if on_gpu:
        torch.cuda.set_device(device)
    # a CPU group for the small control messages (stop requests, bad-loss flags): no GPU synchronisation;
    # None is the default group, which is a CPU one already
    control = dist.new_group(backend='gloo') if on_gpu else None
else:
    rank, world = 0, 1
    device = config.resolve_device(cfg.device)
master = rank == 0
device_type = 'cuda' if device.startswith('cuda') else 'cpu'
torch.manual_seed(cfg.seed)  # the same initial weights on every rank
if device_type == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
autocast = config.autocast_for(cfg.dtype, device)  # dtype='auto': bf16 on a GPU, fp32 on a CPU
# fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none (then the scaler does nothing)
scaler = torch.amp.GradScaler(device_type, enabled=getattr(autocast, 'fast_dtype', None) == torch.float16)
if master:
    os.makedirs(cfg.out_dir, exist_ok=True)
    config.print_config(cfg)

# ---- data: training loaders (one per dataset, or one per group of datasets with sampling='mixed') and one
# evaluation loader per dataset, each rank with its own shard
specs = {name: config.dataset_spec(name, spec) for name, spec in cfg.datasets.items()}
train_loaders = data.make_train_loaders(specs, cfg, rank, world)
val_loaders = {name: data.make_loader(spec, 'val', cfg, rank, world) for name, spec in specs.items()}
classes = {name: loader.dataset.classes for name, loader in val_loaders.items()}
if master:
    for key, (names, loader) in train_loaders.items():
        size = loader.batch_sampler.batch_size  # a mean with 'proportional', whose batches vary by a sample
        print(f'{key}: {len(loader.dataset)} train samples, batches of {size:.4g} x {world} rank(s) x '
              f'{cfg.grad_accum} micro-batch(es)')
    for name, loader in val_loaders.items():
        print(f'{name}: {len(classes[name])} classes, {len(loader.dataset)} val samples from {specs[name]["root"]}')
    if cfg.sampling == 'proportional':
        print('share of each round\'s samples (share of the training data): ' + ', '.join(
            f'{name} {step:.1%} ({size:.1%})' for name, (step, size) in data.sample_shares(train_loaders).items()))

# each dataset's training set, whose count of unreadable (replaced) samples is reported at every evaluation
train_sets = {name: loader.dataset.datasets[k] if isinstance(loader.dataset, data.MixedDataset) else loader.dataset
              for names, loader in train_loaders.values() for k, name in enumerate(names)}

# ---- model, objective and optimizer
num_classes = {name: len(c) for name, c in classes.items()}
model = build_model(cfg, num_classes).to(device)
objective = losses.Objective(num_classes, model.num_features, cfg).to(device)


class TrainStep(torch.nn.Module):
    """What DDP wraps: the model and the objective's own parameters (projections, uncertainty weights, the
    expander), so that the gradients of both are averaged over ranks. forward(batch) returns the Objective's
    (loss, {dataset: L_k}, {regulariser: value}); the keyword arguments are passed through to it."""

    def __init__(self, model, objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, names, x, y, ds, **options):
        return self.objective(self.model, names, x, y, ds, **options)


step = TrainStep(model, objective)
optimizer = configure_optimizer(step, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device_type, cfg.optimizer,
                                cfg.momentum, cfg.position_decay)
iter_num = 0
best_top1 = -1.0


def leave_process_groups():
    """End the process groups while Python is still fully alive. Dropping train.py's own references to them (the
    DDP wrapper, the control group) is what joins gloo's worker threads; a worker still running when the
    interpreter shuts down makes the process abort at exit."""
    global step, control
    if isinstance(step, DDP):
        step = step.module
    control = None
    dist.destroy_process_group()


def stop(message):
    """End the run on a problem the user must fix: one line from rank 0, no traceback, exit status 1 on every rank."""
    if master:
        tqdm.write(message, file=sys.stderr)  # on a line of its own, under the progress bar if there is one
    if ddp:
        leave_process_groups()
    sys.exit(1)


def read_checkpoint(path, earlier=True):
    """The checkpoint at path, loaded safely (eval.safe_load: tensors and plain values only), or stop with one line:
    a refused, missing or damaged file (cut short by a full disk, a copy that did not finish, a bad block). For a
    damaged ckpt.pt of this run (earlier=True) the line names the run's earlier checkpoints that can take its place."""
    try:
        return safe_load(path, map_location=device)
    except CheckpointError as e:
        if not (e.damaged and earlier):
            stop(str(e))
        others = other_checkpoints()
        instead = (f'earlier checkpoints of this run: {", ".join(others)}; copy one to {path} to resume from it'
                   if others else 'this run kept no earlier checkpoint (keep_last, save_best)')
        stop(f'{e}; {instead}, or start anew with --init_from=scratch')


def load_checkpoint():
    """Continue from ckpt_path: weights, loss parameters, optimizer (AdamW moments, SGD momentum buffers), loss
    scale, iteration, RNG state. The learning rate and every loader's position follow from the iteration."""
    global iter_num, best_top1
    ckpt = read_checkpoint(ckpt_path)
    try:
        model.load_state_dict(ckpt['model'])
        objective.load_state_dict(ckpt['objective'])
        optimizer.load_state_dict(ckpt['optimizer'])
    except (RuntimeError, ValueError) as e:  # another backbone size, dataset, objective or optimizer
        first = next((line.strip() for line in str(e).splitlines() if not line.endswith(':')), type(e).__name__)
        stop(f'{ckpt_path} was trained with other settings than these ({first[:200]}): continue it with '
             f'its own settings ({os.path.join(cfg.out_dir, "config.json")}), or start anew with '
             f'--init_from=scratch or another --out_dir')
    if ckpt.get('scaler'):  # empty when saved without float16
        scaler.load_state_dict(ckpt['scaler'])
    iter_num = ckpt['iter_num']
    best_top1 = ckpt['best_top1']
    torch.set_rng_state(ckpt['rng'].cpu())  # dropout and stochastic depth continue as if never stopped
    if device_type == 'cuda':
        torch.cuda.set_rng_state(ckpt['cuda_rng'].cpu())
    if iter_num > cfg.max_iters:
        stop(f'{ckpt_path} is at iteration {iter_num}, past max_iters={cfg.max_iters}: train it longer with '
             f'--max_iters={iter_num} or more, or start anew with --init_from=scratch or another --out_dir')
    if master:
        done = f' = max_iters: the run is complete, evaluating it again' if iter_num == cfg.max_iters else ''
        pretrained = cfg.init_from.startswith('torchvision:')
        start = f' (the run\'s start, {cfg.init_from}, is not loaded again)' if pretrained else ''
        print(f'resumed from {ckpt_path} at iteration {iter_num}{done}{start}')


def fine_tune_from(path):
    """Start from the weights of an earlier run's checkpoint at path: the backbone, and the head of every dataset
    of this run that the checkpoint has a head for with the same classes; the other heads, the objective's
    parameters, the optimizer, the schedule and the iteration count start fresh, and the settings are this run's."""
    ckpt = read_checkpoint(path, earlier=False)
    own = model.state_dict()
    heads = {name for name, names in ckpt['classes'].items() if names == classes.get(name)}
    keep = {k: v for k, v in ckpt['model'].items()
            if not k.startswith('heads.') or k.split('.')[1] in heads}
    for key, value in keep.items():
        if key not in own or own[key].shape != value.shape:
            stop(f'init_from={path}: its backbone does not fit this config ({key}: '
                     f'{tuple(value.shape) if key in own else "absent here"}'
                     f'{f" vs {tuple(own[key].shape)} here" if key in own else ""}); '
                     f'use that run\'s backbone settings (backbone, dim, depth, patch_size, img_size, ...)')
    missing = [k for k in own if k not in keep and not k.startswith('heads.')]
    if missing:
        stop(f'init_from={path}: its checkpoint lacks backbone weights this config needs, e.g. {missing[0]}')
    model.load_state_dict(keep, strict=False)
    if master:
        fresh = [f'{name} ({len(names)} classes' + (f'; the checkpoint\'s has {len(ckpt["classes"][name])})'
                                                      if name in ckpt['classes'] else '; a new dataset)')
                 for name, names in classes.items() if name not in heads]
        print(f'fine-tuning from {path} (iteration {ckpt["iter_num"]}): loaded the backbone and the heads of '
              f'{", ".join(sorted(heads)) or "no dataset"}; initialised the heads of {", ".join(fresh) or "none"}, '
              f'the objective and the optimizer')


def agree_on_the_start():
    """Stop unless every rank starts at the same iteration: ranks of several nodes that do not share out_dir see
    different checkpoints (or none), and their collectives would never match."""
    starts = torch.tensor([iter_num, -iter_num])
    dist.all_reduce(starts, op=dist.ReduceOp.MAX, group=control)
    if starts[0] != -starts[1]:
        stop(f'the ranks start at different iterations ({-starts[1].item()} to {starts[0].item()}): every node must '
             f'see the same out_dir ({cfg.out_dir}), on a shared filesystem, to save and resume checkpoints')


# A run whose out_dir holds ckpt.pt continues from it, whatever its start was (a relaunched or requeued command
# goes on), unless init_from='scratch' asks to start over; 'resume' insists on the file.
if cfg.init_from != 'scratch' and (cfg.init_from == 'resume' or os.path.exists(ckpt_path)):
    load_checkpoint()
elif cfg.init_from.endswith(('.pt', '.pth')):
    fine_tune_from(cfg.init_from)
elif cfg.init_from.startswith('torchvision:'):
    if master:  # DDP's constructor copies rank 0's weights to the other ranks: one download is enough
        load_torchvision_backbone(model, cfg.init_from.split(':', 1)[1])
        print(f'no checkpoint in {cfg.out_dir}: backbone initialised from {cfg.init_from}; heads from scratch')
elif master:
    over = f'; {ckpt_path} will be overwritten' if os.path.exists(ckpt_path) else ''
    print(f"no checkpoint in {cfg.out_dir}: starting from scratch" if cfg.init_from == 'auto'
          else f"init_from='scratch': starting from scratch{over}")
if ddp:
    agree_on_the_start()
if master:  # once the start is settled: a run that stops above leaves the config of the checkpoint's run in place
    with open(os.path.join(cfg.out_dir, 'config.json'), 'w') as f:
        json.dump(config.to_dict(cfg), f, indent=2)
if master:
    print(f'model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, '
          f'objective: {sum(p.numel() for p in objective.parameters()) / 1e6:.2f} M')
if cfg.compile:  # the backbone is the hot part; the method is compiled, so the module and its state dict stay plain
    import torch._inductor.config as inductor_config
    # inductor's memory-coalescing analysis, a tiling heuristic of its Triton kernels, aborts on a fused kernel of
    # the ViT's training step (an AssertionError in tiling_utils.get_pw_red_splits, torch 2.11 on an H200; see
    # pytorch/pytorch#197077); without it the kernels are tiled by the older rule
    if hasattr(inductor_config, 'triton') and hasattr(inductor_config.triton, 'coalesce_tiling_analysis'):
        inductor_config.triton.coalesce_tiling_analysis = False
    model.features = torch.compile(model.features)
if ddp:
    # a batch runs only its own datasets' heads (unless a projection runs all), so some parameters sit out
    step = DDP(step, device_ids=[device] if device_type == 'cuda' else None, find_unused_parameters=True)


# ---- what the loop calls: the schedule, logging, checkpoints, agreement between ranks

def get_lr(it):
    """Linear warm-up, then cosine decay to min_lr at max_iters, or (lr_schedule='step') lr times lr_factor for
    every milestone passed. A function of the iteration alone: a resumed run needs nothing else."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    if cfg.lr_schedule == 'step':
        return cfg.lr * cfg.lr_factor ** sum(it >= m for m in cfg.lr_milestones)
    progress = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * (cfg.lr - cfg.min_lr)


def open_sinks():
    """On rank 0, what else the config asks log() to write to: {'wandb': a W&B run, 'tensorboard': a TensorBoard
    SummaryWriter of out_dir/tensorboard}. config.missing_packages has checked that the packages are there."""
    sinks = {}
    if master and cfg.wandb_log:
        import wandb
        sinks['wandb'] = wandb.init(project=cfg.wandb_project, name=cfg.wandb_run_name, dir=cfg.out_dir,
                                    config=config.to_dict(cfg))
    if master and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        sinks['tensorboard'] = SummaryWriter(os.path.join(cfg.out_dir, 'tensorboard'))
    return sinks


sinks = open_sinks()


def log(event):
    """One JSON line per event in out_dir/log.jsonl (rank 0 only), and its numbers to the sinks, each under
    'event/key' at step iter (train/loss, train/samples_per_sec, eval/shapes/top1, ...)."""
    with open(os.path.join(cfg.out_dir, 'log.jsonl'), 'a') as f:
        f.write(json.dumps(event) + '\n')
    scalars = {f"{event['event']}/{key}": value for key, value in event.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool) and key != 'iter'}
    if 'wandb' in sinks:
        sinks['wandb'].log(scalars, step=event['iter'])
    if 'tensorboard' in sinks:
        for key, value in scalars.items():
            sinks['tensorboard'].add_scalar(key, value, event['iter'])


def close_sinks():
    if 'wandb' in sinks:
        sinks['wandb'].finish()
    if 'tensorboard' in sinks:
        sinks['tensorboard'].close()


def disk_full(error):
    """Whether error, or an error it was raised while handling (torch.save reports a failed write as a RuntimeError
    raised in the OSError's wake), is a full disk or an exhausted quota."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC)):
            return True
        error = error.__cause__ or error.__context__
    return False


def tensor_bytes(obj):
    """The bytes of every tensor in a nest of dicts, lists and tuples: about what its checkpoint file takes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def save_atomically(obj, path):
    """Write to path.tmp, flush it to disk, then rename: a kill leaves either the old file or the new one. On a full
    disk, remove path.tmp, leave path as it was, and return one line saying what the file needs; else None."""
    try:
        with open(path + '.tmp', 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, RuntimeError) as e:
        if not disk_full(e):
            raise
        os.remove(path + '.tmp')
        folder = os.path.dirname(os.path.abspath(path))
        kept = f'{path} is untouched' if os.path.exists(path) else 'no checkpoint was saved'
        return (f'cannot write {path}: the disk of {folder} is full ({shutil.disk_usage(folder).free / 1e6:.1f} MB '
                f'free, a checkpoint needs about {tensor_bytes(obj) / 1e6:.1f} MB); {kept}. Free space there, or '
                f'move the run to a larger disk and set --out_dir to it, then run the same command to resume')
    os.replace(path + '.tmp', path)
    return None


def save_checkpoint(results):
    """ckpt.pt (what init_from='resume' and 'auto' read), and the copies keep_last and save_best ask for. Returns
    None, or the message of a write that failed on a full disk."""
    global best_top1
    ckpt = dict(model=model.state_dict(), objective=objective.state_dict(), optimizer=optimizer.state_dict(),
                scaler=scaler.state_dict(), iter_num=iter_num, best_top1=best_top1, rng=torch.get_rng_state(),
                cuda_rng=torch.cuda.get_rng_state() if device_type == 'cuda' else None,
                config=config.to_dict(cfg), classes=classes, results=results)
    if results is not None:
        top1 = sum(r['top1'] for r in results.values()) / len(results)
        if cfg.save_best and top1 > best_top1:
            best_top1 = ckpt['best_top1'] = top1
            if problem := save_atomically(ckpt, os.path.join(cfg.out_dir, 'ckpt_best.pt')):
                return problem
    if problem := save_atomically(ckpt, ckpt_path):
        return problem
    if cfg.keep_last > 0 and results is not None:
        if problem := save_atomically(ckpt, os.path.join(cfg.out_dir, f'ckpt_{iter_num:07d}.pt')):
            return problem
        kept = sorted(f for f in os.listdir(cfg.out_dir) if f.startswith('ckpt_0') and f.endswith('.pt'))
        for old in kept[:-cfg.keep_last]:
            os.remove(os.path.join(cfg.out_dir, old))
    return None


def save_or_stop(results):
    """Save a checkpoint (rank 0); on a full disk every rank stops, with rank 0's one line."""
    problem = save_checkpoint(results) if master else None
    if agree(problem is not None):
        stop(problem)


def agree(flag):
    """True on every rank if flag is True on any rank: all ranks stop at the same iteration."""
    if not ddp:
        return flag
    flag = torch.tensor(float(flag))
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=control)
    return bool(flag)


def bad_samples(datasets):
    """{dataset: unreadable samples met so far}. Each dataset marks them in a shared (n,) vector; the maximum
    over ranks counts a file that two ranks met once."""
    counts = {}
    for name, dataset in datasets.items():
        marks = dataset.bad.float()
        if ddp:
            dist.all_reduce(marks, op=dist.ReduceOp.MAX, group=control)
        counts[name] = int(marks.sum())
    return counts


def check_finite(history):
    """Stop the run, without saving, if a loss term of the iterations in history was NaN or inf.
    history holds (iteration, term names (log keys), their values (n,) on the device): one host sync per check."""
    finite = torch.stack([values.isfinite().all() for _, _, values in history]).cpu() if history else None
    bad = finite is not None and not bool(finite.all())
    if agree(bad):
        if bad:
            it, names, values = history[int((~finite).nonzero()[0])]
            terms = ', '.join(f'{n} = {v}' for n, v, ok in zip(names, values.tolist(), values.isfinite().tolist())
                              if not ok)
            print(f'rank {rank}: the loss became non-finite at iteration {it}: {terms}', file=sys.stderr)
        if ddp:
            leave_process_groups()
        sys.exit(f'stopped at iteration {iter_num} on a non-finite loss; {ckpt_path} was not overwritten '
                 f'(it holds the last good evaluation); lower lr, or check the data, then resume from it')
    history.clear()


def evaluate_and_save():
    """Evaluate every dataset (the whole split at the end, eval_max_batches before), log it, and save a
    checkpoint. Returns the results."""
    last = iter_num == cfg.max_iters
    results = evaluate(model, val_loaders, device, autocast, None if last else cfg.eval_max_batches)
    bad = bad_samples(train_sets)
    bad_val = bad_samples({name: loader.dataset for name, loader in val_loaders.items()})
    if master:
        log(dict(event='eval', iter=iter_num, **{f'{n}/{k}': v for n, r in results.items() for k, v in r.items()},
                 **{f'{n}/bad_samples': count for n, count in bad.items()},
                 **{f'{n}/bad_val_samples': count for n, count in bad_val.items()}))
        pbar.write(f'iter {iter_num}: ' + ', '.join(f'{n} top-1 {r["top1"]:.1f}%' for n, r in results.items())
                   + ''.join(f'; {n}: {count} unreadable sample(s) replaced' for n, count in bad.items() if count))
    if iter_num > 0:
        save_or_stop(results)
    return results


stop_requested = False


def request_stop(signum, frame):
    global stop_requested
    stop_requested = True  # acted on at the end of the iteration, when the state is consistent


signal.signal(signal.SIGTERM, request_stop)


# ---- what one micro-batch goes through before the forward pass

def prepare_batch(batch, s, m):
    """Micro-batch m of slot s of this iteration, on the device and mixed: (names, x, y, ds, mix) with x
    (B, 3, T, H, W) or (B, 3, H, W), y (B,) labels within each sample's dataset, ds (B,) the index of that
    dataset in names. With mixup_alpha or cutmix_alpha, x is mixed within each dataset (augment.py) and mix is
    (partner labels, lam), else None; the draws depend on (seed, iteration, s, m, rank) only, so a resumed run
    mixes as the uninterrupted one."""
    names, x, y, ds = batch
    x, y, ds = x.to(device, non_blocking=True), y.to(device, non_blocking=True), ds.to(device, non_blocking=True)
    if cfg.mixup_alpha <= 0 and cfg.cutmix_alpha <= 0:
        return names, x, y, ds, None
    rng = np.random.default_rng([cfg.seed, iter_num, s, m, rank])
    x, mix = augment.mix(x, y, ds, cfg.mixup_alpha, cfg.cutmix_alpha, rng)
    return names, x, y, ds, mix


class InformativeCache:
    """The informative loss (MultiTrain eqs. 2-3) of a whole accumulated batch, by gradient caching: its value and
    the gradient of each micro-batch's expander rows are computed first (losses.Objective.informative_gradients);
    replay(m) then restores micro-batch m's RNG state (the same dropout as in that first pass) and returns the
    gradient its forward pass carries into backward(). Used when a step has several micro-batches and an
    expander, with informative_batch='step'; otherwise each forward pass computes the loss of its own
    micro-batch, gathered over the ranks (informative_batch='micro', as MultiTrain's release does)."""

    def __init__(self, xs, terms):
        self.z_grads, self.states, regularisers, total = objective.informative_gradients(model.features, xs, autocast)
        self.n = len(xs)
        add_terms(terms, total, {}, regularisers)

    def replay(self, m):
        losses.set_rng_state(self.states[m])
        return self.z_grads[m] * self.n  # the loss below is divided by n: this undoes it for the cached term


def add_terms(terms, loss, dataset_losses, regularisers, n=1):
    """terms[log key] += value / n, for the total, each dataset's loss and each regulariser (log.jsonl's keys)."""
    for key, value in [('loss', loss), *((f'{k}/loss', v) for k, v in dataset_losses.items()),
                       *regularisers.items()]:
        terms[key] = terms.get(key, 0) + value.detach() / n


def optimizer_step():
    """Clip the gradient, step, and zero it. With float16 the scaler unscales first and skips a step whose gradient
    overflowed (and shrinks the scale)."""
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(step.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


# ---- the training loop. A resumed run continues every loader's sample sequence where it stopped
# (sampling.rounds), and the samples' randomness comes from their own seeds (data.py), so with the model,
# objective, optimizer and RNG state restored it repeats the uninterrupted run exactly (on the CPU).
batches = sampling.rounds(train_loaders, iter_num, cfg.grad_accum)
pbar = tqdm(total=cfg.max_iters, initial=iter_num, desc='train', disable=not master, dynamic_ncols=True)
history, results = [], None
window = dict(time=time.time(), data=0.0, samples=0)  # since the last log line: seconds waiting for data, samples
while True:
    if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
        check_finite(history)  # never overwrite a good checkpoint with a broken model
        results = evaluate_and_save()
    if iter_num == cfg.max_iters:
        break

    lr = get_lr(iter_num)
    for group in optimizer.param_groups:
        group['lr'] = lr
    t_wait = time.time()
    round_ = next(batches)  # a list of slots (one per loader); a slot: grad_accum micro-batches (names, x, y, ds)
    window['data'] += time.time() - t_wait
    terms = {}
    # with CoVeR's and MultiTrain's batches, a step that takes batches of several shapes (images, clips) divides
    # every loss by all its samples (on this rank), so that each dataset weighs by its share of the step
    batch_total = (sum(len(slot[0][2]) for slot in round_)
                   if cfg.update == 'per_round' and cfg.sampling in ('proportional', 'mixed') else None)
    for s, slot in enumerate(round_):
        micro_batches = [prepare_batch(batch, s, m) for m, batch in enumerate(slot)]
        window['samples'] += sum(len(y) for _, _, y, _, _ in micro_batches)
        stepping = cfg.update == 'per_dataset' or s == len(round_) - 1  # per_round: one step after the last slot
        cache = None
        if len(micro_batches) > 1 and objective.expander is not None and cfg.informative_batch == 'step':
            cache = InformativeCache([x for _, x, _, _, _ in micro_batches], terms)
        for m, (names, x, y, ds, mix) in enumerate(micro_batches):
            if ddp:  # average gradients over ranks only in the backward pass right before a step
                step.require_backward_grad_sync = stepping and m == len(micro_batches) - 1
            z_grad = cache.replay(m) if cache else None
            with autocast:
                loss, dataset_losses, regularisers = step(names, x, y, ds, z_grad=z_grad, batch_total=batch_total,
                                                          mix=mix)
            scaler.scale(loss / len(micro_batches)).backward()  # the mean over micro-batches
            add_terms(terms, loss, dataset_losses, regularisers, len(micro_batches))
        if stepping:
            optimizer_step()
    history.append((iter_num, list(terms), torch.stack(list(terms.values())).float()))
    iter_num += 1
    pbar.update(1)

    if iter_num % cfg.log_interval == 0:  # .item() waits for the device: only at log time
        check_finite(history)
        if master:
            seconds = time.time() - window['time']
            event = dict(event='train', iter=iter_num, lr=lr, sec_per_iter=seconds / cfg.log_interval,
                         data_sec_per_iter=window['data'] / cfg.log_interval,
                         samples_per_sec=window['samples'] * world / seconds,
                         **{k: v.item() for k, v in terms.items()})
            if scaler.is_enabled():
                event['loss_scale'] = scaler.get_scale()
            if objective.uncertainty is not None:
                event.update({f'sigma/{n}': v for n, v in objective.uncertainty.sigmas().items()})
            log(event)
            pbar.set_postfix({**{k: f'{v.item():.3f}' for k, v in terms.items()},
                              'samples/s': f"{event['samples_per_sec']:.1f}",
                              'data': f"{event['data_sec_per_iter'] / event['sec_per_iter']:.0%}"})
        window = dict(time=time.time(), data=0.0, samples=0)
    if agree(stop_requested) and iter_num < cfg.max_iters:
        check_finite(history)
        save_or_stop(None)
        if master:
            log(dict(event='stopped', iter=iter_num, reason='SIGTERM'))
            again = 'the same command' + ('' if cfg.init_from in ('auto', 'resume') else ' with --init_from=auto')
            pbar.write(f'SIGTERM: saved {ckpt_path} at iteration {iter_num}; {again} continues from it')
        break
pbar.close()
close_sinks()

if master and results is not None and iter_num == cfg.max_iters:
    print_results(results)
if ddp:
    leave_process_groups()

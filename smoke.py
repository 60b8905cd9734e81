"""
The smoke mode, and the start-up check of dataset roots.

    python train.py config/k400_mit.py --smoke=True
    torchrun --standalone --nproc_per_node=2 train.py config/k400_mit.py --smoke=True

A smoke run is the set-up as it is (backbone and preset, head, objective, sampling, update scheme, optimizer and
schedule, dataset formats and clip samplers), on synthetic copies of each of its datasets written in that
dataset's own layout (synthetic.py) to a fresh temporary folder, never touching the real roots (which may be
absent), with only sizes shrunk: frames, resolution, batch sizes, iterations, the synthetic datasets' sizes,
and the checkpoint's folder (a smoke must never overwrite a real run's ckpt.pt). It trains to the middle, saves
a checkpoint, reloads it from disk (the resume code path, loaders included) and trains to the end, then runs
eval.py's evaluation on the final checkpoint and prints "smoke OK". It is what to run on a laptop before a
64-GPU job: a set-up that passes it has no typo, no shape mismatch and no missing piece between its parts.
(Pretrained weights, init_from='torchvision:...', are replaced by random ones: a smoke never downloads.)
"""

import os
import shutil
import sys
import tempfile

import synthetic

# writer options of each format's synthetic copy: 3 classes, a handful of samples per split (with 2 per dataset
# in a batch, enough to fill one global batch of 2 ranks)
_CLASSES = synthetic.UCF_CLASSES[:3]
_VIDEOS = dict(classes=_CLASSES, train_per_class=4, val_per_class=1, seconds=1.5)
SMOKE_DATA = {
    'tinyimagenet': dict(num_classes=3, train_per_class=8, val_per_class=2, size=32),
    'imagefolder': dict(num_classes=3, train_per_class=8, val_per_class=2, size=32),
    'cifar100': dict(num_classes=3, train_per_class=8, test_per_class=2),
    'ucf101': dict(classes=_CLASSES, groups=9, clips=1, seconds=1.5),  # split 1 tests groups 1-7, trains 8-9
    'hmdb51': dict(classes=_CLASSES, videos_per_class=8, seconds=1.5),
    'kinetics': _VIDEOS,
    'minikinetics': _VIDEOS,
    'ssv2': _VIDEOS,
    'moments': _VIDEOS,
    'activitynet': dict(classes=_CLASSES, train_per_class=2, val_per_class=1),
}
SMOKE_ITERS = 2           # trained as 1 + 1 around the reloaded checkpoint
SMOKE_BATCH = 2           # per dataset and rank
SMOKE_SIDE = 32           # input side; a multiple of the ViT patch and of MViT's total stride of 32
SMOKE_FRAMES = 4          # frames per clip

# Where each format's real dataset comes from: the README section that says how to get it and lay it out.
WHERE = {
    'tinyimagenet': 'Tiny-ImageNet-200', 'ucf101': 'UCF101', 'cifar100': 'CIFAR-100', 'imagefolder': 'ImageNet',
    'hmdb51': 'HMDB51', 'kinetics': 'Kinetics-400/600/700', 'minikinetics': 'Mini-Kinetics-200',
    'ssv2': 'Something-Something v2', 'moments': 'Moments in Time', 'activitynet': 'ActivityNet v1.3',
}


def missing_roots_message(cfg, argv):
    """None when every dataset of cfg has its root (or writes a synthetic copy there); else the one message that
    lists every missing root, where to get each dataset, and the smoke command that runs without them."""
    missing = [(name, spec) for name, spec in cfg.datasets.items()
               if not spec.get('synthetic') and not os.path.isdir(spec.get('root') or '')]
    if not missing:
        return None
    lines = [f"{len(missing)} of {len(cfg.datasets)} dataset roots are missing, so nothing was started:"]
    for name, spec in missing:
        fmt = spec.get('format')
        lines.append(f"  {name}: {spec.get('root')} is missing: {WHERE.get(fmt, fmt)} (format {fmt!r}), see "
                     f"README.md#real-data for where to get it and the layout it needs")
    lines += ["Put the datasets there (or point each dataset's 'root' at its copy), or first check that this set-up "
              "runs end to end, on small synthetic copies of its datasets, with:",
              f"  python train.py {' '.join(argv)} --smoke=True"]
    return '\n'.join(lines)


def _shrink(cfg, key, new, changes):
    old = getattr(cfg, key)
    if new != old:
        setattr(cfg, key, new)
        changes.append(f"{key}: {old!r} -> {new!r}")


def prepare(cfg, folder):
    """Shrink cfg in place for a smoke run whose data and checkpoints go to `folder`; returns one line per setting
    it changed ("key: old -> new"). What it does not name is the set-up's own."""
    changes = []
    datasets = {}
    for name, spec in cfg.datasets.items():
        fmt = spec.get('format')
        if fmt not in SMOKE_DATA:
            raise ValueError(f"smoke: dataset {name!r} has format {fmt!r}, which has no synthetic writer")
        new = dict(spec, root=os.path.join(folder, 'data', name), synthetic=SMOKE_DATA[fmt],
                   batch_size=min(spec.get('batch_size', SMOKE_BATCH), SMOKE_BATCH))
        if fmt not in ('tinyimagenet', 'imagefolder', 'cifar100'):  # a video format
            new['num_frames'] = min(spec.get('num_frames', SMOKE_FRAMES), SMOKE_FRAMES)
        for key in ('root', 'synthetic', 'batch_size', 'num_frames'):
            if new.get(key) != spec.get(key):
                changes.append(f"datasets[{name!r}][{key!r}]: {spec.get(key)!r} -> {new[key]!r}")
        datasets[name] = new
    cfg.datasets = datasets
    old_iters = cfg.max_iters
    _shrink(cfg, 'out_dir', os.path.join(folder, 'out'), changes)
    _shrink(cfg, 'max_iters', SMOKE_ITERS, changes)
    _shrink(cfg, 'eval_interval', SMOKE_ITERS // 2, changes)
    _shrink(cfg, 'eval_max_batches', 1, changes)
    _shrink(cfg, 'log_interval', 1, changes)
    _shrink(cfg, 'keep_last', 0, changes)
    _shrink(cfg, 'num_workers', 0, changes)
    _shrink(cfg, 'img_size', min(cfg.img_size, SMOKE_SIDE), changes)
    # the schedule keeps its shape: warm-up and milestones at the same fractions of the run
    _shrink(cfg, 'warmup_iters', cfg.warmup_iters * SMOKE_ITERS // max(old_iters, 1), changes)
    _shrink(cfg, 'lr_milestones', [max(1, round(m * SMOKE_ITERS / max(old_iters, 1))) for m in cfg.lr_milestones],
            changes)
    if cfg.init_from.startswith('torchvision:'):
        _shrink(cfg, 'init_from', 'scratch', changes)
        changes[-1] += ' (a smoke never downloads weights)'
    return changes


def make_folder():
    """A fresh temporary folder for one smoke run."""
    return tempfile.mkdtemp(prefix='nanocotrain_smoke_')


def finish(cfg, folder):
    """eval.py on the final checkpoint (rank 0, after the process group is gone), then "smoke OK" and the folder
    removed; a failure leaves the folder for a look."""
    import eval as evaluation  # eval.py; imported here, as train.py imports smoke.py before it sets anything up
    evaluation.main([f'--out_dir={cfg.out_dir}'])
    if not os.path.isfile(os.path.join(cfg.out_dir, 'eval.json')):
        sys.exit(f'smoke: eval.py wrote no {os.path.join(cfg.out_dir, "eval.json")}')
    shutil.rmtree(folder, ignore_errors=True)
    print(f'smoke OK: trained {cfg.max_iters} iterations, resumed from the checkpoint of iteration '
          f'{cfg.max_iters // 2}, evaluated with eval.py ({folder} removed)')

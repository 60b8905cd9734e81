"""
Smoke test of a set-up: its config run end to end, shrunk, on synthetic copies of its datasets. Run it on a laptop
before a cluster job.

    python -m tools.smoke config/k400_mit.py                # one process
    python -m tools.smoke config/k400_mit.py --nproc=2      # two processes under torchrun (gloo on a CPU)

What runs is the set-up as it is (backbone and preset, head, objective, sampling, update scheme, optimizer and
schedule, dataset formats and clip samplers), on synthetic copies of each of its datasets written in that dataset's
own layout (synthetic.py) to a fresh temporary folder, with only sizes shrunk: frames, resolution, batch sizes,
iterations, the synthetic datasets' sizes, and the checkpoint's folder. The real roots are never read or written
(they may be absent), and a smoke never overwrites a real run's ckpt.pt. The driver writes the shrunk set-up as a
config file and runs, as a user would: train.py to the middle (a checkpoint), train.py --init_from=resume to the
end (the resume code path, loaders included), then eval.py on the final checkpoint; it prints "smoke OK". A set-up
that passes has no typo, no shape mismatch and no missing piece between its parts. Pretrained weights
(init_from='torchvision:...') are replaced by random ones: a smoke never downloads.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import config
from tools import synthetic

REPO = Path(__file__).resolve().parents[1]

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
    'kinetics': dict(_VIDEOS, layout='cvdf_k400'),  # the shape the README's download (CVDF) leaves
    'minikinetics': _VIDEOS,
    'ssv2': _VIDEOS,
    'moments': _VIDEOS,
    'activitynet': dict(classes=_CLASSES, train_per_class=2, val_per_class=1),
    'list': _VIDEOS,  # a list of videos
}
SMOKE_ITERS = 2           # trained as 1 + 1 around the reloaded checkpoint
SMOKE_BATCH = 2           # per dataset and rank
SMOKE_SIDE = 32           # input side; a multiple of the ViT patch and of MViT's total stride of 32
SMOKE_FRAMES = 4          # frames per clip
SMOKE_ACCUM = 2           # micro-batches per step at most: the accumulation path runs, on little data

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
    _shrink(cfg, 'grad_accum', min(cfg.grad_accum, SMOKE_ACCUM), changes)
    # the schedule keeps its shape: warm-up and milestones at the same fractions of the run
    _shrink(cfg, 'warmup_iters', cfg.warmup_iters * SMOKE_ITERS // max(old_iters, 1), changes)
    _shrink(cfg, 'lr_milestones', [max(1, round(m * SMOKE_ITERS / max(old_iters, 1))) for m in cfg.lr_milestones],
            changes)
    if cfg.init_from.startswith('torchvision:'):
        _shrink(cfg, 'init_from', 'scratch', changes)
        changes[-1] += ' (a smoke never downloads weights)'
    return changes


def write_config(cfg, path):
    """cfg as a config file of plain `key = value` lines, which train.py and eval.py read like any other."""
    with open(path, 'w') as f:
        f.write('# written by tools/smoke.py: a set-up shrunk for a smoke run\n')
        for key, value in config.to_dict(cfg).items():
            f.write(f'{key} = {value!r}\n')


def run(argv, nproc=1):
    """Run the python command argv from the repository's root, its output passed through; stop on a failure."""
    if nproc > 1 and argv[0] == 'train.py':
        argv = ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', *argv]
    print(f"$ python {' '.join(argv)}", flush=True)
    if subprocess.run([sys.executable, *argv], cwd=REPO).returncode != 0:
        sys.exit(f"smoke FAILED: python {' '.join(argv)} (its output is above)")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nproc', type=int, default=1, help='training processes: >1 starts torchrun (gloo on a CPU)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args, config_args = parser.parse_known_args(argv)
    try:
        cfg = config.load(config_args)
    except config.ConfigError as e:
        sys.exit(f'config error: {e}')
    folder = tempfile.mkdtemp(prefix='nanocotrain_smoke_')
    try:
        shrunk = prepare(cfg, folder)
    except ValueError as e:
        sys.exit(str(e))
    print(f'smoke run in {folder}; shrunk:\n  ' + '\n  '.join(shrunk))
    smoke_config = os.path.join(folder, 'smoke_config.py')
    write_config(cfg, smoke_config)
    half = SMOKE_ITERS // 2
    run(['train.py', smoke_config, f'--max_iters={half}'], args.nproc)         # to the middle, and a checkpoint
    run(['train.py', smoke_config, '--init_from=resume'], args.nproc)          # the resume code path, to the end
    run(['eval.py', f'--out_dir={cfg.out_dir}'])                               # eval.py on the final checkpoint
    if not glob.glob(os.path.join(cfg.out_dir, 'eval*.json')):  # eval.json, or named after the set-up's views
        sys.exit(f'smoke FAILED: eval.py wrote no results (eval*.json) in {cfg.out_dir}')
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    print(f'smoke OK: trained {half} iteration(s), resumed from its checkpoint, trained to {SMOKE_ITERS}, evaluated '
          f'with eval.py ({folder} {"kept" if args.keep else "removed"})')


if __name__ == '__main__':
    main(sys.argv[1:])

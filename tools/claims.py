"""
Each paper's central claim, tested on synthetic data we control (and one row on real images), with several seeds,
in one table whose every verdict follows from a stated test.

    python -m tools.claims              # the full run (4 seeds, 5 for projection): docs/claims.json and .md
    python -m tools.claims --quick      # 2 seeds and a tenth of the steps: a smoke test of the pipeline, minutes
    python -m tools.claims --only cover # some claims: tokenshift, cover, ivvit, projection, informative, realdata

Every arm is an ordinary train.py config, written for each seed to OUT/configs/<arm>/seed<s>.py (OUT is out/claims,
or out/claims/quick with --quick), so any cell of the table can be rerun by hand:

    python train.py out/claims/configs/<arm>/seed1.py --out_dir=out/claims/runs/<arm>/seed1
    python eval.py --out_dir=out/claims/runs/<arm>/seed1 --temporal_tests=True

A seed sets the training (initial weights, sample order, augmentation) and the data: the synthetic writers draw
every dataset anew with that seed (data/claims/seed<s>/), so the spread over seeds covers the data too. Each run
is trained with OMP_NUM_THREADS=1, so that it repeats to the last digit however busy the machine is, then scored
(train.py's final evaluation; eval.py for the frame-order tests; the projection matrices W and the embedding
statistics read from the checkpoint). A finished run is reused when its key matches: a hash of its config, its
evaluation and of the code that shapes a run (every top-level .py file and tools/synthetic.py), so that a changed
model, sampler or writer never reuses a stale run; an interrupted full run resumes where it stopped.

The tests (tools/stats.py): two arms trained with the same seeds are compared by a two-sided paired t-test of the
per-seed differences (df = seeds - 1); chance is a constant, not an arm: the projection pairs' AUC against 50 by
an exact rank test; two models of different datasets (CoVeR's Table 2) by Welch's test. A claim "holds" when
p < 0.05 in the claimed direction, is "opposite" when p < 0.05 the other way, and is otherwise "not seen"; no
verdict from fewer than 3 seeds.
At the end, the summary (every arm's per-seed numbers, the versions, the date, the wall time) goes to
OUT/claims.json and the table to OUT/claims.md; the full run writes them to docs/ as well.
"""

import argparse
import collections
import datetime
import hashlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import config
from tools import stats

ROOT = Path(__file__).resolve().parents[1]  # the repository
QUICK_SCALE = 0.1  # --quick: a tenth of the steps
SEEDS = 4          # seeds of a claim in the full run, unless it says (CLAIMS[...]['seeds']); --quick: 2
ALPHA = 0.05       # the tests' two-sided level
MIN_SEEDS = 3      # no verdict from fewer seeds (see verdict())
DATA = 'data/claims'  # the synthetic datasets, data/claims/seed<s>/<name>, shared by the full and the quick run
DOCS = ROOT / 'docs'
# the real-data row's images: the Tiny-ImageNet subset the build machines share beside the repository
TINY_IMAGENET = ROOT.parent / 'shared' / 'data' / 'tiny-imagenet-200-mini'
OBJECTIVE_KEYS = ('sampling', 'update', 'projection', 'projection_init', 'var_weight', 'cov_weight', 'uncertainty',
                  'label_smoothing')

# -----------------------------------------------------------------------------
# the data: synthetic datasets in real layouts (tools/synthetic.py writes each on first use, options in `synthetic`)

# Short clips: 1.2 s videos read through a 1 s window, 4 frames a clip. Decoding, not the model, is most of a
# step's time on a CPU, and 4 frames are enough to see which way a shape moves.
_CLIP = dict(num_frames=4, clip_seconds=1.0, flip=False)  # no flips: they would swap MoveLeft and MoveRight
_SHORT = dict(seconds=1.2)
# the ten objects of the Tiny-ImageNet stand-in (red and blue squares, circles, triangles, crosses, rings)
TEN_OBJECTS = ['RedSquare', 'BlueSquare', 'RedCircle', 'BlueCircle', 'RedTriangle', 'BlueTriangle', 'RedCross',
               'BlueCross', 'RedRing', 'BlueRing']
# other objects, for label spaces that overlap: in green, yellow, magenta and cyan
# the i-th in colour i % 4 and shape (i // 4 + i) % 6, so that every four in a row differ in colour and shape
_COLOURS, _SHAPES = ('Green', 'Yellow', 'Magenta', 'Cyan'), ('Circle', 'Square', 'Triangle', 'Cross', 'Ring', 'Diamond')
_OTHER = [_COLOURS[i % 4] + _SHAPES[(i // 4 + i) % 6] for i in range(24)]
SHARED4, OWN_A4, OWN_B4 = _OTHER[0:4], _OTHER[4:8], _OTHER[8:12]  # claim 4: 4 shared + 4 own classes each
SHARED6, OWN6 = _OTHER[0:6], [_OTHER[6:12], _OTHER[12:18], _OTHER[18:24]]  # claim 5: 6 shared + 6 own, 3 datasets
UNRELATED10 = _OTHER[12:22]  # claim 2's control: ten objects that no `objects` video shows

DATASETS = {
    # the demo's six motion classes (two pairs differ only in the order of frames), 36 train / 14 test clips a class
    'motions': dict(format='ucf101', batch_size=8, synthetic=dict(_SHORT), **_CLIP),
    # the demo's images: ten objects, 100 train / 20 val images a class
    'shapes': dict(format='tinyimagenet', batch_size=32, crop_scale=(0.35, 1.0), synthetic={}),
    # images of ten other objects (green, yellow, magenta, cyan), as many: the unrelated-images control
    'unrelated': dict(format='tinyimagenet', batch_size=32, crop_scale=(0.35, 1.0),
                      synthetic=dict(classes=UNRELATED10)),
    # a small video dataset of the same ten objects as `shapes`, each moving in a random way: the class is the
    # object. 2 groups x 2 clips = 4 training clips a class; the 7 test groups give 14 test clips a class
    'objects': dict(format='ucf101', batch_size=8, **_CLIP, synthetic=dict(classes=TEN_OBJECTS, groups=9, clips=2,
                                                                           **_SHORT)),
    # two label spaces that overlap: 4 objects in both (named 'GreenCircle' and 'green circle'), 4 in each alone;
    # 4 training clips a class
    'overlap_a': dict(format='ucf101', batch_size=4, **_CLIP,
                      synthetic=dict(classes=SHARED4 + OWN_A4, groups=9, clips=2, **_SHORT)),
    'overlap_b': dict(format='moments', batch_size=4, **_CLIP,
                      synthetic=dict(classes=SHARED4 + OWN_B4, train_per_class=4, val_per_class=10, **_SHORT)),
    # three label spaces of 12 classes: 6 objects in all three, 6 in each alone; 4 or 5 training clips a class
    'many_a': dict(format='ucf101', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[0], groups=9, clips=2, **_SHORT)),
    'many_b': dict(format='moments', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[1], train_per_class=4, val_per_class=10, **_SHORT)),
    'many_c': dict(format='hmdb51', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[2], videos_per_class=10, **_SHORT)),
    # real images: 200 classes of Tiny-ImageNet, 50 train / 10 val images a class; the same for every seed
    'tinyimagenet': dict(format='tinyimagenet', root=str(TINY_IMAGENET), batch_size=32, crop_scale=(0.25, 1.0)),
}


def dataset(name, seed):
    """The settings of dataset `name` for seed: a synthetic one is drawn by the writer with that seed into its own
    folder, data/claims/seed<s>/<name>."""
    spec = dict(DATASETS[name])
    if 'synthetic' in spec:
        spec['root'] = f'{DATA}/seed{seed}/{name}'
        spec['synthetic'] = dict(spec['synthetic'], seed=seed)
    return spec


# -----------------------------------------------------------------------------
# the arms: each one a train.py config (for each seed)


def _objective(path):
    """The objective switches that a config file of config/ sets (MultiTrain's Table 3 rows, CoVeR)."""
    cfg = config.load([str(ROOT / path)])
    return {key: getattr(cfg, key) for key in OBJECTIVE_KEYS}


def arm(name, datasets, iters, note, eval_args=(), stats=False, **settings):
    """One arm: a name, its config settings (the datasets by name), the extra eval.py arguments and whether to
    measure the embedding."""
    base = dict(dim=64, depth=4, num_heads=4, patch_size=8, img_size=32, shift_div=4, num_workers=0,
                lr=1e-3, min_lr=1e-4, warmup_iters=max(iters // 20, 1), max_iters=iters, eval_interval=iters,
                eval_max_batches=1, log_interval=max(iters // 20, 1))
    base.update(settings)
    return dict(name=name, note=note, datasets=list(datasets), settings=base, eval_args=list(eval_args), stats=stats)


def arms(scale=1.0):
    """Every arm, by name, with its steps multiplied by scale (--quick: 0.1). The real-data arms only where the
    Tiny-ImageNet subset is."""
    n = lambda iters: max(round(iters * scale), 2)
    temporal = ['--temporal_tests=True']
    mt = _objective('config/multitrain.py')                         # Table 3 "Ours": add + informative + uncertainty
    vanilla = _objective('config/multitrain_vanilla.py')            # cross-entropy per head, same mixed batches
    no_inf = _objective('config/multitrain_no_informative.py')      # add, no informative loss
    separate = _objective('config/multitrain_no_informative_no_add.py')  # separate projection, no informative loss
    cover = dict(sampling='round_robin', update='per_round')        # one step on the sum of both datasets' losses
    stress = dict(projection_init='normal', lr=3e-3, min_lr=3e-4)   # the official init of W, 3x the learning rate
    many = ('many_a', 'many_b', 'many_c')
    overlap = ('overlap_a', 'overlap_b')
    out = [
        arm('motions_shift', ['motions'], n(900), 'token shift (shift_div=4), motions alone', temporal),
        arm('motions_noshift', ['motions'], n(900), 'no shift (shift_div=0), motions alone', temporal, shift_div=0),
        arm('objects_alone', ['objects'], n(600), 'objects videos alone', temporal),
        arm('objects_images', ['objects', 'shapes'], n(600), 'objects videos + shapes images (same objects), one '
            'step on the sum', **cover),
        arm('objects_unrelated', ['objects', 'unrelated'], n(600), 'objects videos + images of ten other objects, '
            'one step on the sum', **cover),
        *[arm(f'objects_images_w{w:g}', ['objects', 'shapes'], n(600), f'as objects_images, image loss weight {w:g}',
              loss_weights={'shapes': w}, **cover) for w in (0.25, 0.5, 2.0)],
        arm('shapes_alone', ['shapes'], n(900), 'shapes images alone, 900 steps'),
        arm('shapes_alone_long', ['shapes'], n(1800), 'shapes images alone, 1,800 steps'),
        arm('motions_long', ['motions'], n(1800), 'token shift, motions alone, 1,800 steps'),
        arm('shapes_motions', ['shapes', 'motions'], n(900), 'one model, shapes + motions, a step per batch'),
        arm('overlap_vanilla', overlap, n(600), 'Vanilla', **vanilla),
        arm('overlap_multitrain', overlap, n(600), 'MultiTrain', **mt),
        arm('overlap_no_uncertainty', overlap, n(600), 'MultiTrain, uncertainty weighting off', **{**mt,
            'uncertainty': False}),
        arm('overlap_no_informative', overlap, n(600), 'MultiTrain, informative loss off', **no_inf),
        arm('overlap_no_projection', overlap, n(600), 'MultiTrain, no projection', **{**mt, 'projection': 'none'}),
        arm('many_add', many, n(600), 'add, w/o informative', stats=True, **{**no_inf, **stress}),
        arm('many_add_informative', many, n(600), 'add + informative (MultiTrain)', stats=True, **{**mt, **stress}),
        arm('many_separate', many, n(600), "'separate', w/o informative", stats=True, **{**separate, **stress}),
    ]
    if TINY_IMAGENET.is_dir():
        out += [arm('tin_alone', ['tinyimagenet'], n(600), 'Tiny-ImageNet subset alone'),
                arm('tin_motions', ['tinyimagenet', 'motions'], n(600), 'Tiny-ImageNet subset + motions videos, one '
                    'step on the sum', **cover)]
    return {a['name']: a for a in out}


def config_text(a, seed):
    """The arm's train.py config file for seed: one `key = value` line per setting."""
    lines = [f"# tools/claims.py arm {a['name']}, seed {seed}: {a['note']}. Run with --out_dir=...", '',
             f'seed = {seed}']
    for key, value in a['settings'].items():
        lines.append(f'{key} = {value!r}')
    lines.append('datasets = {')
    lines += [f'    {name!r}: {dataset(name, seed)!r},' for name in a['datasets']]
    lines.append('}')
    return '\n'.join(lines) + '\n'


def budget(a):
    """What an arm spends: iterations, backbone updates (optimizer steps), and samples per iteration of each
    dataset. With update='per_dataset' each loader's batch is a step (round-robin: one per dataset; 'mixed' and
    'proportional': one per sample shape); with 'per_round' an iteration is one step."""
    s = a['settings']
    specs = {d: config.dataset_spec(d, dataset(d, 0)) for d in a['datasets']}
    if s.get('sampling', 'round_robin') == 'round_robin':
        loaders = len(specs)
    else:
        loaders = len({'image' if config.FORMATS[sp['format']] != 'video' else sp['num_frames']
                       for sp in specs.values()})
    per_iter = 1 if s.get('update', 'per_dataset') == 'per_round' else loaders
    return dict(iterations=s['max_iters'], updates=s['max_iters'] * per_iter,
                batch={d: sp['batch_size'] for d, sp in specs.items()})


# -----------------------------------------------------------------------------
# running an arm: train.py, eval.py, and what is read from the checkpoint


def code_hash():
    """A hash of the files that shape a run: every top-level .py file (the core: config, data, readers, decode,
    sampling, model, losses, train, eval, ...) and the synthetic writers; not the docs, not the tools that only
    read results."""
    h = hashlib.sha256()
    for path in sorted(ROOT.glob('*.py')) + [ROOT / 'tools' / 'synthetic.py']:
        h.update(path.name.encode() + b'\0' + path.read_bytes() + b'\0')
    return h.hexdigest()[:16]


def run_key(a, seed, code):
    """The key of a finished run: its config, its evaluation, the embedding measurement's code and the core's."""
    parts = [config_text(a, seed), json.dumps(a['eval_args']), code]
    if a['stats']:
        parts.append(_EMBEDDING_SOURCE)
    return hashlib.sha256('\0'.join(parts).encode()).hexdigest()[:16]


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _call(argv, log):
    """Run python argv in the repository, output to log; returns the child's CPU seconds (user + system: about
    its wall time on an idle core, since each run has one thread)."""
    with open(log, 'a') as f:
        print(f"$ {' '.join(argv)}", file=f, flush=True)
        child = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {child.returncode}); see {log}")
    return usage.ru_utime + usage.ru_stime


def run(a, seed, out, code, force=False):
    """Train and evaluate arm a with seed; returns the run's record (metrics, seconds). A finished run whose key
    matches is reused."""
    cfg_path = out / 'configs' / a['name'] / f'seed{seed}.py'
    run_dir = out / 'runs' / a['name'] / f'seed{seed}'
    done_path = run_dir / 'claims_run.json'
    key = run_key(a, seed, code)
    if done_path.exists() and not force:
        done = json.loads(done_path.read_text())
        if done.get('key') == key:
            done['reused'], done['metrics'] = True, read_metrics(run_dir)  # the table's reading may have changed
            return done
    log, t0, cpu = run_dir / 'claims.log', time.time(), 0.0
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    cpu += _call(['train.py', str(cfg_path), f'--out_dir={run_dir}'], log)
    if a['eval_args']:  # else the final evaluation in log.jsonl (the one view of eval.py's defaults)
        cpu += _call(['eval.py', f'--out_dir={run_dir}', *a['eval_args']], log)
    if a['stats']:
        cpu += _call(['tools/claims.py', '--embedding_stats', str(run_dir)], log)
    done = dict(arm=a['name'], seed=seed, key=key, code=code, config=config_text(a, seed), eval_args=a['eval_args'],
                command=f"python train.py {cfg_path} --out_dir={run_dir}", seconds=round(time.time() - t0, 1),
                cpu_seconds=round(cpu, 1), metrics=read_metrics(run_dir))
    done_path.write_text(json.dumps(done, indent=1))
    return done


def read_metrics(run_dir):
    """What the table needs from a run: the final evaluation (train.py's, in log.jsonl), eval.json's frame orders
    when eval.py ran, the first and last training losses, the projection matrices W (every entry, from the
    checkpoint) and the embedding statistics when measured."""
    events = [json.loads(line) for line in (run_dir / 'log.jsonl').read_text().splitlines()]
    final = [e for e in events if e['event'] == 'eval'][-1]
    names = [k[:-len('/top1')] for k in final if k.endswith('/top1')]
    m = dict(iter=final['iter'], results={n: dict(top1=final[f'{n}/top1'], per_class=final[f'{n}/per_class_top1'])
                                          for n in names})
    if (run_dir / 'eval.json').exists():
        ev = json.loads((run_dir / 'eval.json').read_text())
        if 'frame_orders' in ev:
            m['orders'] = {n: {o: dict(top1=r['top1'], per_class=r['per_class_top1']) for o, r in orders.items()}
                           for n, orders in ev['frame_orders'].items()}
    train = [e for e in events if e['event'] == 'train']
    if train:
        m['final_loss'] = {k: v for k, v in train[-1].items() if k == 'loss' or k.endswith('/loss')}
        m['first_loss'] = {k: v for k, v in train[0].items() if k == 'loss' or k.endswith('/loss')}
    weights = projection_weights(run_dir / 'ckpt.pt')
    if weights:
        m['W'] = weights
    if (run_dir / 'embedding.json').exists():
        m['embedding'] = json.loads((run_dir / 'embedding.json').read_text())
    return m


def projection_weights(ckpt_path):
    """{'source -> target': {'source': [classes], 'target': [classes], 'weight': rows (C_target) of C_source}}
    of every projection W of a checkpoint, or {} without projections."""
    import torch
    if not ckpt_path.exists():
        return {}
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    out = {}
    prefix = 'projection.proj.'
    for key, value in ckpt.get('objective', {}).items():
        if key.startswith(prefix) and key.endswith('.weight'):
            source, target = key[len(prefix):-len('.weight')].split('->')
            out[f'{source} -> {target}'] = dict(source=ckpt['classes'][source], target=ckpt['classes'][target],
                                                weight=value.tolist())  # (C_target, C_source)
    return out


def embedding_stats(run_dir):
    """The backbone embedding Z (N, D) of every validation clip of a run (one view each, all datasets): the mean
    over dimensions of each dimension's std over clips, and the effective rank of Z (Roy & Vetterli, 2007:
    exp of the entropy of the normalised singular values of the centred Z; D for a spread embedding, 1 for Z
    collapsed onto a line). A collapsed embedding, which the informative loss is said to prevent, has both small.
    Written to run_dir/embedding.json."""
    import torch

    import data
    from eval import load_run
    from model import build_model
    torch.set_num_threads(1)
    cfg, ckpt, _ = load_run([f'--out_dir={run_dir}'])
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.eval()
    zs = []
    with torch.no_grad():
        for name, spec in cfg.datasets.items():
            for x, _ in data.make_loader(config.dataset_spec(name, spec), 'val', cfg):
                zs.append(model.features(x.flatten(0, 1)))               # (B*V, D)
    z = torch.cat(zs).double()                                            # (N, D)
    z = z - z.mean(0)
    s = torch.linalg.svdvals(z)                                           # (min(N, D),)
    p = s / s.sum()
    effective_rank = float(torch.exp(-(p * p.clamp_min(1e-30).log()).sum()))
    out = dict(n=z.shape[0], dim=z.shape[1], mean_std=float(z.std(0).mean()), min_std=float(z.std(0).min()),
               effective_rank=effective_rank)
    (Path(run_dir) / 'embedding.json').write_text(json.dumps(out, indent=1))
    print(out)


# read once, at import: inspect reads the file again on every call, which gives other lines if the file is edited
# while a run is under way
_EMBEDDING_SOURCE = inspect.getsource(embedding_stats)


# -----------------------------------------------------------------------------
# the rows: a comparison, its test and its verdict


def verdict(test, sign=1, n=None, alpha=ALPHA):
    """The verdict of a test (a dict with the mean difference A - B and the two-sided p) on n seeds: sign 1 or -1
    is the claimed direction ('holds' when p < alpha that way, 'opposite' when p < alpha the other way, else 'not
    seen'); sign 0 is no claimed direction ('A ahead' or 'B ahead' when p < alpha, else 'no difference
    detected': not a proof that the arms are alike). No verdict from fewer than MIN_SEEDS seeds: with 2, the
    t-test has one degree of freedom, and two seeds whose differences are equal (likely when top-1 moves in steps
    of one test clip) give t = infinity."""
    if test is None or (n is not None and n < MIN_SEEDS):
        return f'no verdict ({n} seed{"s" if n != 1 else ""})'
    separated = test['p'] < alpha
    if sign == 0:
        return ('A ahead' if test['mean'] > 0 else 'B ahead') if separated else 'no difference detected'
    if not separated:
        return 'not seen'
    return 'holds' if test['mean'] * sign > 0 else 'opposite'


def _budgets_differ(a_arm, b_arm, all_arms):
    """Whether two arms spend differently (iterations, backbone updates, or the batch sizes, whatever the
    datasets' names), and the two budgets."""
    a, b = budget(all_arms[a_arm]), budget(all_arms[b_arm])
    spend = lambda x: (x['iterations'], x['updates'], sorted(x['batch'].values()))
    return spend(a) != spend(b), a, b


def row(claim, setting, metric, a, b, a_arm, b_arm, va, vb, sign=1, unit='%', paper='', why='', test='paired t',
        all_arms=None):
    """A row comparing arm a_arm (values va, one per seed; shown as a) with b_arm (vb, the same seeds): the
    per-seed differences, the test (a paired t-test, or 'welch' for models of different datasets), the verdict,
    the paper's own figure and, when the two arms' budgets differ, why."""
    all_arms = all_arms or arms()
    differ, ba, bb = _budgets_differ(a_arm, b_arm, all_arms)
    result = None
    if len(va) > 1:
        result = stats.welch_t(va, vb) if test == 'welch' else stats.paired_t(va, vb)
    return dict(claim=claim, setting=setting, metric=metric, a=a, b=b, a_arm=a_arm, b_arm=b_arm, a_values=va,
                b_values=vb, diffs=[x - y for x, y in zip(va, vb)], a_mean_std=stats.mean_std(va),
                b_mean_std=stats.mean_std(vb), unit=unit, sign=sign, test='Welch t' if test == 'welch' else 'paired t',
                result=result, verdict=verdict(result, sign, len(va)), paper=paper, budgets_differ=differ,
                budget_a=ba, budget_b=bb, why=why)


def constant_row(claim, setting, metric, a, a_arm, va, constant, result, test, sign=1, unit='%', paper=''):
    """A row comparing arm a_arm's values with a constant (chance), by the given test result."""
    return dict(claim=claim, setting=setting, metric=metric, a=a, b=f'chance ({constant:g})', a_arm=a_arm,
                b_arm=None, a_values=va, b_values=None, constant=constant, diffs=[v - constant for v in va],
                a_mean_std=stats.mean_std(va), b_mean_std=(constant, 0.0), unit=unit, sign=sign, test=test,
                result=result, verdict=verdict(result, sign, len(va)), paper=paper, budgets_differ=False, why='')


def class_mean(result, classes):
    """Mean per-class top-1 (%) over classes."""
    return sum(result['per_class'][c] for c in classes) / len(classes)


def pair_groups(W, shared_names):
    """For each projection W of a run: (its true-pair entries, its other entries). A true pair is one object
    under its two names: shared_names {dataset: [names of the shared objects, in one order]}."""
    groups = []
    for key, w in sorted(W.items()):
        source, target = key.split(' -> ')
        truth = set(zip(shared_names[source], shared_names[target]))
        marked = []
        others = []
        for t, target_class in enumerate(w['target']):
            for s, source_class in enumerate(w['source']):
                (marked if (source_class, target_class) in truth else others).append(w['weight'][t][s])
        groups.append((marked, others))
    return groups


MOTION = ['MoveLeft', 'MoveRight', 'Grow', 'Shrink']  # the classes that differ from another only in motion


def names_of(dataset_name, objects):
    """The class names that a dataset's layout gives to objects ('GreenCircle' in UCF101, 'green circle' in
    Moments, 'green_circle' in HMDB51)."""
    from tools import synthetic
    fmt = DATASETS[dataset_name]['format']
    if fmt == 'moments':
        return [synthetic.MOMENTS_NAMES[o] for o in objects]
    if fmt == 'hmdb51':
        return [synthetic._snake(o) for o in objects]
    return list(objects)


CLAIMS = {
    'tokenshift': dict(title='IV-ViT / TokenShift: the shift makes motion-only classes learnable by a frame-wise '
                             'model', arms=['motions_shift', 'motions_noshift']),
    'cover': dict(title='CoVeR: images help a small appearance video dataset (which images, at which weight); '
                        'reversal hurts motion, not appearance',
                  arms=['objects_alone', 'objects_images', 'objects_unrelated', 'objects_images_w0.25',
                        'objects_images_w0.5', 'objects_images_w2', 'motions_shift']),
    'ivvit': dict(title='IV-ViT Table 1: one model for images and videos vs one model each, at equal steps per '
                        'dataset and at equal backbone updates',
                  arms=['shapes_motions', 'shapes_alone', 'motions_shift', 'shapes_alone_long', 'motions_long']),
    'projection': dict(title='MultiTrain: projections find the shared classes; MultiTrain vs Vanilla and each of '
                             'the three switches between them',
                       arms=['overlap_multitrain', 'overlap_vanilla', 'overlap_no_uncertainty',
                             'overlap_no_informative', 'overlap_no_projection'], seeds=5),
    'informative': dict(title="MultiTrain Table 3: 'add' without the informative loss collapses, the loss or "
                              "'separate' rescues it", arms=['many_add', 'many_add_informative', 'many_separate']),
    'realdata': dict(title='Real images: the Tiny-ImageNet subset alone vs co-trained with a video dataset',
                     arms=['tin_alone', 'tin_motions']),
}

# the papers' own figures, as each row quotes them
PAPER = dict(
    cover_table2='CoVeR Table 2 (TimeSformer): reversed frames cost SSv2 36.2 points (58.8 to 22.6), K400 0.1',
    cover_table6='CoVeR Table 6 (K400+SSv2+MiT+ImNet): w_image 0.5 vs 0: SSv2 70.8 vs 70.6, K400 87.2 vs 87.2, '
                 'MiT 46.1 vs 45.9',
    cover_table6_beyond='CoVeR Table 6 stops at w_image 0.75 (SSv2 70.6, K400 87.2, MiT 45.8, as at 0)',
    ivvit_images='IV-ViT Table 1 (K400 init), joint vs images-only model: Tiny-ImageNet 83.22 vs 83.95, '
                 'CIFAR-100 88.69 vs 87.74',
    ivvit_videos='IV-ViT Table 1 (K400 init), joint vs videos-only model: UCF101 90.08 vs 93.10, mini-Kinetics '
                 '62.83 vs 68.75',
    ivvit_tin='IV-ViT Table 1 (K400 init), Tiny-ImageNet: 83.22 joint (with CIFAR-100, UCF101, mini-Kinetics) vs '
              '83.95 images-only (with CIFAR-100)',
    mt_vanilla='MultiTrain Table 3 (K400 / MiT top-1): 81.9 / 41.7 vs Vanilla (50 ep) 80.1 / 33.4',
    mt_no_informative='MultiTrain Table 3 (K400 / MiT top-1): 81.9 / 41.7 vs w/o informative loss 13.5 / 7.3',
    mt_no_projection='MultiTrain Table 3 (K400 / MiT top-1): 81.9 / 41.7 vs w/o projection loss 80.6 / 39.9',
    mt_no_uncertainty='not ablated in MultiTrain Table 3',
    mt_separate='MultiTrain Table 3 (K400 top-1): w/o informative & w/o projection add 80.4 vs w/o informative 13.5',
    tokenshift='no ablation of the shift in IV-ViT (it adopts TokenShift as is)',
    mt_pairs='MultiTrain Table 4 lists top-5 pairs of W, e.g. (bending metal, bending); no score against chance',
)


def rows_for(claim, R, all_arms=None):
    """The table rows of claim from R {arm: [metrics of each seed]}."""
    all_arms = all_arms or arms()
    top1 = lambda a, d: [m['results'][d]['top1'] for m in R[a]]
    cmp = lambda *args, **kw: row(*args, all_arms=all_arms, **kw)
    if claim == 'tokenshift':
        mot = lambda a, order: [class_mean(m['orders']['motions'][order], MOTION) for m in R[a]]
        lost = lambda a: [x - y for x, y in zip(mot(a, 'normal'), mot(a, 'reversed'))]
        return [cmp('1 TokenShift', 'motions, 4 motion-only classes', 'top-1 on them', 'shift', 'no shift',
                    'motions_shift', 'motions_noshift', mot('motions_shift', 'normal'),
                    mot('motions_noshift', 'normal'), paper=PAPER['tokenshift']),
                cmp('1 TokenShift', 'motions, 4 motion-only classes', 'top-1 lost on reversed clips', 'shift',
                    'no shift', 'motions_shift', 'motions_noshift', lost('motions_shift'), lost('motions_noshift'),
                    paper=PAPER['tokenshift']),
                cmp('1 TokenShift', 'motions, all 6 classes', 'top-1', 'shift', 'no shift', 'motions_shift',
                    'motions_noshift', top1('motions_shift', 'motions'), top1('motions_noshift', 'motions'),
                    paper=PAPER['tokenshift'])]
    if claim == 'cover':
        drop = lambda a, d: [m['orders'][d]['normal']['top1'] - m['orders'][d]['reversed']['top1'] for m in R[a]]
        objects = 'objects: 10 appearance classes, 4 train clips each (+1,000 images)'
        images_why = 'co-training adds an image batch of 32 to each step (CoVeR); the video batches are the same'
        rows = [cmp('2 CoVeR', objects, 'video top-1', 'videos + images', 'videos alone', 'objects_images',
                    'objects_alone', top1('objects_images', 'objects'), top1('objects_alone', 'objects'),
                    paper=PAPER['cover_table6'], why=images_why),
                cmp('2 CoVeR control', objects, 'video top-1', 'videos + unrelated images', 'videos alone',
                    'objects_unrelated', 'objects_alone', top1('objects_unrelated', 'objects'),
                    top1('objects_alone', 'objects'), paper='no such control in CoVeR', why=images_why),
                cmp('2 CoVeR control', objects, 'video top-1', 'same-object images', 'unrelated images',
                    'objects_images', 'objects_unrelated', top1('objects_images', 'objects'),
                    top1('objects_unrelated', 'objects'), paper='no such control in CoVeR')]
        for w in (0.25, 0.5, 2.0):
            name = f'objects_images_w{w:g}'
            rows.append(cmp('2 CoVeR Table 6', f'{objects}, image loss weight {w:g}', 'video top-1',
                            f'w_image {w:g}', 'videos alone', name, 'objects_alone', top1(name, 'objects'),
                            top1('objects_alone', 'objects'), why=images_why,
                            paper=PAPER['cover_table6'] if w == 0.5 else PAPER['cover_table6_beyond']))
        rows.append(cmp('2 CoVeR Table 2', "reversed test clips; claim 1's motions runs and the objects-alone "
                        'runs above, reused: no new evidence', 'top-1 lost', 'motions', 'objects', 'motions_shift',
                        'objects_alone', drop('motions_shift', 'motions'), drop('objects_alone', 'objects'),
                        test='welch', paper=PAPER['cover_table2'],
                        why='two models of two datasets (not paired: Welch test), each at its own claim\'s steps'))
        return rows
    if claim == 'ivvit':
        joint_why = 'equal steps per dataset (900 batches of each); the joint model takes twice the backbone updates'
        long_why = ('equal backbone updates (1,800); the separate model sees its dataset twice as often, the joint '
                    'one spends half its updates on the other dataset')
        return [cmp('3 IV-ViT', 'shapes (images), equal steps per dataset', 'top-1', 'joint', 'images alone',
                    'shapes_motions', 'shapes_alone', top1('shapes_motions', 'shapes'), top1('shapes_alone', 'shapes'),
                    sign=0, paper=PAPER['ivvit_images'], why=joint_why),
                cmp('3 IV-ViT', 'shapes (images), equal backbone updates', 'top-1', 'joint', 'images alone',
                    'shapes_motions', 'shapes_alone_long', top1('shapes_motions', 'shapes'),
                    top1('shapes_alone_long', 'shapes'), sign=0, paper=PAPER['ivvit_images'], why=long_why),
                cmp('3 IV-ViT', 'motions (videos), equal steps per dataset', 'top-1', 'joint', 'videos alone',
                    'shapes_motions', 'motions_shift', top1('shapes_motions', 'motions'),
                    top1('motions_shift', 'motions'), sign=0, paper=PAPER['ivvit_videos'], why=joint_why),
                cmp('3 IV-ViT', 'motions (videos), equal backbone updates', 'top-1', 'joint', 'videos alone',
                    'shapes_motions', 'motions_long', top1('shapes_motions', 'motions'),
                    top1('motions_long', 'motions'), sign=0, paper=PAPER['ivvit_videos'], why=long_why)]
    if claim == 'projection':
        shared = {d: names_of(d, SHARED4) for d in ('overlap_a', 'overlap_b')}
        groups = [pair_groups(m['W'], shared) for m in R['overlap_multitrain']]  # per seed: one group per W
        auc = [100 * stats.rank_test(g)['auc'] for g in groups]
        exact = stats.rank_test([grp for g in groups for grp in g])
        pooled = dict(mean=exact['auc'] * 100 - 50, p=exact['p'])
        mean = lambda a, fn: [sum(fn(m, d) for d in ('overlap_a', 'overlap_b')) / 2 for m in R[a]]
        all_top1 = lambda a: mean(a, lambda m, d: m['results'][d]['top1'])
        shared_top1 = lambda a: mean(a, lambda m, d: class_mean(m['results'][d], shared[d]))
        setting = '2 datasets, 4 of 8 classes shared, 4 train clips a class'
        rows = [constant_row('4 MultiTrain', '2 datasets, 4 of 8 classes shared; every entry of both W',
                             'AUC of the true pairs in W', 'learned W', 'overlap_multitrain', auc, 50.0, pooled,
                             f"exact rank test, {len(groups) * 2} W pooled (one-sided)", paper=PAPER['mt_pairs'])]
        for b, label, paper in (('overlap_vanilla', 'Vanilla', PAPER['mt_vanilla']),
                                ('overlap_no_uncertainty', 'w/o uncertainty', PAPER['mt_no_uncertainty']),
                                ('overlap_no_informative', 'w/o informative', PAPER['mt_no_informative']),
                                ('overlap_no_projection', 'w/o projection', PAPER['mt_no_projection'])):
            rows.append(cmp('4 MultiTrain', setting, 'mean top-1', 'MultiTrain', label, 'overlap_multitrain', b,
                            all_top1('overlap_multitrain'), all_top1(b), paper=paper))
        rows.append(cmp('4 MultiTrain', setting, 'mean top-1, the 4 shared classes', 'MultiTrain', 'Vanilla',
                        'overlap_multitrain', 'overlap_vanilla', shared_top1('overlap_multitrain'),
                        shared_top1('overlap_vanilla')))
        return rows
    if claim == 'informative':
        many = ('many_a', 'many_b', 'many_c')
        mean = lambda a: [sum(m['results'][d]['top1'] for d in many) / 3 for m in R[a]]
        rank = lambda a: [m['embedding']['effective_rank'] for m in R[a]]
        setting = '3 datasets x 12 classes, W ~ N(0, 0.02), lr 3e-3'
        return [cmp('5 MultiTrain Table 3', setting, 'mean top-1', 'add + informative', 'add w/o informative',
                    'many_add_informative', 'many_add', mean('many_add_informative'), mean('many_add'),
                    paper=PAPER['mt_no_informative']),
                cmp('5 MultiTrain Table 3', setting, 'mean top-1', "'separate' w/o inf.", 'add w/o informative',
                    'many_separate', 'many_add', mean('many_separate'), mean('many_add'), paper=PAPER['mt_separate']),
                cmp('5 MultiTrain Table 3', setting, 'embedding effective rank', 'add + informative',
                    'add w/o informative', 'many_add_informative', 'many_add', rank('many_add_informative'),
                    rank('many_add'), unit=''),
                cmp('5 MultiTrain Table 3', setting, 'embedding effective rank', "'separate' w/o inf.",
                    'add w/o informative', 'many_separate', 'many_add', rank('many_separate'), rank('many_add'),
                    unit='')]
    if claim == 'realdata':
        if 'tin_alone' not in R:
            return []
        return [cmp('6 real images', 'Tiny-ImageNet subset (200 classes, 50 train images each), + motions videos',
                    'image top-1', 'images + videos', 'images alone', 'tin_motions', 'tin_alone',
                    top1('tin_motions', 'tinyimagenet'), top1('tin_alone', 'tinyimagenet'), sign=0,
                    paper=PAPER['ivvit_tin'],
                    why='co-training adds a video batch of 8 to each step; the image batches are the same')]
    raise KeyError(claim)


# -----------------------------------------------------------------------------
# the summary and its table


def _fmt(ms, unit):
    mean, std = ms
    return f'{mean:.1f} ± {std:.1f}{unit}'


def _fmt_test(r):
    res = r['result']
    if res is None:
        return '—'
    df = f"{res['df']:.1f}" if isinstance(res.get('df'), float) else res.get('df')
    test = r['test'] + (f', df {df}' if 'df' in res else '')
    return f"{test}: p = {res['p']:.3g}"


def _fmt_diff(r):
    res = r['result']
    if res is None:
        return '—'
    ci = f" [{res['ci95'][0]:.1f}, {res['ci95'][1]:.1f}]" if 'ci95' in res else ''
    return f"{res['mean']:+.1f}{r['unit']}{ci}"


def markdown(summary):
    """The docs table of a summary (docs/claims.md), generated from it alone."""
    scale = summary['steps_scale']
    counts = collections.Counter(summary['seeds'].values())
    common = counts.most_common(1)[0][0]
    others = ', '.join(f'{n} for {c}' for c, n in summary['seeds'].items() if n != common)
    seeds = f"{common} seeds" + (f' ({others})' if others else '')
    head = (f"Full run: {seeds}" if scale == 1.0 else
            f"REDUCED RUN ({seeds}, {scale:g} x the steps): a smoke test of the pipeline, not a result")
    v = summary['versions']
    runs = [r for a in summary['arms'].values() for r in a['runs'].values()]
    reused = sum(r['reused'] for r in runs)
    cpu = f"; {v['cpu']}" if 'cpu' in v else ''
    about = (f"{head}. {summary['date']}, torch {v['torch']}, torchvision {v['torchvision']}, PyAV {v['av']}, "
             f"Python {v['python']}{cpu}; code {summary['code']}; wall time {summary['wall_seconds'] / 60:.1f} min "
             f"with {summary['jobs']} runs at a time ({reused} of {len(runs)} arm-seeds reused from an earlier "
             f"invocation); {summary['cpu_seconds'] / 60:.1f} CPU-minutes for all the arm-seeds.")
    tests = ('Tests: two arms with the same seeds, a two-sided paired t-test of the per-seed differences at '
             'df = seeds - 1 (the t distribution computed in tools/stats.py); a value against chance, the test '
             'named in the row; p < 0.05 in the claimed direction: "holds", the other way: "opposite", else '
             '"not seen" (or, with no claimed direction, "no difference detected"); no verdict from fewer than '
             f'{MIN_SEEDS} seeds. A - B: the mean per-seed difference and its 95% interval. Budgets: every pair of '
             'arms has equal iterations, backbone updates and batches, unless the last column says why not.')
    lines = [textwrap.fill(about, 116), '', textwrap.fill(tests, 116), '',
             '| claim | setting | metric | A | B | A: mean ± std | B: mean ± std | A - B [95% CI] | test | verdict | '
             "paper's figure | budgets |",
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in summary['rows']:
        lines.append(f"| {r['claim']} | {r['setting']} | {r['metric']} | {r['a']} | {r['b']} | "
                     f"{_fmt(r['a_mean_std'], r['unit'])} | {_fmt(r['b_mean_std'], r['unit'])} | {_fmt_diff(r)} | "
                     f"{_fmt_test(r)} | {r['verdict']} | {r['paper'] or '—'} | "
                     f"{r['why'] if r['budgets_differ'] else 'equal'} |")
    lines += ['', '## Arms', '', '| arm | what | iterations | backbone updates | batch | seconds a seed (CPU) |',
              '| --- | --- | --- | --- | --- | --- |']
    for name, a in summary['arms'].items():
        cpu = [r['cpu_seconds'] for r in a['runs'].values() if r.get('cpu_seconds') is not None]
        b = a['budget']
        seconds = f'{sum(cpu) / len(cpu):.0f}' if cpu else '—'
        lines.append(f"| {name} | {a['note']} | {b['iterations']} | {b['updates']} | "
                     f"{', '.join(f'{d} {n}' for d, n in b['batch'].items())} | {seconds} |")
    return '\n'.join(lines) + '\n'


BEGIN = '<!-- the table: generated by `python -m tools.claims` from docs/claims.json; do not edit by hand -->'
END = '<!-- end of the generated table -->'


def generated_block(text):
    """The generated part of a docs page (between BEGIN and END), or None when it has none."""
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip('\n') + '\n'


def update_docs(summary, folder=DOCS):
    """Write the summary to folder/claims.json and its table into folder/claims.md between BEGIN and END (the
    page's own text around it stays; a page without the markers gets the table appended)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'claims.json').write_text(json.dumps(summary, indent=1) + '\n')
    page = folder / 'claims.md'
    text = page.read_text() if page.exists() else '# Claims on controlled data\n'
    block = f'{BEGIN}\n\n{markdown(summary)}\n{END}'
    if generated_block(text) is None:
        text = text.rstrip('\n') + '\n\n' + block + '\n'
    else:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    page.write_text(text)


def summary_metrics(m):
    """A run's metrics as the summary keeps them: everything but the projection matrices (their scores are in the
    rows), and per-class top-1 only for label sets of at most 20 classes (the real Tiny-ImageNet's 200 and the
    matrices stay in the run's own files)."""
    small = lambda r: r if len(r['per_class']) <= 20 else dict(top1=r['top1'])
    out = {k: v for k, v in m.items() if k != 'W'}
    out['results'] = {d: small(r) for d, r in m['results'].items()}
    if 'orders' in m:
        out['orders'] = {d: {o: small(r) for o, r in orders.items()} for d, orders in m['orders'].items()}
    return out


def versions():
    import numpy
    import torch
    import torchvision
    try:
        import av
        av_version = av.__version__
    except ImportError:
        av_version = 'absent'
    return dict(python=platform.python_version(), torch=torch.__version__, torchvision=torchvision.__version__,
                av=av_version, numpy=numpy.__version__, cpu=cpu_name())


def cpu_name():
    """The processor and the instruction set torch's CPU kernels use (say 'AVX512'). A run repeats to the last
    digit on the same machine; on another processor the kernels sum in another order, the rounding differs, and
    after hundreds of steps the runs part: the machine belongs to the record."""
    import torch
    model = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return f'{model}, torch kernels {torch.backends.cpu.get_cpu_capability()}'


def _git_commit():
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (' (with uncommitted changes)' if dirty else '')
    except OSError:
        return 'unknown'


def write_data(names, seeds, jobs):
    """Write the synthetic datasets these arms need for each seed (each once, as train.py would on first use), in
    parallel. A folder written by other settings or another version of the writers is written again."""
    specs = []
    writer = hashlib.sha256((ROOT / 'tools' / 'synthetic.py').read_bytes()).hexdigest()[:16]
    for name in names:
        if 'synthetic' not in DATASETS[name]:
            continue
        for seed in seeds:
            spec = config.dataset_spec(name, dataset(name, seed))
            root = ROOT / spec['root']
            marker = root.with_name(root.name + '.json')  # the settings and writer it was written with
            stamp = json.dumps(dict(spec=spec, writer=writer))
            if root.exists() and (not marker.exists() or marker.read_text() != stamp):
                shutil.rmtree(root)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(stamp)
            if not root.exists():
                specs.append(spec)

    def write(spec):
        t0 = time.time()
        subprocess.run([sys.executable, '-c', 'import sys, data, json; '
                        'data._ensure_synthetic(json.loads(sys.argv[1]), 0)', json.dumps(spec)],
                       cwd=ROOT, env=_env(), check=True, stdout=subprocess.DEVNULL)
        print(f"  wrote {spec['root']} in {time.time() - t0:.0f} s", flush=True)

    if specs:
        print(f'writing {len(specs)} synthetic datasets', flush=True)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(write, specs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='2 seeds and a tenth of the steps (a smoke test)')
    parser.add_argument('--steps_scale', type=float, default=None, help="multiply every arm's steps (--quick: 0.1)")
    parser.add_argument('--out', default=None, help='where configs, runs, claims.json and claims.md go (default '
                        'out/claims, with --quick out/claims/quick)')
    parser.add_argument('--only', choices=list(CLAIMS), action='append', help='run only this claim (repeatable)')
    parser.add_argument('--jobs', type=int, default=2, help='runs at once (each on one thread)')
    parser.add_argument('--seeds', type=int, default=None,
                        help=f'seeds of every claim (default {SEEDS}, and 5 for projection; --quick 2)')
    parser.add_argument('--docs', action=argparse.BooleanOptionalAction, default=None,
                        help='also write docs/claims.json and docs/claims.md (default: for the full run only)')
    parser.add_argument('--embedding_stats', metavar='RUN_DIR', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embedding_stats:
        return embedding_stats(args.embedding_stats)

    t_start = time.time()
    out = ROOT / (args.out or ('out/claims/quick' if args.quick else 'out/claims'))
    scale = args.steps_scale or (QUICK_SCALE if args.quick else 1.0)
    claims = args.only or list(CLAIMS)
    all_arms = arms(scale)
    if 'realdata' in claims and 'tin_alone' not in all_arms:
        print(f'realdata: skipped, no Tiny-ImageNet subset at {TINY_IMAGENET}', flush=True)
        claims = [c for c in claims if c != 'realdata']
    # the seeds of each claim, and of each arm the most that a claim using it needs
    n_seeds = {c: args.seeds or (2 if args.quick else CLAIMS[c].get('seeds', SEEDS)) for c in claims}
    arm_seeds = {}
    for c in claims:
        for name in CLAIMS[c]['arms']:
            arm_seeds[name] = max(arm_seeds.get(name, 0), n_seeds[c])
    full = (scale == 1.0 and args.seeds is None and not args.quick
            and set(claims) == set(CLAIMS) - (set() if 'tin_alone' in all_arms else {'realdata'}))
    code = code_hash()
    for name, n in arm_seeds.items():
        (out / 'configs' / name).mkdir(parents=True, exist_ok=True)
        for seed in range(n):
            (out / 'configs' / name / f'seed{seed}.py').write_text(config_text(all_arms[name], seed))
    print(f"claims {', '.join(claims)}: {len(arm_seeds)} arms, {sum(arm_seeds.values())} arm-seeds, code {code}, "
          f"configs in {out / 'configs'}", flush=True)
    for seed in range(max(arm_seeds.values())):
        write_data(list(dict.fromkeys(d for n, k in arm_seeds.items() if seed < k for d in all_arms[n]['datasets'])),
                   [seed], args.jobs)

    # seed by seed (the first seed of every arm comes first), the longest runs first within a seed
    cost = lambda name: budget(all_arms[name])['iterations'] * sum(budget(all_arms[name])['batch'].values())
    tasks = [(name, seed) for seed in range(max(arm_seeds.values()))
             for name in sorted(arm_seeds, key=cost, reverse=True) if seed < arm_seeds[name]]
    counter = dict(done=0)

    def work(task):
        name, seed = task
        done = run(all_arms[name], seed, out, code)
        counter['done'] += 1
        took = 'reused' if done.get('reused') else f"{done['seconds']:.0f} s ({done['cpu_seconds']:.0f} s CPU)"
        print(f"  [{counter['done']}/{len(tasks)}] {name} seed {seed}: {took}", flush=True)
        return task, done

    with ThreadPoolExecutor(args.jobs) as pool:
        finished = dict(pool.map(work, tasks))
    rows = []
    for c in claims:  # each claim reads its own seeds: the first n_seeds[c] of every arm
        R = {name: [finished[(name, s)]['metrics'] for s in range(n_seeds[c])] for name in CLAIMS[c]['arms']}
        rows += rows_for(c, R, all_arms)
    wall = time.time() - t_start
    summary = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                   versions=versions(), commit=_git_commit(), code=code, quick=args.quick, steps_scale=scale,
                   seeds=n_seeds, claims=claims, jobs=args.jobs, wall_seconds=round(wall, 1),
                   cpu_seconds=round(sum(d.get('cpu_seconds') or 0 for d in finished.values()), 1), rows=rows,
                   arms={n: dict(note=all_arms[n]['note'], budget=budget(all_arms[n]),
                                 runs={str(s): dict(seconds=finished[(n, s)]['seconds'],
                                                    cpu_seconds=finished[(n, s)].get('cpu_seconds'),
                                                    reused=bool(finished[(n, s)].get('reused')),
                                                    metrics=summary_metrics(finished[(n, s)]['metrics']))
                                       for s in range(k)})
                         for n, k in arm_seeds.items()})
    text = markdown(summary)
    print('\n' + text)
    print(f'wall time {wall / 60:.1f} min; every run: {out}/runs/<arm>/seed<s>')
    (out / 'claims.json').write_text(json.dumps(summary, indent=1) + '\n')
    (out / 'claims.md').write_text(text)
    print(f'wrote {out / "claims.json"} and {out / "claims.md"}')
    if args.docs if args.docs is not None else full:
        update_docs(summary)
        print(f'wrote {DOCS / "claims.json"} and the table in {DOCS / "claims.md"}')


if __name__ == '__main__':
    main()

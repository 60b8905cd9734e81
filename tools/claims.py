"""
Each paper's central claim, tested on synthetic data we control, with several seeds, in one table.

    python claims.py                    # the full run: every claim, 3 seeds (about 20 min on 2 idle CPU cores)
    python claims.py --quick            # 2 seeds and a fifth of the steps: a smoke test, minutes
    python claims.py --only cover       # one claim: tokenshift, cover, ivvit, projection, informative

Every arm is an ordinary train.py config, written to OUT/configs/<arm>.py (OUT is out/claims, or out/claims/quick
with --quick), so any cell of the table can be rerun by hand:

    python train.py out/claims/configs/<arm>.py --seed=1 --out_dir=out/claims/runs/<arm>/seed1
    python eval.py --out_dir=out/claims/runs/<arm>/seed1 --temporal_tests=True

Each run is trained with OMP_NUM_THREADS=1, so that it repeats to the last digit however busy the machine is,
then scored by eval.py (eval.json: top-1 per class, frame orders, projection pairs); for the informative-loss
claim, claims.py also measures the backbone's embedding on the validation clips (--embedding_stats). A run whose
config is unchanged and that finished is reused. Seeds vary the training (initial weights, sample order,
augmentation); the data of a setting is written once (writer seed 0) and shared by every arm and seed.
Everything goes to OUT/claims.json: each seed's numbers, the configs, the table. A verdict compares two arms
trained with the same seeds, seed by seed (the rule: verdict() below).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import config

ROOT = Path(__file__).resolve().parents[1]  # the repository
QUICK_SCALE = 0.2  # --quick: a fifth of the steps
DATA = 'data/claims'  # the synthetic datasets, written once, shared by the full and the quick run
OBJECTIVE_KEYS = ('sampling', 'update', 'projection', 'projection_init', 'var_weight', 'cov_weight', 'uncertainty',
                  'label_smoothing')

# -----------------------------------------------------------------------------
# the data: synthetic datasets in real layouts (synthetic.py writes each on first use, options in `synthetic`)

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

DATASETS = {
    # the demo's six motion classes (two pairs differ only in the order of frames), 36 train / 14 test clips a class
    'motions': dict(format='ucf101', root=f'{DATA}/motions', synthetic=dict(_SHORT), batch_size=8, **_CLIP),
    # the demo's images: ten objects, 100 train / 20 val images a class
    'shapes': dict(format='tinyimagenet', root=f'{DATA}/shapes', synthetic=True, batch_size=32,
                   crop_scale=(0.35, 1.0)),
    # a small video dataset of the same ten objects, each moving in a random way: the class is the object.
    # 2 groups x 2 clips = 4 training clips a class; the 7 test groups give 14 test clips a class
    'objects': dict(format='ucf101', root=f'{DATA}/objects', batch_size=8, **_CLIP,
                    synthetic=dict(classes=TEN_OBJECTS, groups=9, clips=2, **_SHORT)),
    # two label spaces that overlap: 4 objects in both (named 'GreenCircle' and 'green circle'), 4 in each alone;
    # 4 training clips a class
    'overlap_a': dict(format='ucf101', root=f'{DATA}/overlap_a', batch_size=4, **_CLIP,
                      synthetic=dict(classes=SHARED4 + OWN_A4, groups=9, clips=2, **_SHORT)),
    'overlap_b': dict(format='moments', root=f'{DATA}/overlap_b', batch_size=4, **_CLIP,
                      synthetic=dict(classes=SHARED4 + OWN_B4, train_per_class=4, val_per_class=10, **_SHORT)),
    # three label spaces of 12 classes: 6 objects in all three, 6 in each alone; 4 or 5 training clips a class
    'many_a': dict(format='ucf101', root=f'{DATA}/many_a', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[0], groups=9, clips=2, **_SHORT)),
    'many_b': dict(format='moments', root=f'{DATA}/many_b', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[1], train_per_class=4, val_per_class=10, **_SHORT)),
    'many_c': dict(format='hmdb51', root=f'{DATA}/many_c', batch_size=4, **_CLIP,
                   synthetic=dict(classes=SHARED6 + OWN6[2], videos_per_class=10, **_SHORT)),
}
# which classes of two datasets are the same object (for the projection pairs), by position in each class list
SHARED = {'overlap': SHARED4, 'many': SHARED6}

# -----------------------------------------------------------------------------
# the arms: each one a train.py config


def _objective(path):
    """The objective switches that a config file of config/ sets (MultiTrain's Table 3 rows, CoVeR)."""
    cfg = config.load([str(ROOT / path)])
    return {key: getattr(cfg, key) for key in OBJECTIVE_KEYS}


def arm(name, datasets, iters, note, eval_args=(), stats=False, **settings):
    """One arm: a name, its config settings, the extra eval.py arguments and whether to measure the embedding."""
    base = dict(dim=64, depth=4, num_heads=4, patch_size=8, img_size=32, shift_div=4, num_workers=0,
                lr=1e-3, min_lr=1e-4, warmup_iters=max(iters // 20, 1), max_iters=iters, eval_interval=iters,
                eval_max_batches=1, log_interval=max(iters // 20, 1))
    base.update(settings)
    base['datasets'] = {d: DATASETS[d] for d in datasets}
    return dict(name=name, note=note, settings=base, eval_args=list(eval_args), stats=stats)


def arms(scale=1.0):
    """Every arm, by name, with its steps multiplied by scale (--quick: 0.2)."""
    n = lambda iters: max(round(iters * scale), 2)
    temporal = ['--temporal_tests=True']
    mt = _objective('config/multitrain.py')                         # Table 3 "Ours": add + informative + uncertainty
    vanilla = _objective('config/multitrain_vanilla.py')            # cross-entropy per head, same mixed batches
    no_inf = _objective('config/multitrain_no_informative.py')      # add, no informative loss
    separate = _objective('config/multitrain_no_informative_no_add.py')  # separate projection, no informative loss
    cover = dict(sampling='round_robin', update='per_round')        # one step on the sum of both datasets' losses
    stress = dict(projection_init='normal', lr=3e-3, min_lr=3e-4)   # the official init of W, 3x the learning rate
    many = ('many_a', 'many_b', 'many_c')
    out = [
        arm('motions_shift', ['motions'], n(900), 'token shift (shift_div=4), motions alone', temporal),
        arm('motions_noshift', ['motions'], n(900), 'no shift (shift_div=0), motions alone', temporal, shift_div=0),
        arm('objects_alone', ['objects'], n(600), 'objects videos alone', temporal),
        arm('objects_images', ['objects', 'shapes'], n(600), 'objects videos + shapes images, one step on the sum',
            temporal, **cover),
        arm('shapes_alone', ['shapes'], n(900), 'shapes images alone'),
        arm('shapes_motions', ['shapes', 'motions'], n(900), 'one model, shapes + motions, a step per batch'),
        arm('overlap_vanilla', ['overlap_a', 'overlap_b'], n(600), 'Vanilla', **vanilla),
        arm('overlap_multitrain', ['overlap_a', 'overlap_b'], n(600), 'MultiTrain', **mt),
        arm('many_add', many, n(600), 'add, w/o informative', stats=True, **{**no_inf, **stress}),
        arm('many_add_informative', many, n(600), 'add + informative (MultiTrain)', stats=True, **{**mt, **stress}),
        arm('many_separate', many, n(600), "'separate', w/o informative", stats=True, **{**separate, **stress}),
    ]
    return {a['name']: a for a in out}


def config_text(a):
    """The arm's train.py config file: one `key = value` line per setting."""
    lines = [f"# claims.py arm {a['name']}: {a['note']}. Run with --seed=S --out_dir=...", '']
    for key, value in a['settings'].items():
        if key == 'datasets':
            lines.append('datasets = {')
            lines += [f'    {name!r}: {spec!r},' for name, spec in value.items()]
            lines.append('}')
        else:
            lines.append(f'{key} = {value!r}')
    return '\n'.join(lines) + '\n'


# -----------------------------------------------------------------------------
# running an arm: train.py, eval.py, and the embedding statistics


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _call(argv, log):
    with open(log, 'a') as f:
        print(f"$ {' '.join(argv)}", file=f, flush=True)
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {done.returncode}); see {log}")


def run(a, seed, out, force=False):
    """Train and evaluate arm a with seed; returns the run's metrics. A finished run of the same config is reused."""
    cfg_path = out / 'configs' / f"{a['name']}.py"
    run_dir = out / 'runs' / a['name'] / f'seed{seed}'
    done_path = run_dir / 'claims_run.json'
    text = config_text(a)
    if done_path.exists() and not force:
        done = json.loads(done_path.read_text())
        if done['config'] == text and done['eval_args'] == a['eval_args'] and done['stats'] == a['stats']:
            done['reused'], done['metrics'] = True, read_metrics(run_dir)  # the table's reading may have changed
            return done
    log, t0 = run_dir / 'claims.log', time.time()
    trained = run_dir / 'claims_trained.py'  # the config of a finished training (eval.py may have failed after it)
    if force or not trained.exists() or trained.read_text() != text:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        _call(['train.py', str(cfg_path), f'--seed={seed}', f'--out_dir={run_dir}'], log)
        trained.write_text(text)
    if a['eval_args'] or a['settings'].get('projection', 'none') != 'none':  # else the final eval in log.jsonl
        _call(['eval.py', f'--out_dir={run_dir}', *a['eval_args']], log)
    if a['stats']:
        _call(['tools/claims.py', '--embedding_stats', str(run_dir)], log)
    metrics = read_metrics(run_dir)
    done = dict(arm=a['name'], seed=seed, config=text, eval_args=a['eval_args'], stats=a['stats'],
                command=f"python train.py {cfg_path} --seed={seed} --out_dir={run_dir}",
                seconds=round(time.time() - t0, 1), metrics=metrics)
    done_path.write_text(json.dumps(done, indent=1))
    return done


def read_metrics(run_dir):
    """What the table needs from a run: the final evaluation (train.py's, in log.jsonl: the one view of eval.py's
    defaults), eval.json's frame orders and projection pairs when eval.py ran, the first and last training losses,
    and the embedding statistics when measured."""
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
        if 'projection_pairs' in ev:
            m['pairs'] = ev['projection_pairs']
    train = [e for e in events if e['event'] == 'train']
    if train:
        m['final_loss'] = {k: v for k, v in train[-1].items() if k == 'loss' or k.endswith('/loss')}
        m['first_loss'] = {k: v for k, v in train[0].items() if k == 'loss' or k.endswith('/loss')}
    if (run_dir / 'embedding.json').exists():
        m['embedding'] = json.loads((run_dir / 'embedding.json').read_text())
    return m


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


# -----------------------------------------------------------------------------
# the claims: which arms, and the rows of the table computed from their metrics


def mean_std(values):
    """(mean, sample std) of a list; std 0 for one value."""
    n, mean = len(values), sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def verdict(diffs, sign=1, min_effect=3.0):
    """'holds' when every seed's difference has the claimed sign and the mean exceeds both twice its standard
    error and min_effect (3 points of top-1 by default: a few test clips, below which seeds that happen to agree
    prove nothing), 'opposite' when that is true of the other sign, else 'not seen at this scale'; no verdict
    from one seed. sign 0: the claim is that the arms are alike ('matches' when not separated, else which arm
    is ahead)."""
    if len(diffs) < 2:
        return 'no verdict (1 seed)'
    mean, std = mean_std(diffs)
    se = std / math.sqrt(len(diffs))
    separated = abs(mean) > max(2 * se, min_effect) and (all(d > 0 for d in diffs) or all(d < 0 for d in diffs))
    if sign == 0:
        return 'matches (within noise)' if not separated else ('A ahead' if mean > 0 else 'B ahead')
    if not separated:
        return 'not seen at this scale'
    return 'holds' if mean * sign > 0 else 'opposite'


def row(claim, setting, metric, a, b, va, vb, sign=1, unit='%', min_effect=3.0):
    """A table row comparing arm a (values va, one per seed) with arm b (vb, the same seeds)."""
    diffs = [x - y for x, y in zip(va, vb)]
    return dict(claim=claim, setting=setting, metric=metric, a=a, b=b, a_values=va, b_values=vb, diffs=diffs,
                a_mean_std=mean_std(va), b_mean_std=mean_std(vb), diff_mean_std=mean_std(diffs), unit=unit,
                min_effect=min_effect, verdict=verdict(diffs, sign, min_effect))


def class_mean(result, classes):
    """Mean per-class top-1 (%) over classes."""
    return sum(result['per_class'][c] for c in classes) / len(classes)


def true_pairs(pairs, shared_names):
    """(true correspondences among the top-5 entries of every projection W, entries, the count expected by
    chance). A true pair is one object under its two names: shared_names {source: [names], target: [names]}
    of the same objects in the same order."""
    found = total = chance = 0
    for key, top in pairs.items():
        source, target = key.split(' -> ')
        truth = set(zip(shared_names[source], shared_names[target]))
        found += sum((s, t) in truth for s, t, _ in top)
        total += len(top)
        n_source, n_target = len(shared_names[source + '/all']), len(shared_names[target + '/all'])
        chance += len(top) * len(truth) / (n_source * n_target)  # top-k of random weights: k |truth| / |W|
    return found, total, chance


MOTION = ['MoveLeft', 'MoveRight', 'Grow', 'Shrink']  # the classes that differ from another only in motion


def names_of(dataset, objects):
    """The class names that dataset's layout gives to objects ('GreenCircle' in UCF101, 'green circle' in Moments,
    'green_circle' in HMDB51)."""
    from tools import synthetic
    fmt = DATASETS[dataset]['format']
    if fmt == 'moments':
        return [synthetic.MOMENTS_NAMES[o] for o in objects]
    if fmt == 'hmdb51':
        return [synthetic._snake(o) for o in objects]
    return list(objects)


def shared_names(datasets, shared):
    out = {}
    for d in datasets:
        out[d] = names_of(d, shared)
        out[d + '/all'] = names_of(d, DATASETS[d]['synthetic']['classes'])
    return out


CLAIMS = {
    'tokenshift': dict(title='IV-ViT / TokenShift: the shift makes motion-only classes learnable by a frame-wise '
                             'model', arms=['motions_shift', 'motions_noshift']),
    'cover': dict(title='CoVeR: images help a small appearance video dataset; reversal hurts motion, not '
                        'appearance', arms=['objects_alone', 'objects_images', 'motions_shift']),
    'ivvit': dict(title='IV-ViT Table 1: one model for images and videos vs one model each, equal total steps',
                  arms=['shapes_motions', 'shapes_alone', 'motions_shift']),
    'projection': dict(title='MultiTrain: projections find the shared classes; MultiTrain vs Vanilla with '
                             'overlapping label spaces', arms=['overlap_multitrain', 'overlap_vanilla']),
    'informative': dict(title="MultiTrain Table 3: 'add' without the informative loss collapses, the loss or "
                              "'separate' rescues it", arms=['many_add', 'many_add_informative', 'many_separate']),
}


def rows_for(claim, R):
    """The table rows of claim from R {arm: [metrics of each seed]}."""
    top1 = lambda a, d: [m['results'][d]['top1'] for m in R[a]]
    if claim == 'tokenshift':
        mot = lambda a, order: [class_mean(m['orders']['motions'][order], MOTION) for m in R[a]]
        return [row('1 TokenShift', 'motions, 4 motion-only classes', 'top-1 on them', 'shift', 'no shift',
                    mot('motions_shift', 'normal'), mot('motions_noshift', 'normal')),
                row('1 TokenShift', 'motions, 4 motion-only classes', 'top-1 lost on reversed clips', 'shift',
                    'no shift',
                    [x - y for x, y in zip(mot('motions_shift', 'normal'), mot('motions_shift', 'reversed'))],
                    [x - y for x, y in zip(mot('motions_noshift', 'normal'), mot('motions_noshift', 'reversed'))]),
                row('1 TokenShift', 'motions, all 6 classes', 'top-1', 'shift', 'no shift',
                    top1('motions_shift', 'motions'), top1('motions_noshift', 'motions'))]
    if claim == 'cover':
        drop = lambda a, d: [m['orders'][d]['normal']['top1'] - m['orders'][d]['reversed']['top1'] for m in R[a]]
        return [row('2 CoVeR', 'objects: 10 appearance classes, 4 train clips each (+1000 images)', 'video top-1',
                    'videos + images', 'videos alone', top1('objects_images', 'objects'),
                    top1('objects_alone', 'objects')),
                row('2 CoVeR Table 2', 'reversed test clips, models trained on each alone', 'top-1 lost',
                    'motions', 'objects', drop('motions_shift', 'motions'), drop('objects_alone', 'objects'))]
    if claim == 'ivvit':
        return [row('3 IV-ViT', 'shapes (images), equal total steps', 'top-1', 'joint', 'images alone',
                    top1('shapes_motions', 'shapes'), top1('shapes_alone', 'shapes'), sign=0),
                row('3 IV-ViT', 'motions (videos), equal total steps', 'top-1', 'joint', 'videos alone',
                    top1('shapes_motions', 'motions'), top1('motions_shift', 'motions'), sign=0)]
    if claim == 'projection':
        names = shared_names(['overlap_a', 'overlap_b'], SHARED4)
        counts = [true_pairs(m['pairs'], names) for m in R['overlap_multitrain']]
        found = [100 * f / t for f, t, _ in counts]
        chance = [100 * c / t for _, t, c in counts]
        mean = lambda a, fn: [sum(fn(m, d) for d in ('overlap_a', 'overlap_b')) / 2 for m in R[a]]
        shared = lambda m, d: class_mean(m['results'][d], names_of(d, SHARED4))
        return [row('4 MultiTrain', '2 datasets, 4 of 8 classes shared', 'true pairs in top-5 of W', 'learned W',
                    'chance', found, chance),
                row('4 MultiTrain', '2 datasets, 4 train clips a class', 'mean top-1', 'MultiTrain', 'Vanilla',
                    mean('overlap_multitrain', lambda m, d: m['results'][d]['top1']),
                    mean('overlap_vanilla', lambda m, d: m['results'][d]['top1'])),
                row('4 MultiTrain', '2 datasets, the 4 shared classes', 'mean top-1', 'MultiTrain', 'Vanilla',
                    mean('overlap_multitrain', shared), mean('overlap_vanilla', shared))]
    if claim == 'informative':
        many = ('many_a', 'many_b', 'many_c')
        mean = lambda a: [sum(m['results'][d]['top1'] for d in many) / 3 for m in R[a]]
        rank = lambda a: [m['embedding']['effective_rank'] for m in R[a]]
        setting = '3 datasets x 12 classes, W ~ N(0, 0.02), lr 3e-3'
        return [row('5 MultiTrain Table 3', setting, 'mean top-1', 'add + informative', 'add w/o informative',
                    mean('many_add_informative'), mean('many_add')),
                row('5 MultiTrain Table 3', setting, 'mean top-1', "'separate' w/o inf.", 'add w/o informative',
                    mean('many_separate'), mean('many_add')),
                row('5 MultiTrain Table 3', setting, 'embedding effective rank', 'add + informative',
                    'add w/o informative', rank('many_add_informative'), rank('many_add'), unit='', min_effect=1.0),
                row('5 MultiTrain Table 3', setting, 'embedding effective rank', "'separate' w/o inf.",
                    'add w/o informative', rank('many_separate'), rank('many_add'), unit='', min_effect=1.0)]
    raise KeyError(claim)


# -----------------------------------------------------------------------------
# the table


def fmt(ms, unit):
    mean, std = ms
    return f'{mean:.1f} ± {std:.1f}{unit}'


def table(rows, seeds, scale=1.0):
    head = (f'Full run ({len(seeds)} seeds {list(seeds)})' if scale == 1.0 else
            f'REDUCED RUN ({len(seeds)} seeds {list(seeds)}, {scale:g} x the steps): a smoke test, not a result')
    lines = [head, '',
             '| claim | setting | metric | A | B | A: mean ± std | B: mean ± std | A - B | verdict |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in rows:
        lines.append(f"| {r['claim']} | {r['setting']} | {r['metric']} | {r['a']} | {r['b']} | "
                     f"{fmt(r['a_mean_std'], r['unit'])} | {fmt(r['b_mean_std'], r['unit'])} | "
                     f"{fmt(r['diff_mean_std'], r['unit'])} | {r['verdict']} |")
    return '\n'.join(lines)


def write_data(names, jobs):
    """Write the synthetic datasets these claims need (each once, as train.py would on first use), in parallel."""
    specs = []
    for name in names:
        spec, root = config.dataset_spec(name, DATASETS[name]), Path(DATASETS[name]['root'])
        marker = root.with_name(root.name + '.json')  # the settings it was written with: rewrite it when they change
        if root.exists() and (not marker.exists() or marker.read_text() != json.dumps(spec)):
            shutil.rmtree(root)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(spec))
        if not root.exists():
            specs.append(spec)

    def write(spec):
        t0 = time.time()
        subprocess.run([sys.executable, '-c', 'import sys, data, json; '
                        'data._ensure_synthetic(json.loads(sys.argv[1]), 0)', json.dumps(spec)],
                       cwd=ROOT, env=_env(), check=True)
        print(f"  wrote {spec['root']} in {time.time() - t0:.0f} s", flush=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(write, specs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='2 seeds and a fifth of the steps (a smoke test)')
    parser.add_argument('--steps_scale', type=float, default=None, help="multiply every arm's steps (--quick: 0.2)")
    parser.add_argument('--out', default=None, help='where configs, runs and claims.json go (default out/claims, '
                        'with --quick out/claims/quick)')
    parser.add_argument('--only', choices=list(CLAIMS), action='append', help='run only this claim (repeatable)')
    parser.add_argument('--jobs', type=int, default=2, help='runs at once (each on one thread)')
    parser.add_argument('--seeds', type=int, default=None, help='number of seeds (default 3, --quick 2)')
    parser.add_argument('--embedding_stats', metavar='RUN_DIR', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embedding_stats:
        return embedding_stats(args.embedding_stats)

    t_start = time.time()
    out = ROOT / (args.out or ('out/claims/quick' if args.quick else 'out/claims'))
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    scale = args.steps_scale or (QUICK_SCALE if args.quick else 1.0)
    claims = args.only or list(CLAIMS)
    all_arms = arms(scale)
    needed = list(dict.fromkeys(a for c in claims for a in CLAIMS[c]['arms']))
    (out / 'configs').mkdir(parents=True, exist_ok=True)
    for name in needed:
        (out / 'configs' / f'{name}.py').write_text(config_text(all_arms[name]))
    print(f"claims {', '.join(claims)}: {len(needed)} arms x {len(seeds)} seeds, configs in {out / 'configs'}",
          flush=True)
    write_data(list(dict.fromkeys(d for n in needed for d in all_arms[n]['settings']['datasets'])), args.jobs)

    # seed by seed (the first seed of every arm comes first), the longest runs first within a seed
    cost = lambda name: all_arms[name]['settings']['max_iters'] * len(all_arms[name]['settings']['datasets'])
    tasks = [(name, seed) for seed in seeds for name in sorted(needed, key=cost, reverse=True)]

    def work(task):
        name, seed = task
        done = run(all_arms[name], seed, out)
        took = 'reused' if done.get('reused') else f"{done['seconds']:.0f} s"
        print(f'  {name} seed {seed}: {took}', flush=True)
        return task, done

    with ThreadPoolExecutor(args.jobs) as pool:
        finished = dict(pool.map(work, tasks))
    R = {name: [finished[(name, s)]['metrics'] for s in seeds] for name in needed}
    rows = [r for c in claims for r in rows_for(c, R)]
    text = table(rows, seeds, scale)
    wall = time.time() - t_start
    print('\n' + text)
    print(f'\nwall time {wall / 60:.1f} min; every run: {out}/runs/<arm>/seed<s>')
    results = dict(quick=args.quick, steps_scale=scale, seeds=seeds, claims=claims, wall_seconds=round(wall, 1),
                   rows=rows, table=text, arms={n: dict(note=all_arms[n]['note'], config=config_text(all_arms[n]),
                                             eval_args=all_arms[n]['eval_args'],
                                             runs={s: finished[(n, s)] for s in seeds}) for n in needed})
    (out / 'claims.json').write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()

"""
Evaluate a trained run on every dataset it was trained on: top-1 and top-5 with multi-view testing.

    python eval.py                                       # the demo run in out/demo
    python eval.py config/x.py                           # the run that config/x.py trained
    python eval.py --out_dir=out/x --num_temporal_clips=10 --num_spatial_crops=3
    python eval.py --ckpt=out/x/ckpt_best.pt             # any checkpoint, not only out_dir/ckpt.pt
    python eval.py --confusion=motions                   # and a per-class table and confusion matrix image
    python eval.py --temporal_tests=True                 # and each video with its frames reversed, shuffled, static
    torchrun --standalone --nproc_per_node=8 eval.py config/x.py   # each process scores a shard

The run's own config (saved in its checkpoint) is the starting point; config files and --key=value arguments
given here override it, so only the evaluation views need to be named. Each video is seen as
num_temporal_clips x num_spatial_crops views (1 x 3 as CoVeR, 10 x 1 as the DRL supplement), each image as
num_spatial_crops views; the softmax scores of the views are averaged. The results go next to the checkpoint, in
a file named after it and the views (results_path): eval.json for ckpt.pt with one view of every sample,
eval_10x3.json with 10 x 3 views, eval_ckpt_best.json for ckpt_best.pt, so that no evaluation overwrites another.

Checkpoints are loaded with weights_only=True (safe_load): a checkpoint is data, and a file that holds anything
but tensors and plain Python values, which unpickling would run as code, is refused. train.py, predict.py and
tools/probe.py load theirs with the same function.

Temporal reliance (CoVeR Table 2): with temporal_tests=True, every video dataset is scored again with the frames
of each clip reversed, shuffled (one fixed permutation) and static (the middle frame repeated), side by side
with the normal order. A model that reads motion loses accuracy on the motion-defined classes; a model blind
to order (shift_div=0) scores reversed and shuffled clips exactly like normal ones.
"""

import importlib.util
import itertools
import json
import os
import pickle
import re
import sys
from contextlib import nullcontext

import torch
import torch.distributed as dist
from tqdm import tqdm

import config
import data
import losses
from model import build_model

USAGE = 'python eval.py [CONFIG.py ...] [--key=value ...] [--ckpt=PATH] [--confusion=DATASET]'
OPTIONS = [('--ckpt=PATH', 'the checkpoint to evaluate (default: out_dir/ckpt.pt); results are written next to it'),
           ('--confusion=DATASET', "also that dataset's per-class accuracy table and confusion matrix image "
                                   '(pip install matplotlib)')]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says which file and why. damaged: the file is there but is
    no checkpoint torch can read (cut short, overwritten)."""

    def __init__(self, message, damaged=False):
        super().__init__(message)
        self.damaged = damaged


def safe_load(path, map_location='cpu'):
    """The checkpoint at path, unpickled with weights_only=True: tensors and plain Python values (dicts, lists,
    str, numbers, None) only. A file that refers to anything else (a function, a class, a numpy array) would run
    code on loading; it is refused (CheckpointError) before any of it runs, and so is a missing or damaged file."""
    if not os.path.isfile(path):
        raise CheckpointError(f'no checkpoint at {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL ([\w.]+)', str(e))
        what = found.group(1) if found else str(e).splitlines()[0]
        raise CheckpointError(f'{path}: refused: besides tensors and plain values it refers to {what}, which '
                              f'loading would run as code; nothing was run. Only checkpoints made of tensors and '
                              f'plain Python types are loaded: re-save a file you trust in that form') from None
    except (RuntimeError, EOFError, OSError) as e:  # a truncated or overwritten file: not a zip archive torch reads
        reason = (str(e).splitlines() or [type(e).__name__])[0].split('. This is')[0]
        raise CheckpointError(f'{path} is damaged and cannot be read as a checkpoint ({type(e).__name__}: {reason})',
                              damaged=True) from None


def is_main_process():
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def view_scores(model, x, dataset, autocast=nullcontext()):
    """Softmax scores averaged over the views of each sample: x (B, V, ...) -> (B, C)."""
    B, V = x.shape[:2]
    with autocast:
        logits = model(x.flatten(0, 1), dataset)                 # (B*V, C)
    return logits.float().softmax(-1).view(B, V, -1).mean(1)     # (B, C)


def count_hits(counts, scores, y):
    """Add one batch to counts (3, C), per class: samples, top-1 hits, top-5 hits."""
    top5 = scores.topk(min(5, scores.shape[1]), dim=-1).indices   # (B, 5)
    hits = top5 == y[:, None]                                     # (B, 5)
    for row, weight in enumerate([None, hits[:, 0].float(), hits.any(1).float()]):
        counts[row] += torch.bincount(y, weight, minlength=counts.shape[1])


def accuracies(counts, classes):
    """Top-1/top-5 (%) and per-class top-1 from counts (3, C), summed over ranks under torch.distributed first.

    Each rank scores its own shard, so the summed counts give the accuracy on the whole split whatever the
    number of processes."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(counts)
    n, c1, c5 = counts.sum(1).tolist()
    per_class = (100 * counts[1] / counts[0].clamp(min=1)).tolist()
    return dict(top1=100 * c1 / max(n, 1), top5=100 * c5 / max(n, 1), n=int(n),
                per_class_top1=dict(zip(classes, per_class)))


def batches(loader, max_batches, desc):
    """The loader's batches, at most max_batches (None: all), behind a progress bar on the first process when its
    output is a terminal (tqdm's disable=None), so that logs and tests get no bar."""
    total = len(loader) if max_batches is None else min(max_batches, len(loader))
    return tqdm(itertools.islice(loader, max_batches), total=total, desc=desc, leave=False, dynamic_ncols=True,
                disable=None if is_main_process() else True)


@torch.no_grad()
def evaluate(model, loaders, device, autocast=nullcontext(), max_batches=None, confusion=()):
    """Top-1/top-5 accuracy (%) per dataset, and top-1 per class; loaders yield (x, y), x (B, V, ...) for V views.
    For the datasets named in confusion, also results[name]['confusion']: (C, C) counts, row the true class,
    column the top-1 prediction."""
    was_training = model.training
    model.eval()
    results = {}
    for name, loader in loaders.items():
        classes = loader.dataset.classes
        counts = torch.zeros(3, len(classes), device=device)  # per class: samples, top-1 hits, top-5 hits
        matrix = torch.zeros(len(classes), len(classes), device=device) if name in confusion else None
        for x, y in batches(loader, max_batches, f'eval {name}'):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            scores = view_scores(model, x, name, autocast)                      # (B, C)
            count_hits(counts, scores, y)
            if matrix is not None:
                matrix.index_put_((y, scores.argmax(1)), torch.ones_like(y, dtype=matrix.dtype), accumulate=True)
        results[name] = accuracies(counts, classes)
        if matrix is not None:
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(matrix)
            results[name]['confusion'] = matrix.long().tolist()
    model.train(was_training)
    return results


def print_results(results, views=None):
    print(f'{"dataset":<16} {"top-1":>7} {"top-5":>7} {"samples":>8}' + ('  views' if views else ''))
    for name, r in results.items():
        extra = f'  {views[name]}' if views else ''
        print(f'{name:<16} {r["top1"]:>6.2f}% {r["top5"]:>6.2f}% {r["n"]:>8}' + extra)


# -----------------------------------------------------------------------------
# temporal reliance: how much of a video model's accuracy comes from the order of the frames (CoVeR Table 2)

# Frame indices that turn a clip's T frames into each test order; g is a seeded generator for the shuffle.
FRAME_ORDERS = {
    'normal': lambda T, g: torch.arange(T),
    'reversed': lambda T, g: torch.arange(T).flip(0),        # motion played backwards
    'shuffled': lambda T, g: torch.randperm(T, generator=g),  # the same frames, no coherent motion
    'static': lambda T, g: torch.full((T,), T // 2),         # the middle frame T times: appearance only
}


def frame_orders(T, seed):
    """{order: frame indices (T,)}. The shuffle is one permutation, the same for every clip, fixed by seed."""
    return {order: make(T, torch.Generator().manual_seed(seed)) for order, make in FRAME_ORDERS.items()}


@torch.no_grad()
def evaluate_frame_orders(model, loaders, device, seed=0, autocast=nullcontext(), max_batches=None):
    """evaluate() of every video dataset in loaders under each order of FRAME_ORDERS, decoding each clip once.

    A batch x (B, V, 3, T, H, W) is re-indexed along time (dim 3) once per order, so each order sees exactly
    the same clips and views. Image datasets are skipped. Returns {dataset: {order: evaluate()'s dict of that
    order, plus `frames` (the indices used) and `drop` (top-1 points lost against the normal order)}}."""
    was_training = model.training
    model.eval()
    results = {}
    for name, loader in loaders.items():
        if not loader.dataset.is_video:
            continue
        classes = loader.dataset.classes
        counts = {order: torch.zeros(3, len(classes), device=device) for order in FRAME_ORDERS}
        for x, y in batches(loader, max_batches, f'frame orders {name}'):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            orders = frame_orders(x.shape[3], seed)
            for order, frames in orders.items():
                clips = x.index_select(3, frames.to(device))  # (B, V, 3, T, H, W), frames reordered
                count_hits(counts[order], view_scores(model, clips, name, autocast), y)
        results[name] = {order: dict(accuracies(c, classes), frames=orders[order].tolist())
                         for order, c in counts.items()}
        for r in results[name].values():
            r['drop'] = results[name]['normal']['top1'] - r['top1']
    model.train(was_training)
    return results


def print_frame_orders(results, max_classes=20):
    """One table per dataset: top-1 (%) under each frame order, the drop, and per class for small label sets."""
    if not results:
        print('temporal tests: this run has no video dataset')
    for name, r in results.items():
        classes = list(r['normal']['per_class_top1'])
        width = max(len(c) for c in ['drop vs normal', *classes])
        print(f'\n{name}: top-1 (%) by frame order, {r["normal"]["n"]} clips; '
              f'shuffled = frames {r["shuffled"]["frames"]}, static = frame {r["static"]["frames"][0]} repeated')
        print(f'{"":<{width}}' + ''.join(f'{order:>10}' for order in FRAME_ORDERS))
        rows = [('all', [r[o]['top1'] for o in FRAME_ORDERS]),
                ('drop vs normal', [r[o]['drop'] for o in FRAME_ORDERS])]
        if len(classes) <= max_classes:  # larger label sets: see eval.json
            rows += [(c, [r[o]['per_class_top1'][c] for o in FRAME_ORDERS]) for c in classes]
        for label, values in rows:
            print(f'{label:<{width}}' + ''.join(f'{v:>10.1f}' for v in values))


# -----------------------------------------------------------------------------
# the projection between label spaces (MultiTrain eqs. 4-5 and Table 4)


class Projected(torch.nn.Module):
    """model scored with projected logits: dataset k's Y'_k = Y_k + sum_i W_ik Y_i (eq. 4), every head on the
    features. At inference MultiTrain uses Y_k alone; this asks what the other heads' evidence adds."""

    def __init__(self, model, projection):
        super().__init__()
        self.model, self.projection = model, projection

    def forward(self, x, dataset):
        features = self.model.features(x)                                        # (B, D)
        logits = {name: head(features) for name, head in self.model.heads.items()}  # each (B, C_name)
        return self.projection.project(logits, dataset)                          # (B, C_dataset), eq. 4


def projection_pairs(projection, classes, k=5):
    """{'source -> target': [[source class, target class, weight]]}: the k largest weights of every W_ik, which
    classes of one dataset the model reads as evidence for which classes of another (Table 4)."""
    pairs = {}
    for source in classes:
        for target in projection.sources(source):
            top = projection.top_pairs(source, target, k)
            pairs[f'{source} -> {target}'] = [[classes[source][s], classes[target][t], w] for s, t, w in top]
    return pairs


def print_projection_pairs(pairs):
    for pair, top in pairs.items():
        print(f'{pair}: ' + ', '.join(f'({s!r}, {t!r}, {w:.2f})' for s, t, w in top))


# -----------------------------------------------------------------------------
# eval.py as a command: the views of each dataset, where the results go, the per-class table, the run to load


def views_of(spec, cfg, is_video):
    """(temporal clips, spatial crops) with which a dataset is evaluated (data.views: its own settings, else the
    run's). An image has one clip."""
    clips, crops = data.views(spec, cfg)
    return (clips if is_video else 1), crops


def view_label(views, is_video):
    """'10x3' for a video dataset's views (clips x crops), '3' for an image dataset's crops."""
    return f'{views[0]}x{views[1]}' if is_video else f'{views[1]}'


def results_path(ckpt_path, views):
    """Where the results of the checkpoint at ckpt_path with views {dataset: (clips, crops, is_video)} go: next
    to it, named after the checkpoint (nothing for ckpt.pt) and the views (nothing for one view of every sample):
    eval.json, eval_10x3.json (every video 10 x 3, every image 3 crops), eval_ckpt_best.json, and, where
    datasets differ in views, eval_k400-5x1_mit-2x3.json. One name per (checkpoint, views): none overwrites another."""
    stem = os.path.splitext(os.path.basename(ckpt_path))[0]
    crops = {c for _, c, _ in views.values()}
    clips = {t for t, _, video in views.values() if video}
    if len(crops) == 1 and len(clips) <= 1:  # the same views everywhere: one label
        tag = f'{clips.pop() if clips else 1}x{crops.pop()}'
    else:
        tag = '_'.join(f'{name}-{view_label((t, c), video)}' for name, (t, c, video) in views.items())
    parts = ['eval'] + ([stem] if stem != 'ckpt' else []) + ([tag] if tag != '1x1' else [])
    return os.path.join(os.path.dirname(ckpt_path), '_'.join(parts) + '.json')


def print_per_class(name, matrix, classes):
    """The per-class table of a confusion matrix (C, C) (rows: true class), worst class first: samples, top-1,
    and the class it is most often taken for."""
    matrix = torch.tensor(matrix)
    n = matrix.sum(1)                                              # (C,) samples per class
    top1 = 100 * matrix.diag() / n.clamp(min=1)                    # (C,)
    confused = (matrix - torch.diag(matrix.diag())).max(1)         # the largest off-diagonal entry of each row
    width = max(len(c) for c in [*classes, 'class'])
    print(f'\n{name}: per-class top-1, worst first')
    print(f'{"class":<{width}} {"samples":>8} {"top-1":>7}  most often taken for')
    for c in top1.argsort().tolist():
        mistake = (f'{classes[confused.indices[c]]} ({int(confused.values[c])})' if confused.values[c] > 0 else '-')
        print(f'{classes[c]:<{width}} {int(n[c]):>8} {top1[c]:>6.1f}%  {mistake}')


def plot_confusion(matrix, classes, title, path):
    """The confusion matrix as an image: each row (true class) normalised to the share of its samples."""
    import matplotlib
    matplotlib.use('Agg')  # no display needed
    import matplotlib.pyplot as plt
    matrix = torch.tensor(matrix, dtype=torch.float64)
    shares = matrix / matrix.sum(1, keepdim=True).clamp(min=1)    # (C, C), rows sum to 1
    size = min(4 + 0.25 * len(classes), 40)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(shares.numpy(), cmap='Blues', vmin=0, vmax=1)
    labelled = len(classes) <= 60  # past that the names would overlap
    ax.set_xticks(range(len(classes)) if labelled else [])
    ax.set_yticks(range(len(classes)) if labelled else [])
    if labelled:
        ax.set_xticklabels(classes, rotation=90)
        ax.set_yticklabels(classes)
    ax.set_xlabel('predicted class (top-1)')
    ax.set_ylabel('true class')
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label='share of the true class')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_run(argv, ckpt_path=None):
    """(cfg, checkpoint, its path) of the run that argv names: the run's config (saved in its checkpoint) first,
    then the config files and --key=value arguments of argv. The checkpoint is ckpt_path, else out_dir/ckpt.pt.
    Exits with one line when something is wrong."""
    try:
        if ckpt_path is None:  # out_dir from argv; a dataset named on the command line exists in the run's config
            cfg = config.load([a for a in argv if not a.startswith(('--datasets.', '--probe_datasets.'))])
            ckpt_path = os.path.join(cfg.out_dir, 'ckpt.pt')
            if not os.path.exists(ckpt_path):
                sys.exit(f'no checkpoint at {ckpt_path}: train first, or pass the run\'s config, --out_dir or --ckpt')
        ckpt = safe_load(ckpt_path)
        cfg = config.load(argv, base=ckpt['config'])              # the run's config, then this command's
    except config.ConfigError as e:
        sys.exit(f'config error: {e}')
    except CheckpointError as e:
        sys.exit(str(e))
    return cfg, ckpt, ckpt_path


def start_processes(cfg):
    """(rank, world, device): under torchrun, one process group and each process its own device and shard."""
    if 'RANK' not in os.environ:
        return 0, 1, config.resolve_device(cfg.device)
    on_gpu = torch.cuda.is_available() and cfg.device != 'cpu'
    dist.init_process_group('nccl' if on_gpu else 'gloo')
    device = f"cuda:{os.environ['LOCAL_RANK']}" if on_gpu else 'cpu'
    if on_gpu:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def main(argv):
    options, argv = config.entry_point_options(argv, USAGE, OPTIONS)
    cfg, ckpt, ckpt_path = load_run(argv, options['ckpt'])
    confusion = [options['confusion']] if options['confusion'] else []
    if confusion and confusion[0] not in ckpt['classes']:
        sys.exit(f"--confusion={confusion[0]}: not a dataset of this run (its datasets: {', '.join(ckpt['classes'])})")
    if confusion and importlib.util.find_spec('matplotlib') is None:
        sys.exit('--confusion draws its matrix with matplotlib, which nanoCoTrain does not install: '
                 'pip install matplotlib')
    rank, world, device = start_processes(cfg)
    master = rank == 0
    autocast = config.autocast_for(cfg.dtype, device)

    specs = {name: config.dataset_spec(name, spec) for name, spec in cfg.datasets.items()}
    loaders = {name: data.make_loader(spec, 'val', cfg, rank, world) for name, spec in specs.items()}
    for name, loader in loaders.items():
        if loader.dataset.classes != ckpt['classes'][name]:
            sys.exit(f'{name}: the classes in {specs[name]["root"]} differ from those the checkpoint was trained on')
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.to(device)

    results = evaluate(model, loaders, device, autocast, confusion=confusion)
    view_counts = {name: (*views_of(specs[name], cfg, loader.dataset.is_video), loader.dataset.is_video)
                   for name, loader in loaders.items()}
    views = {name: view_label((t, c), video) for name, (t, c, video) in view_counts.items()}
    path = results_path(ckpt_path, view_counts)
    out = dict(checkpoint=ckpt_path, iter_num=ckpt['iter_num'], views=views, processes=world, results=results)
    if master:
        print(f'{ckpt_path} (iteration {ckpt["iter_num"]}), {world} process(es)')
        print_results(results, views)
        for name, r in results.items():
            if len(r['per_class_top1']) <= 20:  # larger label sets: see the results file, or --confusion
                print(f'{name} top-1 per class: ' + ', '.join(f'{c} {a:.1f}' for c, a in r['per_class_top1'].items()))
        for name in confusion:
            print_per_class(name, results[name]['confusion'], ckpt['classes'][name])
            image = path[:-len('.json')] + f'_confusion_{name}.png'
            title = f'{name}: {os.path.basename(ckpt_path)} (iteration {ckpt["iter_num"]}), views {views[name]}'
            plot_confusion(results[name]['confusion'], ckpt['classes'][name], title, image)
            print(f'confusion matrix of {name}: {image}')
    if cfg.temporal_tests:
        out['frame_orders'] = evaluate_frame_orders(model, loaders, device, cfg.temporal_seed, autocast)
        if master:
            print_frame_orders(out['frame_orders'])
    if cfg.projection != 'none' and 'objective' in ckpt:  # a run trained with projections between label spaces
        objective = losses.Objective({name: len(c) for name, c in ckpt['classes'].items()}, model.num_features, cfg)
        objective.load_state_dict(ckpt['objective'])
        out['projection_pairs'] = projection_pairs(objective.projection.cpu(), ckpt['classes'])
        if cfg.eval_projected:
            out['projected_results'] = evaluate(Projected(model, objective.projection.to(device)), loaders, device,
                                                autocast)
        if master:
            print('top-5 class pairs of each projection W (source class, target class, weight):')
            print_projection_pairs(out['projection_pairs'])
            if cfg.eval_projected:
                print('scored with the projected logits (eq. 4):')
                print_results(out['projected_results'], views)
    if master:
        with open(path, 'w') as f:
            json.dump(out, f, indent=2)
        print(f'results: {path}')
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    sys.excepthook = data.excepthook  # a mistake in a dataset's files: its one line, no traceback
    main(sys.argv[1:])

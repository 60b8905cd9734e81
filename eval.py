"""
Evaluate a trained run on every dataset it was trained on: top-1 and top-5 with multi-view testing.

    python eval.py                                       # the demo run in out/demo
    python eval.py config/x.py                           # the run that config/x.py trained
    python eval.py --out_dir=out/x --num_temporal_clips=10 --num_spatial_crops=3
    python eval.py --temporal_tests=True                 # and each video with its frames reversed, shuffled, static

The run's own config (saved in out_dir/ckpt.pt) is the starting point; config files and --key=value arguments
given here override it, so only the evaluation views need to be named. Each video is seen as
num_temporal_clips x num_spatial_crops views (1 x 3 as CoVeR, 10 x 1 as the DRL supplement), each image as
num_spatial_crops views; the softmax scores of the views are averaged. Results go to out_dir/eval.json.

Temporal reliance (CoVeR Table 2): with temporal_tests=True, every video dataset is scored again with the frames
of each clip reversed, shuffled (one fixed permutation) and static (the middle frame repeated), side by side
with the normal order. A model that reads motion loses accuracy on the motion-defined classes; a model blind
to order (shift_div=0) scores reversed and shuffled clips exactly like normal ones.
"""

import itertools
import json
import os
import sys
from contextlib import nullcontext

import torch
import torch.distributed as dist

import config
import data
import losses
from model import build_model


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


@torch.no_grad()
def evaluate(model, loaders, device, autocast=nullcontext(), max_batches=None):
    """Top-1/top-5 accuracy (%) per dataset, and top-1 per class; loaders yield (x, y), x (B, V, ...) for V views."""
    was_training = model.training
    model.eval()
    results = {}
    for name, loader in loaders.items():
        classes = loader.dataset.classes
        counts = torch.zeros(3, len(classes), device=device)  # per class: samples, top-1 hits, top-5 hits
        for x, y in itertools.islice(loader, max_batches):  # max_batches None: every batch
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            count_hits(counts, view_scores(model, x, name, autocast), y)
        results[name] = accuracies(counts, classes)
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
        for x, y in itertools.islice(loader, max_batches):  # max_batches None: every batch
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


def load_run(argv):
    """(cfg, checkpoint, its path) of the run that argv names: the run's config (saved in its checkpoint) first,
    then the config files and --key=value arguments of argv. Exits with one line when something is wrong."""
    try:
        cfg = config.load(argv)                                   # to find out_dir
        ckpt_path = os.path.join(cfg.out_dir, 'ckpt.pt')
        if not os.path.exists(ckpt_path):
            sys.exit(f'no checkpoint at {ckpt_path}: train first, or pass the run\'s config / --out_dir')
        ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
        cfg = config.load(argv, base=ckpt['config'])              # the run's config, then this command's
    except config.ConfigError as e:
        sys.exit(f'config error: {e}')
    return cfg, ckpt, ckpt_path


def main(argv):
    cfg, ckpt, ckpt_path = load_run(argv)
    device = config.resolve_device(cfg.device)
    autocast = config.autocast_for(cfg.dtype, device)

    specs = {name: config.dataset_spec(name, spec) for name, spec in cfg.datasets.items()}
    loaders = {name: data.make_loader(spec, 'val', cfg) for name, spec in specs.items()}
    for name, loader in loaders.items():
        if loader.dataset.classes != ckpt['classes'][name]:
            sys.exit(f'{name}: the classes in {specs[name]["root"]} differ from those the checkpoint was trained on')
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.to(device)

    results = evaluate(model, loaders, device, autocast)
    # each dataset's own views, or the run's: temporal x spatial for videos, spatial for images
    views = {name: ('x'.join(map(str, loader.dataset.views)) if loader.dataset.is_video
                    else f'{loader.dataset.views[1]}') for name, loader in loaders.items()}
    print(f'{ckpt_path} (iteration {ckpt["iter_num"]})')
    print_results(results, views)
    for name, r in results.items():
        if len(r['per_class_top1']) <= 20:  # larger label sets: see eval.json
            print(f'{name} top-1 per class: ' + ', '.join(f'{c} {a:.1f}' for c, a in r['per_class_top1'].items()))
    out = dict(checkpoint=ckpt_path, iter_num=ckpt['iter_num'], views=views, results=results)
    if cfg.temporal_tests:
        out['frame_orders'] = evaluate_frame_orders(model, loaders, device, cfg.temporal_seed, autocast)
        print_frame_orders(out['frame_orders'])
    if cfg.projection != 'none' and 'objective' in ckpt:  # a run trained with projections between label spaces
        objective = losses.Objective({name: len(c) for name, c in ckpt['classes'].items()}, model.num_features, cfg)
        objective.load_state_dict(ckpt['objective'])
        out['projection_pairs'] = projection_pairs(objective.projection.cpu(), ckpt['classes'])
        print('top-5 class pairs of each projection W (source class, target class, weight):')
        print_projection_pairs(out['projection_pairs'])
        if cfg.eval_projected:
            out['projected_results'] = evaluate(Projected(model, objective.projection.to(device)), loaders, device,
                                                autocast)
            print('scored with the projected logits (eq. 4):')
            print_results(out['projected_results'], views)
    with open(os.path.join(cfg.out_dir, 'eval.json'), 'w') as f:
        json.dump(out, f, indent=2)


if __name__ == '__main__':
    sys.excepthook = data.excepthook  # a mistake in a dataset's files: its one line, no traceback
    main(sys.argv[1:])

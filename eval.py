"""
Evaluate a trained run on every dataset it was trained on: top-1 and top-5 with multi-view testing.

    python eval.py                                       # the demo run in out/demo
    python eval.py config/x.py                           # the run that config/x.py trained
    python eval.py --out_dir=out/x --num_temporal_clips=10 --num_spatial_crops=3

The run's own config (saved in out_dir/ckpt.pt) is the starting point; config files and --key=value arguments
given here override it, so only the evaluation views need to be named. Each video is seen as
num_temporal_clips x num_spatial_crops views (1 x 3 as CoVeR, 10 x 1 as the DRL supplement), each image as
num_spatial_crops views; the softmax scores of the views are averaged. Results go to out_dir/eval.json.
"""

import json
import os
import sys
from contextlib import nullcontext

import torch
import torch.distributed as dist

import config
import data
from model import build_model


def resolve_device(name):
    """'auto' means the first GPU when there is one, else the CPU."""
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return name


@torch.no_grad()
def evaluate(model, loaders, device, autocast=nullcontext(), max_batches=None):
    """Top-1/top-5 accuracy (%) per dataset, and top-1 per class; loaders yield (x, y), x (B, V, ...) for V views.

    Under torch.distributed each rank scores its own shard and the counts are summed, so the result is the
    accuracy on the whole split whatever the number of processes.
    """
    was_training = model.training
    model.eval()
    results = {}
    for name, loader in loaders.items():
        classes = loader.dataset.classes
        counts = torch.zeros(3, len(classes), device=device)  # per class: samples, top-1 hits, top-5 hits
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            B, V = x.shape[:2]
            with autocast:
                logits = model(x.flatten(0, 1), name)                    # (B*V, C)
            probs = logits.float().softmax(-1).view(B, V, -1).mean(1)     # (B, C), average over views
            top5 = probs.topk(min(5, probs.shape[1]), dim=-1).indices     # (B, 5)
            hits = top5 == y[:, None]                                     # (B, 5)
            for row, weight in enumerate([None, hits[:, 0].float(), hits.any(1).float()]):
                counts[row] += torch.bincount(y, weight, minlength=len(classes))
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        n, c1, c5 = counts.sum(1).tolist()
        per_class = (100 * counts[1] / counts[0].clamp(min=1)).tolist()
        results[name] = dict(top1=100 * c1 / max(n, 1), top5=100 * c5 / max(n, 1), n=int(n),
                             per_class_top1=dict(zip(classes, per_class)))
    model.train(was_training)
    return results


def print_results(results, views=None):
    print(f'{"dataset":<16} {"top-1":>7} {"top-5":>7} {"samples":>8}' + ('  views' if views else ''))
    for name, r in results.items():
        extra = f'  {views[name]}' if views else ''
        print(f'{name:<16} {r["top1"]:>6.2f}% {r["top5"]:>6.2f}% {r["n"]:>8}' + extra)


def main(argv):
    try:
        cfg = config.load(argv)                                   # to find out_dir
        ckpt_path = os.path.join(cfg.out_dir, 'ckpt.pt')
        if not os.path.exists(ckpt_path):
            sys.exit(f'no checkpoint at {ckpt_path}: train first, or pass the run\'s config / --out_dir')
        ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
        cfg = config.load(argv, base=ckpt['config'])              # the run's config, then this command's
    except config.ConfigError as e:
        sys.exit(f'config error: {e}')
    device = resolve_device(cfg.device)
    use_amp = device.startswith('cuda') and cfg.dtype == 'bfloat16'
    autocast = torch.autocast('cuda', dtype=torch.bfloat16) if use_amp else nullcontext()

    specs = {name: data.dataset_spec(name, spec) for name, spec in cfg.datasets.items()}
    loaders = {name: data.make_loader(spec, 'val', cfg) for name, spec in specs.items()}
    for name, loader in loaders.items():
        if loader.dataset.classes != ckpt['classes'][name]:
            sys.exit(f'{name}: the classes in {specs[name]["root"]} differ from those the checkpoint was trained on')
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.to(device)

    results = evaluate(model, loaders, device, autocast)
    views = {name: (f'{cfg.num_temporal_clips}x{cfg.num_spatial_crops}' if loader.dataset.is_video
                    else f'{cfg.num_spatial_crops}') for name, loader in loaders.items()}
    print(f'{ckpt_path} (iteration {ckpt["iter_num"]})')
    print_results(results, views)
    for name, r in results.items():
        if len(r['per_class_top1']) <= 20:  # larger label sets: see eval.json
            print(f'{name} top-1 per class: ' + ', '.join(f'{c} {a:.1f}' for c, a in r['per_class_top1'].items()))
    out = dict(checkpoint=ckpt_path, iter_num=ckpt['iter_num'], views=views, results=results)
    with open(os.path.join(cfg.out_dir, 'eval.json'), 'w') as f:
        json.dump(out, f, indent=2)


if __name__ == '__main__':
    main(sys.argv[1:])

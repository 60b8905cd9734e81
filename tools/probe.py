"""
Transfer by linear probe: how good are the features of a trained backbone for a target dataset?

    python -m tools.probe                                   # the demo run (out/demo), probed on its own datasets
    python -m tools.probe --out_dir=out/x --probe_datasets="{'motions': {'format': 'ucf101', 'root': 'data/demo/motions'}}"

This is the A -> B protocol of CoVeR (Zhang et al., arXiv:2112.07175, Fig. 3): train on A (the run in out_dir),
then measure on B (probe_datasets, or the run's own datasets when it is empty). CoVeR fine-tunes the whole network on B; a
linear probe measures the frozen features as they are, and costs seconds instead of a training run, so that
single-dataset and co-trained backbones can be compared on many targets.

1. The backbone of out_dir/ckpt.pt is frozen, and model.features (the class token, averaged over the frames of
   a video) of every train and val sample of the target is extracted once. Both splits are read with the
   evaluation transform, one view a sample (the centred crop of a clip from the middle of a video): no
   augmentation, so every feature is a deterministic function of the checkpoint and the file, which is what
   makes caching sound (augmented training features might help the probe a little, but could not be cached).
2. The features go to out_dir/probe/<dataset>-<split>.pt with a key that hashes everything they depend on (the
   backbone's weights, the settings of the model and inputs, the dataset's settings and list of samples); a
   file with another key is stale and is recomputed. A second probe of the same target runs no backbone.
3. A linear classifier is trained on the standardised training features (AdamW, mini-batches, seeded, on the
   CPU), and its top-1 on the val split is printed and written to out_dir/probe.json (one entry per target).
"""

import hashlib
import json
import math
import os
import sys
from pathlib import Path
import types
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import config
import data
from eval import load_run
from model import build_model

# settings that do not change a feature: they stay out of the cache key, so that changing them reuses the cache
NOT_IN_KEY = ('out_dir', 'num_workers', 'device', 'compile', 'eval_interval', 'eval_max_batches', 'log_interval',
              'num_temporal_clips', 'num_spatial_crops')


def feature_loader(spec, split, cfg):
    """A split of a dataset in its file order with the evaluation transform and one view a sample, the train split
    included (make_loader's train split is shuffled and augmented). x is (B, 1, 3, H, W) or (B, 1, 3, T, H, W)."""
    one_view = types.SimpleNamespace(**{**vars(cfg), 'num_temporal_clips': 1, 'num_spatial_crops': 1})
    return data.make_loader(spec, split, one_view, train=False)


def backbone_fingerprint(state_dict):
    """A hash of the backbone's weights (the heads do not change a feature): names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name, tensor in sorted(state_dict.items()):
        if name.startswith('heads.'):
            continue
        h.update(f'{name} {tuple(tensor.shape)} {tensor.dtype}'.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(backbone, cfg, spec, split, samples):
    """A hash of everything the features of one split depend on; a cache file with another key is stale."""
    settings = {k: v for k, v in config.to_dict(cfg).items()
                if k not in NOT_IN_KEY and not k.startswith(('probe_', 'temporal_'))}
    everything = dict(backbone=backbone, settings=settings, spec=spec, split=split,
                      samples=[[str(path), int(label)] for path, label in samples])
    return hashlib.sha256(json.dumps(everything, sort_keys=True).encode()).hexdigest()


@torch.no_grad()
def extract_features(model, loader, device, autocast=nullcontext(), desc='features'):
    """Backbone features and labels of every sample of loader, in order: (N, D) float32 on the CPU, (N,) long."""
    model.eval()
    features, labels = [], []
    for x, y in tqdm(loader, desc=desc, dynamic_ncols=True):
        with autocast:
            f = model.features(x.to(device, non_blocking=True).flatten(0, 1))  # (B, D): one view a sample
        features.append(f.float().cpu())
        labels.append(y)
    return torch.cat(features), torch.cat(labels)


def cached_features(model, loader, path, key, device, autocast=nullcontext(), desc='features'):
    """extract_features(), read from path when it holds features with the same key, else computed and saved."""
    if os.path.exists(path):
        cached = torch.load(path, map_location='cpu', weights_only=True)
        if cached['key'] == key:
            return cached['features'], cached['labels']
        print(f'{path} was made from another checkpoint, dataset or setting: recomputing it')
    features, labels = extract_features(model, loader, device, autocast, desc)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(dict(key=key, features=features, labels=labels), path + '.tmp')
    os.replace(path + '.tmp', path)  # a kill never leaves a half-written cache
    return features, labels


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block. The probe's matrices are small: on a busy machine, waking a
    second thread for every tiny op cost 20x the time here (10 s instead of 0.4 s for the test's probe)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_linear(train_x, train_y, val_x, val_y, num_classes, epochs=30, lr=1e-3, weight_decay=1e-4,
                 batch_size=256, seed=0):
    """A linear classifier on fixed features: AdamW on shuffled mini-batches, the learning rate decaying to 0 on a
    cosine. Returns top-1 (%) on the training and the val features.

    The features are standardised with the training set's mean and std, so that one learning rate suits any
    backbone's feature scale. The weights start at zero (the problem is convex, so nothing is lost) and the only
    randomness, the order of the batches, comes from `seed`: the same features give the same probe.
    """
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std             # (N, D), (M, D)
    head = torch.nn.Linear(train_x.shape[1], num_classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(train_x) / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad(), one_thread():
        for _ in range(epochs):
            for batch in torch.randperm(len(train_x), generator=generator).split(batch_size):
                loss = F.cross_entropy(head(train_x[batch]), train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    with torch.no_grad():
        top1 = lambda x, y: 100 * (head(x).argmax(1) == y).float().mean().item()
        return dict(top1=top1(val_x, val_y), train_top1=top1(train_x, train_y))


def main(argv):
    config.handle_help(argv, 'python -m tools.probe [CONFIG.py ...] [--key=value ...]  (probe_* settings below)')
    cfg, ckpt, ckpt_path = load_run(argv)
    device = config.resolve_device(cfg.device)
    autocast = config.autocast_for(cfg.dtype, device)
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.to(device)
    backbone = backbone_fingerprint(ckpt['model'])

    targets = cfg.probe_datasets or cfg.datasets
    results = {}
    for name, spec in targets.items():
        spec = config.dataset_spec(name, spec)
        splits = {}
        for split in ('train', 'val'):
            loader = feature_loader(spec, split, cfg)
            key = cache_key(backbone, cfg, spec, split, loader.dataset.samples)
            path = os.path.join(cfg.out_dir, 'probe', f'{name}-{split}.pt')
            splits[split] = cached_features(model, loader, path, key, device, autocast, f'features {name} {split}')
        classes = loader.dataset.classes
        (train_x, train_y), (val_x, val_y) = splits['train'], splits['val']
        r = train_linear(train_x, train_y, val_x, val_y, len(classes), cfg.probe_epochs, cfg.probe_lr,
                         cfg.probe_weight_decay, cfg.probe_batch_size, cfg.seed)
        results[name] = dict(r, trained_on=list(ckpt['classes']), checkpoint=ckpt_path, iter_num=ckpt['iter_num'],
                             root=spec['root'], classes=len(classes), train_samples=len(train_y),
                             val_samples=len(val_y), feature_dim=train_x.shape[1], epochs=cfg.probe_epochs)
        print(f'{"+".join(ckpt["classes"])} -> {name}: linear probe top-1 {r["top1"]:.2f}% '
              f'(train {r["train_top1"]:.2f}%; {len(train_y)} train, {len(val_y)} val samples, '
              f'{len(classes)} classes, {train_x.shape[1]}-d features)')

    path = os.path.join(cfg.out_dir, 'probe.json')  # one entry per target: earlier probes of other targets stay
    previous = {}
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
    with open(path, 'w') as f:
        json.dump({**previous, **results}, f, indent=2)


if __name__ == '__main__':
    main(sys.argv[1:])

"""Mixup and CutMix in batches that mix datasets (mixup.py): a sample is only ever mixed with a sample of its own
dataset, and the loss of a mixed sample is the soft-target cross-entropy of its two-hot target, with label
smoothing and through the projection too."""

import numpy as np
import pytest
import torch

import mixup
from losses import Objective
from test_objective import NUM_CLASSES, TinyModel, make_cfg


def values_batch(B=24, datasets=3, seed=0):
    """x (B, 3, T, H, W) whose every pixel of sample b says which sample it is (1000 * ds + b), and its ds."""
    g = torch.Generator().manual_seed(seed)
    ds = torch.randint(datasets, (B,), generator=g)
    ds[:datasets] = torch.arange(datasets)                           # every dataset present
    ds[-1] = datasets                                                # a dataset with a single sample in the batch
    x = (1000 * ds + torch.arange(B)).float().view(B, 1, 1, 1, 1).expand(B, 3, 2, 8, 8).clone()
    return x, torch.arange(B), ds


@pytest.mark.parametrize('alphas', [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)], ids=['mixup', 'cutmix', 'both'])
def test_samples_are_mixed_only_with_samples_of_their_own_dataset(alphas):
    x, y, ds = values_batch()
    seen = set()
    for seed in range(40):
        mixed, (y2, lam) = mixup.mix(x, y, ds, *alphas, np.random.default_rng(seed))
        assert mixed.shape == x.shape and y2.shape == lam.shape == y.shape
        assert (ds[y2] == ds).all()                                  # y = arange: y2 names the partner
        alone = ds == ds.max()                                       # its dataset's only sample: left as it is
        assert (y2[~alone] != y[~alone]).all() and (y2[alone] == y[alone]).all()
        assert torch.allclose(mixed[alone], x[alone], atol=1e-3)  # (lam x + (1 - lam) x: rounding only)
        for b in range(len(y)):
            own, partner = x[b, 0, 0, 0, 0], x[y2[b], 0, 0, 0, 0]
            pixels = mixed[b]
            box = pixels == partner
            if torch.equal(pixels, x[b]):
                continue
            if ((pixels == own) | box).all():                         # CutMix: own pixels and a box of the partner's
                assert torch.equal(box[:, 0], box[:, 1])             # the same box in every frame
                assert lam[b] == pytest.approx(1 - box[0, 0].float().mean().item())  # lam: the area kept
                seen.add('cutmix')
            else:                                                    # mixup: every pixel the same blend
                assert torch.allclose(pixels, lam[b] * own + (1 - lam[b]) * partner, atol=1e-3)
                seen.add('mixup')
    expected = {'mixup': alphas[0] > 0, 'cutmix': alphas[1] > 0}
    assert seen == {k for k, on in expected.items() if on}           # with both on, both are used


def test_the_same_generator_state_mixes_the_same_way():
    x, y, ds = values_batch()
    a = mixup.mix(x, y, ds, 0.8, 1.0, np.random.default_rng([1, 2, 3]))
    b = mixup.mix(x, y, ds, 0.8, 1.0, np.random.default_rng([1, 2, 3]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][0], b[1][0]) and torch.equal(a[1][1], b[1][1])


@pytest.mark.parametrize('projection', ['none', 'add', 'separate'])
def test_loss_of_mixed_samples_is_soft_target_cross_entropy(projection):
    """lam CE(y) + (1 - lam) CE(y2), with label smoothing on both, equals the cross-entropy against the smoothed
    two-hot target lam * onehot(y) + (1 - lam) * onehot(y2); with a projection, against the projected logits."""
    torch.manual_seed(0)
    names, eps = ('a', 'b'), 0.1
    cfg = make_cfg(label_smoothing=eps, projection=projection, projection_init='normal')
    model, objective = TinyModel(), Objective(NUM_CLASSES, 6, cfg)
    B = 12
    ds = torch.tensor([0, 1] * (B // 2))
    y = torch.tensor([int(torch.randint(NUM_CLASSES[names[k]], ())) for k in ds])
    y2 = torch.tensor([int(torch.randint(NUM_CLASSES[names[k]], ())) for k in ds])
    lam = torch.rand(B)
    x = torch.randn(B, 5)
    total, parts, _ = objective(model, names, x, y, ds, mix=(y2, lam))  # ({dataset: L_k}, regularisers)
    with torch.no_grad():
        f = model.features(x)
        logits = {n: model.heads[n](f) for n in NUM_CLASSES}
        for k, name in enumerate(names):
            rows = (ds == k).nonzero().flatten()
            C = NUM_CLASSES[name]
            target = eps / C + (1 - eps) * (lam[rows, None] * torch.eye(C)[y[rows]]
                                            + (1 - lam[rows, None]) * torch.eye(C)[y2[rows]])  # (n, C) soft
            soft_ce = lambda z: -(target * z[rows].log_softmax(-1)).sum(-1)                    # (n,)
            if projection == 'none':
                per_sample = soft_ce(logits[name])
            elif projection == 'add':
                per_sample = soft_ce(objective.projection.project(logits, name))
            else:
                projected = objective.projection.projected(logits, name)
                per_sample = soft_ce(logits[name]) + sum(soft_ce(p) for p in projected) / len(projected)
            assert parts[name].item() == pytest.approx(per_sample.sum().item() / B, rel=1e-5)

"""Training augmentations (augment.py). Sample level: RandAugment, resized crops, erasing and repeated augmentation
give every frame of a clip the same transform, deterministically from the sample's seed. Batch level: mixup and
CutMix in batches that mix datasets: a sample is only ever mixed with a sample of its own dataset, and the loss of
a mixed sample is the soft-target cross-entropy of its two-hot target, with label smoothing and through the
projection too."""

import types

import numpy as np
import pytest
import torch

import augment
import config
import data
from losses import Objective
from test_objective import NUM_CLASSES, TinyModel, make_cfg
from tools import synthetic

OFFICIAL = dict(rand_augment='rand-m7-n4-mstd0.5-inc1', aug_interpolation='bicubic', random_erasing=0.25,
                resized_crop=True, crop_scale=(0.08, 1.0), crop_aspect=(0.75, 1.3333), repeated_aug=2)


def still_clip(T=4, seed=0):
    """A clip (T, 3, 40, 48) of uint8 noise in [50, 150) whose frames are all the same picture (low contrast, so
    that autocontrast and equalize change it too)."""
    frame = torch.randint(50, 150, (1, 3, 40, 48), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return frame.expand(T, 3, 40, 48).clone()


@pytest.mark.parametrize('op', list(augment.INCREASING_OPS))
def test_every_randaugment_op_transforms_every_frame_alike(op):
    """Each op of timm's increasing set, at the official magnitude, on a clip of identical frames: the frames stay
    identical (one draw for the clip), and the op changes the picture."""
    clip = still_clip()
    torch.manual_seed(0)
    out = augment.INCREASING_OPS[op](clip, 7.0, 'bicubic')
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert all(torch.equal(out[0], out[t]) for t in range(1, len(out)))
    assert not torch.equal(out, clip), op


def test_affine_ops_move_pixels_as_pil_does():
    """A shift by 10 columns moves the picture 10 columns (PIL's convention: output x reads input x + c), the
    uncovered columns are timm's grey 128; a shear with factor 0 is the identity, with bicubic resampling too."""
    clip = still_clip(T=2)
    shifted = augment._affine(clip, ((1.0, 0.0, 10.0), (0.0, 1.0, 0.0)), 'bicubic')
    assert torch.equal(shifted[..., :-10], clip[..., 10:]) and (shifted[..., -10:] == 128).all()
    assert torch.equal(augment._affine(clip, ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), 'bicubic'), clip)


def test_randaugment_draws_ops_magnitudes_and_skips_as_timm():
    """'rand-m7-n4-mstd0.5-inc1': 4 ops from the 15 of the increasing set, each applied half of the time; over
    many draws every op is used and about half the draws leave a clip unchanged by an op."""
    ra = augment.RandAugment('rand-m7-n4-mstd0.5-inc1', 'bicubic')
    assert (ra.magnitude, ra.num_ops, ra.magnitude_std, len(ra.ops)) == (7.0, 4, 0.5, 15)
    used, applied = [], 0
    torch.manual_seed(0)
    for _ in range(400):
        ops = torch.randint(len(ra.ops), (4,)).tolist()
        used += ops
        applied += sum(torch.rand(()).item() < 0.5 for _ in ops)
    assert set(used) == set(range(15)) and 0.45 < applied / 1600 < 0.55
    for bad in ('rand-m7-n4', 'rand-n4-inc1', 'auto-m7-inc1', 'rand-m7-x2-inc1'):
        with pytest.raises(ValueError, match='rand_augment'):
            augment.parse_rand_augment(bad)
    with pytest.raises(config.ConfigError, match="'k400'.*inc1"):
        config.dataset_spec('k400', dict(format='kinetics', root='x', rand_augment='rand-m7-n4'))


@pytest.fixture(scope='module')
def clips_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'moves'
    synthetic.write_synthetic_kinetics(root, seed=0, classes=('MoveLeft', 'MoveRight'), train_per_class=2,
                                       val_per_class=1, seconds=1.0)
    return root


def video_dataset(root, **spec):
    cfg = types.SimpleNamespace(img_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, num_temporal_clips=1,
                                num_spatial_crops=1)
    spec = config.dataset_spec('moves', dict(format='kinetics', root=str(root), num_frames=4, **spec))
    return data.VideoDataset([(str(p), 0) for p in sorted(root.rglob('*.mp4'))], ['a'], True, spec, cfg)


def test_the_official_augmentations_give_every_frame_of_a_clip_the_same_transform(clips_root, monkeypatch):
    """The whole training transform with the release's augmentations on, applied to a clip of one picture repeated:
    whatever the draws (RandAugment, resized crop, flip, erasing), every frame of the output is the same."""
    dataset = video_dataset(clips_root, **OFFICIAL)
    still = still_clip(T=4)
    monkeypatch.setattr(dataset, 'read', lambda path, segment, u: still[None])
    for seed in range(12):
        samples = dataset[(0, seed)]
        assert isinstance(samples, list) and len(samples) == 2          # repeated augmentation: 2 of each clip
        a, b = samples[0][0], samples[1][0]                              # (3, T, S, S) each
        assert a.shape == (3, 4, 32, 32) and not torch.equal(a, b)      # two different augmentations
        for x in (a, b):
            assert all(torch.equal(x[:, 0], x[:, t]) for t in range(1, 4))
    again = dataset[(0, 3)]
    assert all(torch.equal(p[0], q[0]) for p, q in zip(again, dataset[(0, 3)]))  # the seed fixes everything


def test_random_erasing_erases_one_box_in_every_frame():
    spec = config.dataset_spec('x', dict(format='kinetics', root='x', random_erasing=1.0))
    transform = augment.train_transform(spec, 32, lambda x: x.float(), video=True)
    torch.manual_seed(0)
    out = transform(torch.zeros(4, 3, 40, 48, dtype=torch.uint8))      # (T, 3, 32, 32), zeros except the box
    box = out != 0
    assert box.any() and all(torch.equal(box[0], box[t]) for t in range(4))
    assert 0.02 * 32 * 32 * 3 <= box[0].sum() <= 32 * 32 * 3 / 3 + 3


def test_repeated_augmentation_doubles_the_batch_rows_in_order(clips_root):
    """A loader with repeated_aug=2 and batch_size 2: 4 rows, the two of each clip adjacent (data.collate)."""
    cfg = types.SimpleNamespace(img_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, num_temporal_clips=1,
                                num_spatial_crops=1, num_workers=0, seed=0, grad_accum=1, device='cpu',
                                sampling='round_robin')
    spec = config.dataset_spec('moves', dict(format='kinetics', root=str(clips_root), num_frames=4, batch_size=2,
                                             repeated_aug=2))
    loader = data.make_loader(spec, 'train', cfg)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 4, 32, 32) and y.shape == (4,)
    assert y[0] == y[1] and y[2] == y[3] and not torch.equal(x[0], x[1])


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
        mixed, (y2, lam) = augment.mix(x, y, ds, *alphas, np.random.default_rng(seed))
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
    a = augment.mix(x, y, ds, 0.8, 1.0, np.random.default_rng([1, 2, 3]))
    b = augment.mix(x, y, ds, 0.8, 1.0, np.random.default_rng([1, 2, 3]))
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

"""Sampling across datasets (sampling.rounds, CoVeR's ProportionalBatchSampler, data.MixedDataset and
make_train_loaders) and the accumulation-aware sampler."""

import types
from collections import Counter
from fractions import Fraction

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import config
import data
import sampling
from tools import synthetic


class Numbers(Dataset):
    """Sample i of dataset `offset` is (offset + i, label i % 3): every sample says where it came from."""
    is_video = False

    def __init__(self, n, offset):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, item):
        index, seed = item
        return torch.tensor(float(self.offset + index)), index % 3


def loader(dataset, batch_size, seed=0, rank=0, world=1, accum=1):
    sampler = sampling.ShardedBatchSampler(len(dataset), batch_size, rank, world, seed, accum=accum)
    return DataLoader(dataset, batch_sampler=sampler)


def loaders():
    return {'a': (('a',), loader(Numbers(40, 0), 4)), 'b': (('b',), loader(Numbers(120, 1000), 4)),
            'c': (('c',), loader(Numbers(20, 2000), 4))}


def flat(rounds, n):
    """The first n rounds as [[(names, sample values)]] per slot."""
    out = []
    for _, round_ in zip(range(n), rounds):
        out.append([[(names, x.tolist()) for names, x, y, ds in slot] for slot in round_])
    return out


def test_round_robin_takes_every_dataset_in_order():
    first = next(sampling.rounds(loaders(), accum=2))
    assert [[names for names, *_ in slot] for slot in first] == [[('a',)] * 2, [('b',)] * 2, [('c',)] * 2]
    for slot, offset in zip(first, (0, 1000, 2000)):
        values = [v for _, x, _, ds in slot for v in x.tolist()]
        assert all(offset <= v < offset + 1000 for v in values) and len(set(values)) == 8  # 2 distinct batches
        assert all((ds == 0).all() for _, _, _, ds in slot)


class Fake(Numbers):
    """A stand-in for a dataset of images (is_video False) or clips, as make_train_loaders sees it: no decoding."""

    def __init__(self, n, offset, is_video):
        super().__init__(n, offset)
        self.is_video = is_video


def cover_loaders(monkeypatch, rank=0, world=1, accum=1):
    """CoVeR's four datasets at 1/1000 of their sizes (K400 240k, SSv2 169k, MiT 727k, ImageNet 1.28M) and a second
    clip length (a 24-frame dataset), so that three sample shapes share a step, with unequal batch sizes (2, 3, 5,
    6, 1: 17 per step and rank, about CoVeR's 128 on 8 GPUs) and no decoding."""
    sizes = dict(k400=240, ssv2=169, mit=727, imagenet=1281, long=300)
    batch = dict(k400=2, ssv2=3, mit=5, imagenet=6, long=1)
    frames = dict(k400=16, ssv2=16, mit=16, imagenet=16, long=24)
    fakes = {name: Fake(n, 10_000 * k, name != 'imagenet') for k, (name, n) in enumerate(sizes.items())}
    monkeypatch.setattr(data, '_dataset', lambda spec, split, cfg, rank=0, train=None: fakes[spec['root']])
    specs = {name: dict(root=name, batch_size=batch[name], num_frames=frames[name]) for name in sizes}
    cfg = types.SimpleNamespace(sampling='proportional', grad_accum=accum, seed=0, num_workers=0, device='cpu')
    return sizes, data.make_train_loaders(specs, cfg, rank, world)


def steps(loaders, n, start=0, accum=1):
    """The samples of n steps from `start`, [[sample values of each micro-batch, every shape]]; a sample's value
    is 10,000 x its dataset's number + its index."""
    out = []
    for _, round_ in zip(range(n), sampling.rounds(loaders, start, accum)):
        out.append([sum((slot[m][1].long().tolist() for slot in round_), []) for m in range(accum)])
    return out


def test_proportional_every_step_holds_every_dataset_in_proportion_to_its_size(monkeypatch):
    """CoVeR (arXiv:2112.07175, 4.1): every step holds images and videos of every dataset, and each dataset's share
    of the samples seen is its share of the data, whatever its batch_size. Counted over 1,000 steps."""
    sizes, loaders = cover_loaders(monkeypatch)
    assert [names for names, _ in loaders.values()] == [('k400', 'ssv2', 'mit'), ('imagenet',), ('long',)]
    seen, data_share = Counter(), [n / sum(sizes.values()) for n in sizes.values()]
    for (step,) in steps(loaders, 1000):
        counts = Counter(value // 10_000 for value in step)
        assert len(step) == 17 and set(counts) == set(range(5))  # every dataset in every step
        seen.update(counts)
    for k, name in enumerate(sizes):
        assert seen[k] / 17_000 == pytest.approx(data_share[k], abs=0.02), name
        # in fact within two samples of 17,000 x its share (Webster's counts lag or lead by 1.19 at most here)
        assert abs(seen[k] - 17_000 * data_share[k]) < 2, name
    expected = data.sample_shares(loaders)  # what train.py prints at start-up
    for name, share in zip(sizes, data_share):
        assert expected[name] == pytest.approx((share, share)), name


def test_proportional_a_dataset_too_small_for_one_sample_a_step_still_has_one():
    sampler = sampling.ProportionalBatchSampler([5, 1000, 3000], [0, 1, 2], [0, 5, 1005], batch_total=8)
    shares = sampler.shares()
    assert shares[0] == (1 / 8, 5 / 4005)  # over-served by its one sample, the others share the 7 left
    assert shares[1][0] == pytest.approx(7 / 8 * 1000 / 4000, abs=0.02) and sum(s for s, _ in shares) == 1
    assert all(sampler.counts(step)[0][0] == 1 for step in range(100))
    with pytest.raises(ValueError, match='cannot hold one'):
        sampling.ProportionalBatchSampler([5, 1000, 3000], [0], [0], batch_total=2)


def test_proportional_two_ranks_take_the_samples_of_one_with_two_micro_batches(monkeypatch):
    """Each micro-batch of each rank (a chunk) has its step's counts; 2 ranks x 1 micro-batch and 1 rank x 2
    micro-batches cut the same chunks from the same shuffled streams, and no sample repeats within a pass."""
    _, one = cover_loaders(monkeypatch, accum=2)
    ranks = [cover_loaders(monkeypatch, rank=r, world=2)[1] for r in (0, 1)]
    accumulated = steps(one, 30, accum=2)
    assert [[a, b] for (a,), (b,) in zip(steps(ranks[0], 30), steps(ranks[1], 30))] == accumulated
    k400 = [v for step in accumulated for chunk in step for v in chunk if v < 10_000]
    assert len(k400) == len(set(k400)) == round(30 * 2 * 17 * 240 / 2717)  # 30 steps: less than one pass


def test_proportional_rounds_from_a_start_continue_the_same_sequence(monkeypatch):
    """Past the end of the sampler's nominal epoch (5 steps of 2 x 17) and of the K400 stream's first pass."""
    whole = steps(cover_loaders(monkeypatch, accum=2)[1], 100, accum=2)
    for start in (1, 5, 77):
        assert steps(cover_loaders(monkeypatch, accum=2)[1], 100 - start, start=start, accum=2) == whole[start:]


def test_apportion_is_webster_one_sample_at_a_time():
    """apportion(total) in one go equals handing out `total` samples one by one, each to the largest
    weight / (count + 1/2), ties to the first; so it never takes a sample back as total grows."""
    def one_by_one(total, weights):
        out = [0] * len(weights)
        for _ in range(total):
            out[max(range(len(out)), key=lambda g: (Fraction(2 * weights[g], 2 * out[g] + 1), -g))] += 1
        return out
    for weights in ([1, 1], [3, 1, 1], [0, 5, 5, 2], [240, 169, 727, 1281], [7, 7, 7, 7, 1], [1, 1000, 3000]):
        for total in range(40):
            assert sampling.apportion(total, weights) == one_by_one(total, weights), (weights, total)


def test_rounds_from_a_start_continue_the_same_sequence():
    whole = flat(sampling.rounds(loaders(), 0, 2), 40)  # past the end of epochs of 'a', 'c'
    assert flat(sampling.rounds(loaders(), 25, 2), 15) == whole[25:]


def test_unknown_sampling_is_an_error():
    with pytest.raises(ValueError, match='sampling'):  # the choices are checked in one place: config.check
        config.load(['--sampling=shuffled'])


def test_mixed_dataset_labels_each_sample_with_its_dataset():
    mixed = data.MixedDataset([Numbers(5, 0), Numbers(7, 1000)])
    assert len(mixed) == 12
    items = [mixed[(i, 0)] for i in range(12)]
    assert [k for _, _, k in items] == [0] * 5 + [1] * 7
    assert [x.item() for x, _, _ in items] == list(range(5)) + list(range(1000, 1007))
    x, y, ds = next(iter(loader(mixed, 12)))
    assert sorted(x.tolist()) == sorted(v.item() for v, _, _ in items)
    assert ((x >= 1000) == (ds == 1)).all()  # the dataset id travels with its sample through shuffling


def test_make_train_loaders_groups_same_shape_datasets_when_mixed(tmp_path):
    for name in ('p', 'q'):
        synthetic.write_synthetic_tinyimagenet(tmp_path / name, num_classes=2, train_per_class=6, val_per_class=1, size=16)
    specs = {n: config.dataset_spec(n, dict(format='tinyimagenet', root=str(tmp_path / n), batch_size=b))
             for n, b in (('p', 2), ('q', 3))}
    cfg = types.SimpleNamespace(sampling='mixed', grad_accum=1, seed=0, num_workers=0, device='cpu', img_size=16,
                                mean=(0.5,) * 3, std=(0.5,) * 3, num_spatial_crops=1, num_temporal_clips=1)
    loaders = data.make_train_loaders(specs, cfg)
    assert list(loaders) == ['p+q']
    names, mixed = loaders['p+q']
    assert names == ('p', 'q') and len(mixed.dataset) == 24 and mixed.batch_sampler.batch_size == 5
    _, x, y, ds = next(sampling.rounds(loaders))[0][0]
    assert x.shape == (5, 3, 16, 16) and set(ds.tolist()) <= {0, 1}
    cfg.sampling = 'round_robin'
    assert {k: v[0] for k, v in data.make_train_loaders(specs, cfg).items()} == {'p': ('p',), 'q': ('q',)}


def test_accumulated_micro_batches_split_the_same_global_batches():
    """accum micro-batches of b on each of W ranks = one batch of accum * b * W, epoch after epoch (n = 50 is
    not a multiple of either): the ragged end is dropped in whole optimizer steps."""
    def steps(b, world, accum, epochs=3):
        samplers = [sampling.ShardedBatchSampler(50, b, r, world, seed=9, accum=accum) for r in range(world)]
        out = []
        for epoch in range(epochs):
            per_rank = []
            for s in samplers:
                s.set_epoch(epoch)
                per_rank.append(list(s))
            batches = [sum((rank_batches[i] for rank_batches in per_rank), []) for i in range(len(per_rank[0]))]
            out += [sorted(sum(batches[i:i + accum], [])) for i in range(0, len(batches), accum)]
        return out
    big = steps(12, 1, 1)
    assert steps(3, 2, 2) == big and steps(6, 1, 2) == big and steps(2, 2, 3) == big
    assert len(big) == 3 * (50 // 12)

"""Sampling across datasets (data.rounds, MixedDataset, make_train_loaders) and the accumulation-aware sampler."""

import types
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import config
import data
import synthetic


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
    sampler = data.ShardedBatchSampler(len(dataset), batch_size, rank, world, seed, accum=accum)
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
    first = next(data.rounds(loaders(), 'round_robin', accum=2))
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


def test_proportional_shares_of_the_samples_seen_follow_the_sizes_of_the_data(monkeypatch):
    """CoVeR (arXiv:2112.07175, 4.1): every step holds images and videos, each dataset's share of the samples seen
    is its share of the data, whatever its batch_size. CoVeR's four datasets at 1/1000 of their sizes (K400 240k,
    SSv2 168k, MiT 791k, ImageNet 1.28M), unequal batch sizes (2, 3, 5, 6: 16 per step, CoVeR's 128 on 8 GPUs),
    and a second clip length (a 24-frame dataset) so that three sample shapes share the step. Counted over 1,000
    steps: the shares seen are within 2 points of the shares of the data, and every step sees every shape."""
    sizes = dict(k400=240, ssv2=168, mit=791, imagenet=1281, long=300)
    batch = dict(k400=2, ssv2=3, mit=5, imagenet=6, long=1)
    frames = dict(k400=16, ssv2=16, mit=16, imagenet=16, long=24)
    fakes = {name: Fake(n, 10_000 * k, name != 'imagenet') for k, (name, n) in enumerate(sizes.items())}
    monkeypatch.setattr(data, '_dataset', lambda spec, split, cfg, rank=0, train=None: fakes[spec['root']])
    specs = {name: dict(root=name, batch_size=batch[name], num_frames=frames[name]) for name in sizes}
    cfg = types.SimpleNamespace(sampling='proportional', grad_accum=1, seed=0, num_workers=0, device='cpu')
    loaders = data.make_train_loaders(specs, cfg)
    assert [names for names, _ in loaders.values()] == [('k400', 'ssv2', 'mit'), ('imagenet',), ('long',)]
    assert [loader.batch_sampler.batch_size for _, loader in loaders.values()] == [7, 8, 2]  # 7.33, 7.83, 1.83 of 17
    seen = Counter()
    for _, round_ in zip(range(1000), data.rounds(loaders, 'proportional')):
        assert len(round_) == 3  # one batch of each shape in every step: images with the videos
        for (names, x, y, ds), in round_:
            seen.update((x // 10_000).long().tolist())  # the dataset each sample came from
    total = sum(seen.values())
    assert total == 17 * 1000
    for k, name in enumerate(sizes):
        assert seen[k] / total == pytest.approx(sizes[name] / sum(sizes.values()), abs=0.02), name
    expected = data.sample_shares(loaders)  # what train.py prints at start-up
    for k, name in enumerate(sizes):
        assert seen[k] / total == pytest.approx(expected[name][0], abs=0.01), name


def test_split_batch_is_largest_remainder_with_at_least_one_each():
    assert data.split_batch(16, [1200, 1281]) == [8, 8]
    assert data.split_batch(10, [1, 1, 8]) == [1, 1, 8]
    assert data.split_batch(4, [1, 1000, 1000]) == [1, 2, 1]  # the tiny group keeps one sample
    assert data.split_batch(27, [64, 44]) == [16, 11] and data.split_batch(54, [64, 44]) == [32, 22]
    with pytest.raises(ValueError, match='cannot hold'):
        data.split_batch(2, [1, 1, 1])


@pytest.mark.parametrize('sampling', ['round_robin', 'proportional', 'mixed'])
def test_rounds_from_a_start_continue_the_same_sequence(sampling):
    whole = flat(data.rounds(loaders(), sampling, seed=1, accum=2), 40)  # past the end of epochs of 'a', 'c'
    assert flat(data.rounds(loaders(), sampling, seed=1, accum=2, start=25), 15) == whole[25:]


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
    _, x, y, ds = next(data.rounds(loaders, 'mixed'))[0][0]
    assert x.shape == (5, 3, 16, 16) and set(ds.tolist()) <= {0, 1}
    cfg.sampling = 'round_robin'
    assert {k: v[0] for k, v in data.make_train_loaders(specs, cfg).items()} == {'p': ('p',), 'q': ('q',)}


def test_accumulated_micro_batches_split_the_same_global_batches():
    """accum micro-batches of b on each of W ranks = one batch of accum * b * W, epoch after epoch (n = 50 is
    not a multiple of either): the ragged end is dropped in whole optimizer steps."""
    def steps(b, world, accum, epochs=3):
        samplers = [data.ShardedBatchSampler(50, b, r, world, seed=9, accum=accum) for r in range(world)]
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

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


def test_proportional_picks_datasets_by_size_and_the_same_on_every_call():
    counts = Counter(slot[0][0][0] for round_ in flat(data.rounds(loaders(), 'proportional', seed=3), 600)
                     for slot in round_)
    total = sum(counts.values())  # 1800 batches; sizes 40 : 120 : 20
    for name, size in (('a', 40), ('b', 120), ('c', 20)):
        assert counts[name] / total == pytest.approx(size / 180, abs=0.03)
    assert flat(data.rounds(loaders(), 'proportional', seed=3), 20) == \
        flat(data.rounds(loaders(), 'proportional', seed=3), 20)
    assert flat(data.rounds(loaders(), 'proportional', seed=3), 20) != \
        flat(data.rounds(loaders(), 'proportional', seed=4), 20)


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

"""
Sampling: which samples make each batch, on which rank, at which step. This is where the three papers differ:
  IV-ViT (arXiv:2308.10533): one dataset per batch, the datasets in a fixed order, round after round;
  CoVeR (arXiv:2112.07175, 4.1): "Within each batch, we sampled videos and images from all finetuning datasets.
    The sampling rate is proportional to the size of the datasets" (ProportionalBatchSampler);
  MultiTrain (arXiv:2209.12362): batches drawn from the union of the datasets (a ShardedBatchSampler over
    data.MixedDataset), so each batch's make-up is random, in proportion to size on average.
data.py builds the loaders from these samplers; rounds() below is what train.py takes, one round per step.

Sampling is deterministic so that multi-GPU runs equal single-GPU runs and resumes are exact: a sampler yields
(index, sample_seed) pairs, with sample_seed a function of (seed, epoch, index) only, and a dataset draws ALL the
randomness of a sample (clip start, crop, flip, resize) from its seed. A sample is therefore the same whichever
worker process or GPU rank loads it, and a batch depends only on its number in the sequence.
"""

from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Sampler


def sample_seed(*numbers):
    """A well-mixed 64-bit seed from non-negative integers, e.g. (seed, epoch, index)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint64)[0])


def permutation(n, *seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(sample_seed(*seed)))


class ShardedBatchSampler(Sampler):
    """Batches of (index, sample_seed) pairs for rank `rank` of `world` processes.
    drop_last=True (training): each epoch, a permutation (shuffle) or the plain order is cut into global
        batches of batch_size * world and rank r takes the r-th contiguous chunk of each, so 1 process with
        batch 2b sees exactly the samples (and seeds) of 2 processes with batch b. The ragged end is dropped in
        whole optimizer steps of `accum` batches, so that accum micro-batches of b split the same global batches
        as one batch of accum * b, epoch after epoch (gradient accumulation is then equivalent).
    drop_last=False (evaluation): rank r takes samples r, r + world, ..., in batches; the last may be short.
        The shards are disjoint and cover the split, so correct counts summed over ranks are exact."""

    def __init__(self, n, batch_size, rank=0, world=1, seed=0, shuffle=True, drop_last=True, accum=1):
        self.n, self.batch_size, self.rank, self.world, self.accum = n, batch_size, rank, world, accum
        self.seed, self.shuffle, self.drop_last, self.epoch, self.start = seed, shuffle, drop_last, 0, 0

    def set_epoch(self, epoch, start=0):
        """The epoch to draw (its shuffle), and how many of its batches to skip: a resumed run starts mid-epoch."""
        self.epoch, self.start = epoch, start

    def _shard(self):
        """The indices of this rank, in the order they are batched."""
        order = permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        if not self.drop_last:
            return order[self.rank::self.world]
        per_rank = self.batch_size * self.world
        batches = order[:len(self) * per_rank].view(len(self), self.world, self.batch_size)  # (steps, W, B)
        return batches[:, self.rank].flatten()

    def __len__(self):
        if self.drop_last:
            return self.n // (self.batch_size * self.world * self.accum) * self.accum
        return -(-len(range(self.rank, self.n, self.world)) // self.batch_size)

    def __iter__(self):
        shard = self._shard().tolist()
        for i in range(self.start * self.batch_size, len(shard), self.batch_size):
            yield [(j, sample_seed(self.seed, self.epoch, j)) for j in shard[i:i + self.batch_size]]


# -----------------------------------------------------------------------------
# CoVeR's batches: every dataset in every batch, in proportion to its size


def apportion(total, weights):
    """`total` samples over groups with integer `weights` by Webster's divisor method: handed out one at a time,
    each to the group with the largest weight / (count + 1/2), ties to the first. Growing `total` never takes a
    sample back (no Alabama paradox), so apportion(U + R) - apportion(U) is R samples, none negative: how
    ProportionalBatchSampler spreads its batches over steps."""
    W = sum(weights)
    if total == 0 or W == 0:
        return [0] * len(weights)
    out = [(2 * total * w + W) // (2 * W) for w in weights]  # total * share rounded: Webster's for some total
    while sum(out) < total:  # the next sample's priority w / (count + 1/2), an exact fraction; ties to the first
        k = max(range(len(out)), key=lambda g: (Fraction(2 * weights[g], 2 * out[g] + 1), -g))
        out[k] += 1
    while sum(out) > total:  # take back the one handed out last: the lowest priority, ties to the last
        k = min((g for g in range(len(out)) if out[g]), key=lambda g: (Fraction(2 * weights[g], 2 * out[g] - 1), -g))
        out[k] -= 1
    return out


class ProportionalBatchSampler(Sampler):
    """
    CoVeR's batches of one sample shape: the datasets `members` (positions in `sizes`, the sizes of ALL the run's
    datasets, images and videos) concatenated in a data.MixedDataset. Every rank's micro-batch of every step
    (a chunk) holds `batch_total` samples of all the run's datasets: at least one of each, the rest spread in
    proportion to size, so that over the steps each dataset's share of the samples seen is its share of the data
    (exactly in the long run; a dataset too small for one sample per step is over-served by its one sample).
    A step's counts come from apportion() of the running total, so each stays within about a sample of its share
    of the step (on CoVeR's 16 a rank: 7-9 ImageNet images); every chunk of a step (every rank, every
    micro-batch) has the same counts, and this sampler
    yields this shape's part of it: its batches' sizes vary. Each dataset is read in its own shuffled order,
    epoch after epoch, chunk j = micro-batch * world + rank of a step taking the next counts[k] samples of it.
    A batch depends only on its number: set_epoch(e, start) starts at batch e * len(self) + start. So 2 ranks
    with batch_total b take the samples of 1 rank with b and 2 micro-batches (not those of 1 rank with 2b: the
    counts of 2b are apportioned anew).
    """

    def __init__(self, sizes, members, offsets, batch_total, rank=0, world=1, seed=0, accum=1):
        if batch_total < len(sizes):
            raise ValueError(f'a batch of {batch_total} samples (the sum of the batch_size settings) cannot hold one '
                             f'sample of each of {len(sizes)} datasets')
        self.sizes, self.members, self.offsets = list(sizes), list(members), list(offsets)
        self.batch_total, self.rank, self.world, self.seed, self.accum = batch_total, rank, world, seed, accum
        N, self.rest = sum(self.sizes), batch_total - len(self.sizes)  # after one sample of each dataset
        self.weights = [max(batch_total * n - N, 0) for n in self.sizes]  # (share * batch_total - 1) * N
        self.epoch, self.start, self._orders = 0, 0, {}
        self.batch_size = sum(self.shares()[k][0] for k in self.members) * batch_total  # the mean, for print-outs

    def shares(self):
        """[(share of a step's samples, share of the data)] of every dataset, in the long run."""
        rate = [1 + self.rest * w / max(sum(self.weights), 1) for w in self.weights]
        return [(r / self.batch_total, n / sum(self.sizes)) for r, n in zip(rate, self.sizes)]

    def counts(self, step):
        """Samples of each dataset in each chunk of `step`, and how many each had given before it (per chunk)."""
        before, after = apportion(step * self.rest, self.weights), apportion((step + 1) * self.rest, self.weights)
        return [1 + b - a for a, b in zip(before, after)], [step + a for a in before]

    def _order(self, k, epoch):
        if (k, epoch) not in self._orders:
            self._orders = {key: v for key, v in self._orders.items() if key[0] != k or key[1] >= epoch - 1}
            self._orders[k, epoch] = permutation(self.sizes[k], self.seed, k, epoch).tolist()
        return self._orders[k, epoch]

    def batch(self, number):
        """Batch `number` of this rank: [(index in the MixedDataset, sample seed)], the members in order."""
        step, m = divmod(number, self.accum)
        chunk, chunks = m * self.world + self.rank, self.accum * self.world
        counts, given = self.counts(step)
        out = []
        for k, offset in zip(self.members, self.offsets):
            first = given[k] * chunks + chunk * counts[k]  # position in dataset k's endless shuffled stream
            for position in range(first, first + counts[k]):
                epoch, i = divmod(position, self.sizes[k])
                index = offset + self._order(k, epoch)[i]
                out.append((index, sample_seed(self.seed, epoch, index)))
        return out

    def set_epoch(self, epoch, start=0):
        self.epoch, self.start = epoch, start

    def __len__(self):  # an 'epoch' of batches: about one pass over the run's data
        return max(1, sum(self.sizes) // (self.batch_total * self.world * self.accum)) * self.accum

    def __iter__(self):
        for number in range(self.epoch * len(self) + self.start, (self.epoch + 1) * len(self)):
            yield self.batch(number)


# -----------------------------------------------------------------------------
# the rounds that train.py takes


def forever(loader, start=0):
    """Batches without end, from batch number `start` of the whole sequence (epoch 0's first batch is 0); when
    an epoch is exhausted, the sampler moves to the next one (a new shuffle). The sequence depends only on the
    sampler's seed, so starting at `start` continues a run exactly where one that had taken `start` batches was."""
    sampler = loader.batch_sampler
    epoch, skip = divmod(start, len(sampler))
    while True:
        sampler.set_epoch(epoch, skip)
        yield from loader
        epoch, skip = epoch + 1, 0


def _labelled(names, loader, start):
    """forever(loader, start) as (names, x, y, ds) batches; a single dataset's samples all have ds = 0."""
    for batch in forever(loader, start):
        x, y, ds = batch if len(batch) == 3 else (*batch, torch.zeros_like(batch[1]))
        yield names, x, y, ds


def rounds(loaders, start=0, accum=1):
    """
    Training rounds without end, from round `start` on; train.py takes one round per iteration. A round is a
    list of slots, a slot a list of `accum` consecutive batches (names, x, y, ds) of one loader (the
    micro-batches of one optimizer step). loaders is data.make_train_loaders()'s {key: (names, loader)}: for every
    sampling scheme one slot per loader, in order (IV-ViT's fixed order); what differs is what the loaders hold
    (one dataset each, or groups of datasets with 'mixed' and 'proportional', see make_train_loaders).
    Restarting at `start` continues exactly where a run that had taken `start` rounds was: each loader resumes
    at the number of batches it had given by then.
    """
    keys = list(loaders)
    streams = {key: _labelled(*loaders[key], start * accum) for key in keys}
    while True:
        yield [[next(streams[key]) for _ in range(accum)] for key in keys]

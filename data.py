"""
Data: transforms, datasets and the loaders of a run. (The readers of the on-disk layouts are in readers.py, reading
pixels from files in decode.py, which samples make each batch in sampling.py, and fake datasets in the real
layouts, so that all of this runs without the real downloads, in synthetic.py.)

A dataset is indexed by (index, sample_seed) pairs (sampling.py) and draws ALL the randomness of a sample (clip
start, crop, flip, resize) from its seed: a sample is the same whichever worker process or GPU rank loads it.

Unreadable samples. A sample that cannot be read (missing or empty file, truncated or undecodable video, a video
without a video stream, a broken image; grayscale, palette, CMYK and alpha images are fine, they become RGB)
must not stop a run of days over one file among a million: the dataset replaces it by another of its
samples, chosen from (index, sample seed) alone so that the batch is the same whichever worker loads it,
prints one warning naming the file, and flags it in `dataset.bad`, a uint8 tensor in shared memory that the
DataLoader's workers and the main process all see (`dataset.num_bad()` counts the flags; train.py reports
them). When more than spec['max_bad_fraction'] (1 %) of a dataset turns out unreadable, the run stops with
TooManyUnreadable, one line naming the root, the count and a few files: training on a quietly shrinking dataset
would change the results.

A user's mistake in the data (readers.DataError: a root one level off, a missing annotation file, a split none of
whose files is on disk, a malformed line, too many unreadable files) ends train.py and eval.py with its one line
and no traceback (excepthook), whether a reader finds it at start-up or a loader's worker during the run.
"""

import contextlib
import io
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

import augment
import config
import readers
from sampling import ProportionalBatchSampler, ShardedBatchSampler
from decode import (UnreadableSample, eval_positions, frame_folder, read_clips, read_frame_clips, read_image,
                    train_positions)


# -----------------------------------------------------------------------------
# datasets and transforms


def _normalise(cfg):
    """uint8 (..., 3, H, W) -> float normalised with the model's mean and std."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(cfg.mean, cfg.std)])


def _offsets(length, size, n):
    """Where n crops of size sit along an axis: centred for n == 1, else evenly from start to end."""
    if n == 1:
        return [(length - size) // 2] * n
    return [round((length - size) * k / (n - 1)) for k in range(n)]


def spatial_crops(x, size, n):
    """n crops of size x size from x (..., H, W), one side of which already equals size: the crops slide
    along the long side (n = 3: start, centre, end, as CoVeR and SlowFast). Returns (n, ..., size, size)."""
    tops, lefts = _offsets(x.shape[-2], size, n), _offsets(x.shape[-1], size, n)
    return torch.stack([x[..., t:t + size, l:l + size] for t, l in zip(tops, lefts)])


def views(spec, cfg):
    """(temporal clips, spatial crops) of a dataset's evaluation views: its own num_temporal_clips and
    num_spatial_crops, or where those are None the run's (MultiTrain's release tests Kinetics with 1 x 5 views,
    Moments in Time 3 x 2 and SSv2 3 x 1, spatial x temporal)."""
    own = spec.get('num_temporal_clips'), spec.get('num_spatial_crops')
    return (cfg.num_temporal_clips if own[0] is None else own[0], cfg.num_spatial_crops if own[1] is None else own[1])


def collate(items):
    """default_collate after unpacking repeated augmentation: an item that is a list of R samples (one image or
    clip loaded once, augmented R times, spec['repeated_aug']) becomes R consecutive rows of the batch."""
    return default_collate([sample for item in items for sample in (item if isinstance(item, list) else [item])])


class TooManyUnreadable(readers.DataError, RuntimeError):
    """More than max_bad_fraction of a dataset cannot be read. Raised in a DataLoader worker, it reaches the main
    process rebuilt by the DataLoader from the text of the worker's traceback ("Caught TooManyUnreadable in
    DataLoader worker process 0.\nOriginal Traceback ...\ndata.TooManyUnreadable: <message>"): the constructor
    keeps only the message, its last line, so that it stays one line."""

    def __init__(self, message):
        if message.startswith('Caught ') and '\nOriginal Traceback' in message:
            message = message.rstrip().splitlines()[-1].split(': ', 1)[-1]
        super().__init__(message)


def excepthook(kind, error, tb):
    """sys.excepthook of train.py and eval.py: a readers.DataError, a mistake in a dataset's files, ends the run with
    its one line (the path and the fix) and exit status 1; any other exception is printed as usual, traceback and
    all."""
    if issubclass(kind, readers.DataError):
        tqdm.write(f"data error: {error}", file=sys.stderr)  # on a line of its own, below a progress bar if any
    else:
        sys.__excepthook__(kind, error, tb)


MAX_TRIES = 100  # samples tried before giving up on finding a readable one (max_bad_fraction stops sooner)


class _Samples(Dataset):
    """What images and videos share: samples, class names, settings, the final normalisation, and the handling of
    unreadable samples (see the module docstring). Items are indexed by (index, sample_seed) pairs from
    a sampler (sampling.py); a subclass's _item(index, seed) makes one."""

    def __init__(self, samples, classes, train, spec, cfg):
        self.samples, self.classes, self.train, self.spec, self.cfg = samples, classes, train, spec, cfg
        self.normalise = _normalise(cfg)
        self.views = views(spec, cfg)  # evaluation: (temporal clips, spatial crops)
        # bad[i] = 1 once sample i turned out unreadable. In shared memory: the DataLoader's worker processes
        # set the flags, and every process (the main one counts them for the log) sees the same bytes.
        self.bad = torch.zeros(len(samples), dtype=torch.uint8).share_memory_()

    def __len__(self):
        return len(self.samples)

    def num_bad(self):
        """How many samples turned out unreadable so far, in any process."""
        return int(self.bad.sum())

    def __getitem__(self, item):
        """Sample `index` made with `seed`; if it cannot be read, another one, drawn from (seed, index) alone:
        the same whichever worker loads it, as the set of unreadable files does not depend on the order."""
        index, seed = item
        candidate = index
        draws = None
        for _ in range(MAX_TRIES):
            if not self.bad[candidate]:
                try:
                    return self._item(candidate, seed)
                except UnreadableSample as e:
                    self._flag(candidate, e)
            if draws is None:
                draws = np.random.default_rng([seed, index])
            candidate = int(draws.integers(len(self)))
        raise TooManyUnreadable(f"{self.spec['root']}: found no readable sample in {MAX_TRIES} tries for sample "
                                f"{index} (max_bad_fraction={self.spec['max_bad_fraction']:.2%})")

    def _flag(self, index, error):
        """Flag sample `index` unreadable, warn once (the first process to flag it), and stop the run when more
        than max_bad_fraction of the dataset is unreadable."""
        if not self.bad[index]:
            self.bad[index] = 1
            # one write, line and newline together: the warnings of several worker processes do not interleave
            sys.stderr.write(f"warning: {error}; another sample of {self.spec['root']} replaces it "
                             f"({self.num_bad()} unreadable so far)\n")
            sys.stderr.flush()
        # Count and name the flagged samples from one copy of the flags: the other workers keep setting flags in the
        # shared bytes, and nonzero() on bytes that change while it runs writes past its output (heap corruption).
        flags = self.bad.clone()
        bad, limit = int(flags.sum()), self.spec['max_bad_fraction']
        if bad > limit * len(self):
            examples = ', '.join(str(self.samples[i][0]) for i in flags.nonzero().flatten()[:3].tolist())
            raise TooManyUnreadable(f"{self.spec['root']}: {bad} of {len(self)} samples ({bad / len(self):.2%}) "
                                    f"cannot be read, more than max_bad_fraction={limit:.2%}, e.g. {examples}: "
                                    f"stopping rather than training on a shrinking dataset (repair or re-download "
                                    f"these files)")

    def augmented(self, x, label):
        """The training sample(s) of a loaded image (3, H, W) or clip (T, 3, H, W): one (x, label), or with
        repeated_aug = R > 1 (MultiTrain's repeated augmentation) a list of R of them, each drawn anew from the
        RNG that _item seeded with the sample's seed. Clips come out (3, T, S, S)."""
        outputs = []
        for _ in range(self.spec['repeated_aug']):
            out = self.train_transform(x)
            outputs.append((out.permute(1, 0, 2, 3) if self.is_video else out, label))
        return outputs[0] if len(outputs) == 1 else outputs


class ImageDataset(_Samples):
    """Images, (3, S, S) in training and (V, 3, S, S) views in evaluation."""
    is_video = False

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        self.train_transform = augment.train_transform(spec, cfg.img_size, self.normalise, video=False)

    def _item(self, index, seed):
        path, label = self.samples[index]
        image = self.load(path)  # (3, H, W) uint8
        if self.train:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self.augmented(image, label)  # (3, S, S)
        image = TF.resize(image, self.cfg.img_size, antialias=True)  # short side = S
        views = spatial_crops(image, self.cfg.img_size, self.views[1])  # (V, 3, S, S)
        return self.normalise(views), label

    def load(self, path):
        return read_image(path)


class CifarDataset(ImageDataset):
    """CIFAR-100: a sample's 'path' is its row in the split's pickle, which each process reads once."""

    def load(self, index):
        return readers.read_cifar_image(readers.cifar_file(self.spec['root'], 'train' if self.train else 'val'),
                                        index)


class VideoDataset(_Samples):
    """Video clips in the torchvision layout, (3, T, S, S) in training and (V, 3, T, S, S) views in evaluation.
    A sample (path, label, (t0, t1)) is a time segment of its video (ActivityNet): clips are taken inside it."""
    is_video = True

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        # the same random choices for every frame: the transforms draw once per (T, 3, H, W) clip
        self.train_transform = augment.train_transform(spec, cfg.img_size, self.normalise, video=True)

    def read(self, path, segment, u):
        """Clips (K, T, 3, H, W) at positions u (K, T), decoded or from the video's frame folder."""
        if self.spec['frames']:
            return read_frame_clips(frame_folder(self.spec['root'], path), self.spec, u, segment)
        return read_clips(path, self.spec, u, segment)

    def _item(self, index, seed):
        path, label, *segment = self.samples[index]
        segment = segment[0] if segment else None
        T, S = self.spec['num_frames'], self.cfg.img_size
        if self.train:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                clip = self.read(path, segment, train_positions(self.spec['sampler'], T))[0]  # (T, 3, H, W)
                return self.augmented(clip, label)                                           # (3, T, S, S)
        u = eval_positions(self.spec['sampler'], self.views[0], T)         # (K, T)
        clips = self.read(path, segment, u)                                # (K, T, 3, H, W)
        clips = TF.resize(clips, S, antialias=True)                        # (K, T, 3, H', W'), short side S
        views = spatial_crops(clips, S, self.views[1])                     # (N, K, T, 3, S, S)
        views = views.transpose(0, 1).flatten(0, 1)                       # (K*N, T, 3, S, S), clip-major
        return self.normalise(views).permute(0, 2, 1, 3, 4), label        # (V, 3, T, S, S)


def file_views(path, is_video, spec, cfg):
    """The evaluation views of one file outside any dataset (predict.py), made exactly as a dataset with settings
    spec makes its samples' in evaluation: (V, 3, S, S) for an image, (V, 3, T, S, S) for a video (spec's clip
    sampler and num_frames). Raises UnreadableSample when the file cannot be read."""
    kind = 'video' if is_video else 'image'
    dataset = DATASETS[kind]([(path, 0)], [], False, {**spec, 'frames': False}, cfg)  # the file itself, decoded
    views, _ = dataset._item(0, 0)  # evaluation views use no randomness: any sample seed
    return views


# -----------------------------------------------------------------------------
# loaders (their samplers are in sampling.py)


class MixedDataset(Dataset):
    """Datasets whose samples have the same shape, concatenated (MultiTrain's mixed batches). An item
    (index, seed) of the concatenation gives (x, y, dataset id), the id being the position in `datasets`."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])  # (K+1,): where each dataset starts

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, item):
        index, seed = item
        k = int(np.searchsorted(self.offsets, index, side='right')) - 1
        item = self.datasets[k][(index - int(self.offsets[k]), seed)]
        return [(x, y, k) for x, y in item] if isinstance(item, list) else (*item, k)  # a list: repeated_aug



# Where each format's real dataset comes from: the README section that says how to get it and lay it out.
WHERE = {
    'tinyimagenet': 'Tiny-ImageNet-200', 'ucf101': 'UCF101', 'cifar100': 'CIFAR-100', 'imagefolder': 'ImageNet',
    'hmdb51': 'HMDB51', 'kinetics': 'Kinetics-400/600/700', 'minikinetics': 'Mini-Kinetics-200',
    'ssv2': 'Something-Something v2', 'moments': 'Moments in Time', 'activitynet': 'ActivityNet v1.3',
    'list': 'a dataset given as lists of files',
}


def missing_roots_message(cfg, argv):
    """None when every dataset of cfg has its root (or writes a synthetic copy there); else the one message that
    lists every missing root, where to get each dataset, and the smoke command that runs without them."""
    missing = [(name, spec) for name, spec in cfg.datasets.items()
               if not spec.get('synthetic') and not os.path.isdir(spec.get('root') or '')]
    if not missing:
        return None
    lines = [f"{len(missing)} of {len(cfg.datasets)} dataset roots are missing, so nothing was started:"]
    for name, spec in missing:
        fmt = spec.get('format')
        lines.append(f"  {name}: {spec.get('root')} is missing: {WHERE.get(fmt, fmt)} (format {fmt!r}), see "
                     f"README.md#real-data for where to get it and the layout it needs")
    lines += ["Put the datasets there (or point each dataset's 'root' at its copy), or first check that this set-up "
              "runs end to end, on small synthetic copies of its datasets, with:",
              f"  python -m tools.smoke {' '.join(argv)}"]
    return '\n'.join(lines)


# the Dataset class of each kind of sample (config.FORMATS)
DATASETS = {'image': ImageDataset, 'cifar': CifarDataset, 'video': VideoDataset}


def _ensure_synthetic(spec, rank, timeout=1800):
    """Rank 0 writes the synthetic dataset if its root is missing, into a temporary folder renamed to root at
    the end, so that root appears complete or not at all (root is the marker). Other ranks wait at a
    barrier when torch.distributed is initialised, else until root appears."""
    root = Path(spec['root'])
    if rank == 0 and not root.exists():
        partial = root.with_name(root.name + '.partial')
        shutil.rmtree(partial, ignore_errors=True)
        print(f"writing a synthetic {spec['format']} dataset to {root}")
        options = spec['synthetic'] if isinstance(spec['synthetic'], dict) else {}  # e.g. dict(train_per_class=30)
        from tools import synthetic  # the test-data writers: needed only here, by the demo and the tests
        synthetic.WRITERS[spec['format']](partial, **options)
        os.replace(partial, root)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    deadline = time.time() + timeout
    while not root.exists():
        if time.time() > deadline:
            raise TimeoutError(f"rank {rank}: waited {timeout} s for rank 0 to write {root}")
        time.sleep(1)


def _dataset(spec, split, cfg, rank=0, train=None):
    """The Dataset of one split of one dataset (a synthetic copy is written first when asked for), with the
    training transform if train (by default: for the train split), else the evaluation views."""
    if spec['synthetic']:
        _ensure_synthetic(spec, rank)
    # what a reader prints (clips missing on disk, the CSV it read) is the same on every rank: rank 0 says it
    with contextlib.redirect_stdout(io.StringIO()) if rank else contextlib.nullcontext():
        samples, classes = readers.FORMATS[spec['format']](spec, split)  # the reader checks the split
    kind = config.FORMATS[spec['format']]
    if kind == 'list':  # images or videos, as the listed files' suffixes say
        kind = readers.list_kind(samples)
    return DATASETS[kind](samples, classes, split == 'train' if train is None else train, spec, cfg)


def _loader(dataset, sampler, cfg, where, train=True):
    if train and len(sampler) == 0:  # an evaluation shard may be empty (fewer samples than ranks)
        raise ValueError(f"{where}: {len(dataset)} training samples cannot fill one global batch of "
                         f"{sampler.batch_size} x {sampler.world} ranks x {cfg.grad_accum} micro-batches")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate,
                      pin_memory=torch.cuda.is_available() and cfg.device != 'cpu',
                      persistent_workers=cfg.num_workers > 0,
                      generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG: see train.py


def make_loader(spec, split, cfg, rank=0, world=1, train=None):
    """A DataLoader of (x, y) for rank `rank` of `world`. Training (the train split, unless train=False):
    shuffled, drop_last, augmented, x (B, 3, H, W) for images or (B, 3, T, H, W) for videos. Evaluation (the
    val split, or any split with train=False): in order, sharded rank::world, x (B, V, 3, H, W) or
    (B, V, 3, T, H, W) with V views (temporal clips x spatial crops). y is long (B,)."""
    train = split == 'train' if train is None else train
    dataset = _dataset(spec, split, cfg, rank, train)
    sampler = ShardedBatchSampler(len(dataset), spec['batch_size'], rank, world, cfg.seed, shuffle=train,
                                  drop_last=train, accum=cfg.grad_accum if train else 1)
    return _loader(dataset, sampler, cfg, spec['root'], train)


def make_train_loaders(specs, cfg, rank=0, world=1):
    """
    The training loaders of a run: {key: (names, loader)}, names being the datasets whose samples the loader's
    batches hold. With sampling='mixed' or 'proportional', datasets whose samples have the same shape (all images;
    videos of the same num_frames) share one loader over their concatenation, batches (x, y, ds) with ds (B,) the
    position of each sample's dataset in names. A round takes one batch of every loader (sampling.rounds):
      'mixed' (MultiTrain): batches of the sum of the group's batch sizes, drawn uniformly from the group's samples;
      'proportional' (CoVeR): every step holds the sum of ALL batch sizes, every dataset in it, in proportion to
        its size (sampling.ProportionalBatchSampler), images in the same step as videos.
    Otherwise each dataset has a loader of its own, batches (x, y).
    """
    if cfg.sampling not in ('mixed', 'proportional'):
        return {name: ((name,), make_loader(spec, 'train', cfg, rank, world)) for name, spec in specs.items()}
    groups = {}  # sample shape -> [(position in specs, name, dataset)]
    sizes = []   # every dataset's size
    for k, (name, spec) in enumerate(specs.items()):
        dataset = _dataset(spec, 'train', cfg, rank)
        groups.setdefault(spec['num_frames'] if dataset.is_video else 'image', []).append((k, name, dataset))
        sizes.append(len(dataset))
    loaders = {}
    for members in groups.values():
        names = tuple(name for _, name, _ in members)
        mixed = MixedDataset(dataset for *_, dataset in members)
        if cfg.sampling == 'proportional':
            sampler = ProportionalBatchSampler(sizes, [k for k, *_ in members], mixed.offsets[:-1].tolist(),
                                               sum(spec['batch_size'] for spec in specs.values()), rank, world,
                                               cfg.seed, cfg.grad_accum)
        else:
            sampler = ShardedBatchSampler(len(mixed), sum(specs[name]['batch_size'] for name in names), rank, world,
                                          cfg.seed, accum=cfg.grad_accum)
        loaders['+'.join(names)] = (names, _loader(mixed, sampler, cfg, ' + '.join(names)))
    return loaders


def sample_shares(loaders):
    """{dataset: (its share of the samples of a step, its share of the training data)} with 'proportional'."""
    samplers = [(names, loader.batch_sampler) for names, loader in loaders.values()]
    return {name: sampler.shares()[k] for names, sampler in samplers for name, k in zip(names, sampler.members)}

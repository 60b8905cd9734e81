"""
Data: the readers of the real datasets' on-disk layouts, transforms, datasets, and the loaders that take batches
from several datasets in turn. (Reading pixels from files is in decode.py; fake datasets in these layouts, written
so that all of this runs without the real downloads, are in synthetic.py.)

One small reader per on-disk format (images: Tiny-ImageNet-200, CIFAR-100, an ImageNet-style class-folder tree;
videos: UCF101, HMDB51, Kinetics, mini-Kinetics, Something-Something v2, Moments in Time, ActivityNet v1.3) turns
a dataset root into `samples`, a list of (path, label) or, for ActivityNet's annotated segments,
(path, label, (t0, t1)), and `classes`, a list of human-readable names. Any video dataset can also be read from
folders of extracted frames instead of the videos (spec frames=True, see decode.frame_folder).

Sampling is deterministic so that later multi-GPU runs equal single-GPU runs and resumes are exact:
ShardedBatchSampler yields (index, sample_seed) pairs, with sample_seed a function of (seed, epoch, index)
only, and a dataset draws ALL the randomness of a sample (clip start, crop, flip, resize) from its seed. A
sample is therefore the same whichever worker process or GPU rank loads it.

Bad input policy. An annotation or split file with a malformed line, an unknown class or a label out of
range raises ValueError "<file>:<line>: <what is wrong>: <the line>" when the loader is built, before any
training. A sample that cannot be read (missing or empty file, truncated or undecodable video, a video
without a video stream, a broken image; grayscale, palette, CMYK and alpha images are fine, they become RGB)
must not stop a run of days over one file among a million: the dataset replaces it by another of its
samples, chosen from (index, sample seed) alone so that the batch is the same whichever worker loads it,
prints one warning naming the file, and flags it in `dataset.bad`, a uint8 tensor in shared memory that the
DataLoader's workers and the main process all see (`dataset.num_bad()` counts the flags; train.py reports
them). When more than spec['max_bad_fraction'] (1 %) of a dataset turns out unreadable, the run stops with
a RuntimeError naming the root, the count and a few files: training on a quietly shrinking dataset would
change the results. Kinetics, mini-Kinetics and ActivityNet, whose real downloads always miss videos taken
off YouTube, skip annotations without a video on disk when they are read and print how many they skipped.
"""

import csv
import difflib
import functools
import json
import math
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

import synthetic
from decode import (SAMPLERS, UnreadableSample, eval_positions, frame_folder, read_clips, read_frame_clips,
                    read_image, train_positions)

DATASET_DEFAULTS = dict(
    format=None,            # on-disk layout, a key of FORMATS
    root=None,              # dataset root directory
    synthetic=False,        # write a synthetic copy at root first if root does not exist (a dict: the writer's options)
    fold=1,                 # official split number (UCF101, HMDB51: 1, 2 or 3)
    batch_size=32,          # per rank
    num_frames=8,           # frames per video clip
    sampler='window',       # how a clip's frames are picked (see decode.clip_indices): 'window' (IV-ViT: num_frames
                            # over clip_seconds), 'stride' (MViT, MultiTrain: every frame_stride-th frame at
                            # 30 fps), 'segments' (CoVeR, SSv2: one frame in each of num_frames parts of the video)
    clip_seconds=2.67,      # 'window': the clip's duration in seconds, whatever the video's fps
    frame_stride=4,         # 'stride': frames between two samples, counted at 30 fps (MViT's 16x4, 32x3)
    crop_scale=(0.08, 1.0), # images: area range of the random resized crop
    short_side=(1.0, 1.43), # videos: random short side range, in units of img_size (IV-ViT: 224..320)
    flip=True,              # random horizontal flip (off for direction-sensitive classes)
    color_jitter=0.0,       # strength of the random colour distortion in training (0 = off, at most 1)
    max_bad_fraction=0.01,  # stop when more than this fraction of the samples cannot be read
    frames=False,           # read videos from folders of extracted frames (see decode.frame_folder), not by decoding
    flat=False,             # Kinetics: clips directly in {train,val}/, not in {train,val}/<label>/
    frames_fps=None,        # frames=True: the rate at which the frames were extracted (a folder has none)
    clip_len=None,          # ActivityNet: the annotated segments are cut into clips of at most clip_len seconds,
                            # each one sample (None: 10, as MultiTrain cuts them; see read_activitynet)
)
ACTIVITYNET_CLIP_LEN = 10.0  # MultiTrain: "We cut the annotated segments of the videos into 10-second long clips"

# -----------------------------------------------------------------------------
# annotation files


def _lines(path):
    """(line number, line) for the non-blank lines of a text file; CRLF line endings are fine."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} is missing (is the dataset root complete?)")
    lines = path.read_text(encoding='utf-8').splitlines()  # splitlines drops '\n', '\r\n' and '\r'
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]


def _bad_line(path, n, what, line):
    return ValueError(f"{path}:{n}: {what}: {line!r}")


def _check_root(root, fmt):
    """The root as a Path; a missing root names itself and how to write a synthetic copy there."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist: download the real {fmt} there, "
                                f"or write a synthetic copy with `python synthetic.py {fmt} {root}`")
    return root


def _check_split(split):
    if split not in ('train', 'val'):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")


def read_tinyimagenet(root, split):
    """
    Tiny-ImageNet-200 layout (tab-separated text files):
        wnids.txt                                   one WordNet id per line; its line order gives the label
        words.txt                                   'wnid<TAB>name, synonym, ...' (all of WordNet: 82k lines)
        train/<wnid>/images/<wnid>_<n>.JPEG         (the boxes files next to them are not needed here)
        val/images/val_<n>.JPEG, val/val_annotations.txt  'val_0.JPEG<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1'
    Returns (samples, classes); a class is named by the first term of its words.txt entry, else its wnid.
    """
    _check_split(split)
    root = _check_root(root, 'tinyimagenet')
    wnids = []
    for n, line in _lines(root / 'wnids.txt'):
        if len(line.split()) != 1 or line in wnids:
            raise _bad_line(root / 'wnids.txt', n, 'expected one new wnid per line', line)
        wnids.append(line)
    label_of = {wnid: label for label, wnid in enumerate(wnids)}

    names = {}
    for n, line in _lines(root / 'words.txt'):
        fields = line.split('\t')
        if len(fields) != 2:
            raise _bad_line(root / 'words.txt', n, 'expected "wnid<TAB>names"', line)
        if fields[0] in label_of:
            names[fields[0]] = fields[1].split(',')[0].strip()
    classes = [names.get(wnid) or wnid for wnid in wnids]

    if split == 'train':
        samples = []
        for wnid, label in label_of.items():
            folder = root / 'train' / wnid / 'images'
            files = sorted(folder.glob('*.JPEG')) if folder.is_dir() else []
            if not files:
                raise FileNotFoundError(f"no .JPEG images in {folder} (class {wnid} of {root / 'wnids.txt'})")
            samples += [(str(f), label) for f in files]
        return samples, classes

    path = root / 'val' / 'val_annotations.txt'
    samples = []
    for n, line in _lines(path):
        fields = line.split('\t')
        if len(fields) != 6 or not all(f.lstrip('-').isdigit() for f in fields[2:]):
            raise _bad_line(path, n, 'expected "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1"', line)
        if fields[1] not in label_of:
            raise _bad_line(path, n, f'wnid {fields[1]} is not in wnids.txt', line)
        samples.append((str(root / 'val' / 'images' / fields[0]), label_of[fields[1]]))
    return samples, classes


def read_ucf101(root, split, fold=1):
    """
    UCF101 layout, as extracted from UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip:
        UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
        ucfTrainTestlist/classInd.txt               '1 ApplyEyeMakeup' (1-based, space-separated)
        ucfTrainTestlist/trainlist0{1,2,3}.txt      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'
        ucfTrainTestlist/testlist0{1,2,3}.txt       path only; 'val' means this official test list
    The class of a video is its folder (one real folder, HandstandPushups, holds v_HandStandPushups_*).
    Returns (samples, classes) with 0-based labels.
    """
    _check_split(split)
    root = _check_root(root, 'ucf101')
    if fold not in (1, 2, 3):
        raise ValueError(f"UCF101 has official splits 1, 2, 3; got fold={fold!r}")
    lists = root / 'ucfTrainTestlist'
    classes = []
    for n, line in _lines(lists / 'classInd.txt'):
        fields = line.split()
        if len(fields) != 2 or fields[0] != str(len(classes) + 1):
            raise _bad_line(lists / 'classInd.txt', n, f'expected "{len(classes) + 1} ClassName"', line)
        classes.append(fields[1])
    label_of = {name: label for label, name in enumerate(classes)}

    path = lists / f"{'trainlist' if split == 'train' else 'testlist'}0{fold}.txt"
    fields_per_line = 2 if split == 'train' else 1  # train lines carry the 1-based label, test lines do not
    samples = []
    for n, line in _lines(path):
        fields = line.split()
        parts = fields[0].split('/')
        if len(fields) != fields_per_line or len(parts) != 2:
            form = '"Class/video.avi label"' if split == 'train' else '"Class/video.avi"'
            raise _bad_line(path, n, f'expected {form}', line)
        if parts[0] not in label_of:
            raise _bad_line(path, n, f'class {parts[0]} is not in classInd.txt', line)
        label = label_of[parts[0]]
        if split == 'train':
            if not fields[1].isdigit() or not 1 <= int(fields[1]) <= len(classes):
                raise _bad_line(path, n, f'label out of range 1..{len(classes)}', line)
            if int(fields[1]) != label + 1:
                raise _bad_line(path, n, f'label {fields[1]} is not that of class {parts[0]} ({label + 1})', line)
        samples.append((str(root / 'UCF-101' / fields[0]), label))
    return samples, classes


IMAGE_SUFFIXES = ('.jpeg', '.jpg', '.png')  # compared lower-cased: ImageNet's .JPEG counts


def read_imagefolder(root, split):
    """
    ImageNet-style class-folder tree: <root>/{train,val}/<class>/*.{JPEG,jpg,png} (case-insensitive suffix).
    The classes are the sorted folder names of train/, so that both splits share one label map; a val
    folder that is not a training class is an error.
    """
    _check_split(split)
    root = _check_root(root, 'imagefolder')
    if not (root / 'train').is_dir():
        raise FileNotFoundError(f"{root / 'train'} is missing: the classes are the folders of the train split")
    classes = sorted(d.name for d in (root / 'train').iterdir() if d.is_dir())
    label_of = {name: label for label, name in enumerate(classes)}
    samples = []
    for folder in sorted(d for d in (root / split).iterdir() if d.is_dir()):
        if folder.name not in label_of:
            raise ValueError(f"{folder}: class {folder.name!r} has no folder in {root / 'train'}")
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no .JPEG, .jpg or .png images in {folder}")
        samples += [(str(f), label_of[folder.name]) for f in files]
    return samples, classes



def _cifar_file(root, split):
    return Path(root) / 'cifar-100-python' / ('train' if split == 'train' else 'test')


@functools.lru_cache(maxsize=4)
def _cifar_arrays(path):
    """
    One CIFAR-100 pickle as (images uint8 (N, 3, 32, 32), fine labels list), read once per process: the
    reader and every sample of a loader share it. The files were pickled by Python 2, hence encoding='bytes'
    (keys and strings come back as bytes). Pickles can run code: read only the official files or ours.
    """
    with open(path, 'rb') as f:
        batch = pickle.load(f, encoding='bytes')
    rows, labels = np.asarray(batch.get(b'data')), batch.get(b'fine_labels')
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be N x 3072 uint8, got {rows.shape} {rows.dtype}")
    if labels is None or len(labels) != len(rows):
        raise ValueError(f"{path}: b'fine_labels' must hold one label per row of b'data' ({len(rows)})")
    # each row is channel-major: 1024 red values, then 1024 green, then 1024 blue, each plane row by row
    return torch.from_numpy(rows).view(-1, 3, 32, 32), list(labels)  # (N, 3, 32, 32)


def read_cifar_image(path, index):
    """Image `index` of a CIFAR-100 pickle as uint8 (3, 32, 32)."""
    return _cifar_arrays(str(path))[0][index]


def read_cifar100(root, split):
    """
    CIFAR-100 'python version', as extracted from cifar-100-python.tar.gz into root:
        cifar-100-python/train, test      pickled dicts: b'data' N x 3072 uint8 channel-major, b'fine_labels',
                                          b'coarse_labels', b'filenames'; 'val' means the official test set
        cifar-100-python/meta             b'fine_label_names' (and b'coarse_label_names')
    The images live in memory, so a sample is (row index into the split's array, fine label); CifarDataset
    turns the index back into an image.
    """
    _check_split(split)
    root = _check_root(root, 'cifar100')
    meta = root / 'cifar-100-python' / 'meta'
    with open(meta, 'rb') as f:
        names = pickle.load(f, encoding='bytes').get(b'fine_label_names')
    if not names:
        raise ValueError(f"{meta}: no b'fine_label_names'")
    classes = [n.decode() if isinstance(n, bytes) else n for n in names]
    path = _cifar_file(root, split)
    _, labels = _cifar_arrays(str(path))
    bad = [i for i, y in enumerate(labels) if not 0 <= y < len(classes)]
    if bad:
        raise ValueError(f"{path}: fine label {labels[bad[0]]} of row {bad[0]} is out of range "
                         f"0..{len(classes) - 1}")
    return list(enumerate(labels)), classes


def read_hmdb51(root, split, fold=1):
    """
    HMDB51 layout:
        videos/<class>/<video>.avi
        splits/<class>_test_split{1,2,3}.txt       '<video>.avi <n>': 1 train, 2 test ('val'), 0 unused
    The classes are the sorted class names of the fold's split files (names hold underscores: brush_hair).
    """
    _check_split(split)
    root = _check_root(root, 'hmdb51')
    if fold not in (1, 2, 3):
        raise ValueError(f"HMDB51 has official splits 1, 2, 3; got fold={fold!r}")
    suffix = f"_test_split{fold}.txt"
    files = sorted((root / 'splits').glob(f"*{suffix}"))
    if not files:
        raise FileNotFoundError(f"no split files *{suffix} in {root / 'splits'}")
    classes = [f.name[:-len(suffix)] for f in files]
    wanted = '1' if split == 'train' else '2'
    samples = []
    for label, (cls, path) in enumerate(zip(classes, files)):
        for n, line in _lines(path):
            fields = line.rsplit(maxsplit=1)
            if len(fields) != 2 or fields[1] not in ('0', '1', '2') or not fields[0].endswith('.avi'):
                raise _bad_line(path, n, 'expected "<video>.avi <0, 1 or 2>"', line)
            if fields[1] == wanted:
                samples.append((str(root / 'videos' / cls / fields[0]), label))
    return samples, classes


KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')


def _csv_rows(path):
    """(line number, row) of a CSV file read with the csv module (quoted fields may hold commas)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} is missing (is the dataset root complete?)")
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        return [(reader.line_num, row) for row in reader if any(field.strip() for field in row)]


def _kinetics_rows(path, keep=None):
    """(line number, label, youtube id, clip file name) of a Kinetics CSV with header label,youtube_id,...; with
    keep, a set of youtube ids, only the rows of those ids (mini-Kinetics)."""
    rows = _csv_rows(path)
    if not rows or not all(c in rows[0][1] for c in KINETICS_COLUMNS):
        raise ValueError(f"{path}:1: expected a header with columns {', '.join(KINETICS_COLUMNS)}")
    header = rows[0][1]
    columns = [header.index(c) for c in KINETICS_COLUMNS]
    out = []
    for n, row in rows[1:]:
        if len(row) != len(header):
            raise _bad_line(path, n, f'expected {len(header)} fields ({",".join(header)})', ','.join(row))
        label, youtube_id, start, end = (row[c] for c in columns)
        if not (start.isdigit() and end.isdigit()) or not label or not youtube_id:
            raise _bad_line(path, n, 'expected a label, a youtube_id and integer times', ','.join(row))
        if keep is None or youtube_id in keep:
            out.append((n, label, youtube_id, f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"))
    return out


def _listing(root, folder, frames):
    """The names in `folder` (one listing per folder, not one stat per video); with frames=True those in its
    counterpart under <root>/frames/, i.e. the videos that have a frame folder (see decode.frame_folder)."""
    if frames:
        folder = Path(root) / 'frames' / Path(folder).relative_to(root)
    return set(os.listdir(folder)) if folder.is_dir() else set()


def read_kinetics(root, split, frames=False, lists=None, flat=False):
    """
    Kinetics-400/600/700 layout (the clips as cut by the usual download scripts):
        annotations/train.csv, validate.csv       'label,youtube_id,time_start,time_end,split[,is_cc]',
                                                  labels with spaces double-quoted (read with the csv module)
        {train,val}/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4
        or, with flat=True, {train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4 (the labels from the CSV only)
    The classes are the sorted labels of train.csv. Real downloads always miss some videos (taken off
    YouTube), so a row whose clip is not on disk (with frames=True: whose frame folder is not) is skipped, and
    loudly: one line "<csv>: N of M clips missing on disk" when N > 0. lists: {'train': ids, 'val': ids} keeps
    only the rows of those youtube ids, and the classes of the kept training rows (see read_minikinetics).
    """
    _check_split(split)
    root = _check_root(root, 'minikinetics' if lists else 'kinetics')
    train_csv = root / 'annotations' / 'train.csv'
    keep = {'train': None, 'val': None} if lists is None else lists  # youtube ids to keep, None: all
    classes = sorted({row[1] for row in _kinetics_rows(train_csv, keep['train'])})
    label_of = {name: label for label, name in enumerate(classes)}
    path = train_csv if split == 'train' else root / 'annotations' / 'validate.csv'
    rows = _kinetics_rows(path, keep[split])
    if not rows:
        raise ValueError(f"{path}: no clips" + (f" of the {len(lists[split])} listed youtube ids" if lists else ''))
    on_disk = {}  # folder -> the names in it
    samples = []
    for n, label, _, name in rows:
        if label not in label_of:
            raise _bad_line(path, n, f'label {label!r} is not in {train_csv}' + (' (listed rows)' if lists else ''),
                            label)
        folder = root / split if flat else root / split / label
        if folder not in on_disk:
            on_disk[folder] = _listing(root, folder, frames)
        if (name.removesuffix('.mp4') if frames else name) in on_disk[folder]:
            samples.append((str(folder / name), label_of[label]))
    missing = len(rows) - len(samples)
    if not samples:
        example = root / split / ('' if flat else rows[0][1]) / rows[0][3]
        raise FileNotFoundError(f"{path}: none of its {len(rows)} clips is on disk, e.g. "
                                f"{frame_folder(root, example) if frames else example}")
    if missing:
        print(f"{path}: {missing} of {len(rows)} clips missing on disk")
    return samples, classes


MINI_KINETICS_LISTS = {'train': 'train_ytid_list.txt', 'val': 'val_ytid_list.txt'}


def read_minikinetics(root, split, frames=False):
    """
    Mini-Kinetics-200 (Xie et al. 2018, IV-ViT's mini-Kinetics): a Kinetics-400 layout (see read_kinetics) and
    the two lists that select the subset, as released with it, one youtube id per line:
        train_ytid_list.txt, val_ytid_list.txt    (78246 and 5000 ids: 200 classes, from train.csv, validate.csv)
    Only the listed clips are read; the classes are the sorted labels of the listed training clips.
    """
    root = _check_root(root, 'minikinetics')
    lists = {}
    for key, name in MINI_KINETICS_LISTS.items():
        lists[key] = set()
        for n, line in _lines(root / name):
            if len(line.split()) != 1:
                raise _bad_line(root / name, n, 'expected one youtube id per line', line)
            lists[key].add(line)
    return read_kinetics(root, split, frames, lists)


ACTIVITYNET_SUFFIXES = ('.mp4', '.mkv', '.webm')  # YouTube downloads come in all three


def _activitynet_database(path):
    """The checked 'database' of an ActivityNet JSON: {id: {'subset': ..., 'annotations': [{'label': str,
    'segment': [t0, t1]}, ...]}} with 0 <= t0 <= t1; a wrong entry is named by its place in the file."""
    content = _json(path)
    database = content.get('database') if isinstance(content, dict) else None
    if not isinstance(database, dict):
        raise ValueError(f"{path}: expected an object with a 'database' object of videos")
    for video, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get('annotations', []), list):
            raise ValueError(f"{path}: database/{video}: expected an object with 'subset' and 'annotations' [...]")
        for k, a in enumerate(entry.get('annotations', [])):
            segment = a.get('segment') if isinstance(a, dict) else None
            if (not isinstance(a.get('label') if isinstance(a, dict) else None, str) or not isinstance(segment, list)
                    or len(segment) != 2 or not all(isinstance(t, (int, float)) for t in segment)
                    or not 0 <= segment[0] <= segment[1]):
                raise ValueError(f"{path}: database/{video}/annotations/{k}: expected {{'label': name, 'segment': "
                                 f"[t0, t1]}} with 0 <= t0 <= t1 seconds: {a!r}")
    return database


def read_activitynet(root, split, frames=False, clip_len=ACTIVITYNET_CLIP_LEN):
    """
    ActivityNet v1.3 layout:
        activity_net.v1-3.min.json    {"version": ..., "taxonomy": [...], "database": {"<id>": {"subset":
                                      "training" | "validation" | "testing", "duration": s, "url": ...,
                                      "annotations": [{"label": "Long jump", "segment": [t0, t1]}, ...]}}}
        videos/v_<id>.mp4 or videos/<id>.mp4 (or .mkv, .webm), <id> being the youtube id
    Each annotated segment [t0, t1] is cut into ceil((t1 - t0) / clip_len) consecutive clips [t0, t0 + clip_len],
    [t0 + clip_len, t0 + 2 clip_len], ..., the last ending at t1 (so at most clip_len seconds each), and each clip
    is one sample (path, label, (start, end)), its frames taken inside it: MultiTrain (arXiv:2209.12362, section
    4.1) cuts the segments into 10-second clips, 107K for training and 16K for testing, which sets ActivityNet's
    share of a batch that mixes datasets by size (one sample per whole segment would give about 15K). The count
    is printed. 'train' is subset training, 'val' validation (testing has no labels). The classes are
    the sorted labels of the training segments. Videos missing on disk are skipped, as in read_kinetics, and so
    are segments of zero length (t0 == t1: the real v1.3 file has some, e.g. [0, 0]); both are counted and printed.
    """
    _check_split(split)
    root = _check_root(root, 'activitynet')
    path = root / 'activity_net.v1-3.min.json'
    database = _activitynet_database(path)
    classes = sorted({a['label'] for entry in database.values() if entry.get('subset') == 'training'
                      for a in entry.get('annotations', [])})
    label_of = {name: label for label, name in enumerate(classes)}
    subset = 'training' if split == 'train' else 'validation'
    videos = {video: entry['annotations'] for video, entry in database.items()
              if entry.get('subset') == subset and entry.get('annotations')}
    names = _listing(root, root / 'videos', frames)
    if frames:  # a frame folder is named as its video without the suffix
        stems = {name: name for name in names}
    else:
        stems = {os.path.splitext(n)[0]: n for n in names if os.path.splitext(n)[1] in ACTIVITYNET_SUFFIXES}
    if not clip_len or clip_len <= 0:
        raise ValueError(f"ActivityNet: clip_len must be a positive number of seconds, got {clip_len!r}")
    samples, missing, empty, segments = [], 0, [], 0
    for video, annotations in videos.items():
        name = stems.get(f"v_{video}") or stems.get(video)
        if name is None:
            missing += 1
            continue
        for k, a in enumerate(annotations):
            if a['label'] not in label_of:
                raise ValueError(f"{path}: database/{video}/annotations/{k}: label {a['label']!r} has no "
                                 f"training segment")
            if a['segment'][0] == a['segment'][1]:
                empty.append(f"database/{video}/annotations/{k}")
                continue
            t0, t1 = a['segment']
            segments += 1
            for k in range(max(1, math.ceil((t1 - t0) / clip_len - 1e-9))):  # (1e-9: 20 s is 2 clips, not 3)
                samples.append((str(root / 'videos' / name), label_of[a['label']],
                                (t0 + k * clip_len, min(t0 + (k + 1) * clip_len, t1))))
    if not samples:
        raise FileNotFoundError(f"{path}: none of its {len(videos)} {subset} videos is in {root / 'videos'}"
                                + (" (frame folders)" if frames else ''))
    if missing:
        print(f"{path}: {missing} of {len(videos)} {subset} videos missing on disk")
    if empty:
        print(f"{path}: skipped {len(empty)} {subset} segment(s) of zero length, e.g. {', '.join(empty[:3])}")
    print(f"{path}: {segments} {subset} segments cut into {len(samples)} clips of <= {clip_len:g} s")
    return samples, classes


def read_ssv2(root, split):
    """
    Something-Something v2 layout:
        labels.json                               {"Approaching something with your camera": "0", ...}
        train.json, validation.json               [{"id": "78687", "label": ..., "template": "Approaching
                                                  [something] with your camera", "placeholders": [...]}, ...]
        videos/<id>.webm                          VP9 WebM
    The class of an entry is its template with '[' and ']' removed.
    """
    _check_split(split)
    root = _check_root(root, 'ssv2')
    index = _json(root / 'labels.json')
    if not isinstance(index, dict) or sorted(map(str, index.values())) != sorted(map(str, range(len(index)))):
        raise ValueError(f"{root / 'labels.json'}: expected {{name: index}} with the indices 0..N-1 as strings")
    classes = sorted(index, key=lambda name: int(index[name]))
    path = root / ('train.json' if split == 'train' else 'validation.json')
    entries = _json(path)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON array of entries")
    samples = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'id' not in entry or 'template' not in entry:
            raise ValueError(f"{path}: entry {i}: expected an object with 'id' and 'template': {entry!r}")
        name = entry['template'].replace('[', '').replace(']', '')
        if name not in index:
            raise ValueError(f"{path}: entry {i}: class {name!r} (template {entry['template']!r}) "
                             f"is not in {root / 'labels.json'}")
        samples.append((str(root / 'videos' / f"{entry['id']}.webm"), int(index[name])))
    return samples, classes


def _json(path):
    """A JSON file; a syntax error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} is missing (is the dataset root complete?)")
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: {e.msg} (column {e.colno})") from e


def read_moments(root, split):
    """
    Moments in Time layout:
        categories.txt                            'name,index' per line, or 'name' alone (index = line order)
        trainingSet.csv, validationSet.csv        no header: 'class/file.mp4,class,...'
        training/<class>/<file>.mp4, validation/<class>/<file>.mp4
    """
    _check_split(split)
    root = _check_root(root, 'moments')
    categories = root / 'categories.txt'
    index = {}
    for order, (n, line) in enumerate(_lines(categories)):
        name, _, number = line.rpartition(',') if ',' in line else (line, '', str(order))
        if not name or not number.isdigit() or name in index or int(number) in index.values():
            raise _bad_line(categories, n, 'expected a new "name,index" or "name"', line)
        index[name] = int(number)
    if sorted(index.values()) != list(range(len(index))):
        raise ValueError(f"{categories}: the indices must be 0..{len(index) - 1}")
    classes = sorted(index, key=index.get)
    path, folder = ((root / 'trainingSet.csv', root / 'training') if split == 'train' else
                    (root / 'validationSet.csv', root / 'validation'))
    samples = []
    for n, row in _csv_rows(path):
        if len(row) < 2 or row[0].split('/')[0] != row[1]:
            raise _bad_line(path, n, 'expected "class/file.mp4,class,..."', ','.join(row))
        if row[1] not in index:
            raise _bad_line(path, n, f'class {row[1]!r} is not in {categories}', ','.join(row))
        samples.append((str(folder / row[0]), index[row[1]]))
    return samples, classes


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
    """
    n crops of size x size from x (..., H, W), one side of which already equals size: the crops slide
    along the long side (n = 3: start, centre, end, as CoVeR and SlowFast). Returns (n, ..., size, size).
    """
    tops, lefts = _offsets(x.shape[-2], size, n), _offsets(x.shape[-1], size, n)
    return torch.stack([x[..., t:t + size, l:l + size] for t, l in zip(tops, lefts)])


def _color_jitter(spec):
    """SimCLR's colour distortion at strength s = spec['color_jitter'] (0: none): brightness, contrast and
    saturation factors drawn from [1 - 0.8 s, 1 + 0.8 s], the hue turned by up to 0.2 s of a circle, in a random
    order; a clip gets one draw for all its frames."""
    s = spec['color_jitter']
    return [v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)] if s else []


MAX_TRIES = 100  # samples tried before giving up on finding a readable one (max_bad_fraction stops sooner)


class _Samples(Dataset):
    """
    What images and videos share: samples, class names, settings, the final normalisation, and the handling of
    unreadable samples (see the module docstring). Items are indexed by (index, sample_seed) pairs from
    ShardedBatchSampler; a subclass's _item(index, seed) makes one.
    """

    def __init__(self, samples, classes, train, spec, cfg):
        self.samples, self.classes, self.train, self.spec, self.cfg = samples, classes, train, spec, cfg
        self.normalise = _normalise(cfg)
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
        candidate, draws = index, None
        for _ in range(MAX_TRIES):
            if not self.bad[candidate]:
                try:
                    return self._item(candidate, seed)
                except UnreadableSample as e:
                    self._flag(candidate, e)
            if draws is None:
                draws = np.random.default_rng([seed, index])
            candidate = int(draws.integers(len(self)))
        raise RuntimeError(f"{self.spec['root']}: found no readable sample in {MAX_TRIES} tries for sample {index}")

    def _flag(self, index, error):
        """Flag sample `index` unreadable, warn once (the first process to flag it), and stop the run when more
        than max_bad_fraction of the dataset is unreadable."""
        if not self.bad[index]:
            self.bad[index] = 1
            print(f"warning: {error}; another sample of {self.spec['root']} replaces it "
                  f"({self.num_bad()} unreadable so far)", file=sys.stderr, flush=True)
        bad, limit = self.num_bad(), self.spec['max_bad_fraction']
        if bad > limit * len(self):
            examples = ', '.join(str(self.samples[i][0]) for i in self.bad.nonzero().flatten()[:3].tolist())
            raise RuntimeError(f"{self.spec['root']}: {bad} of {len(self)} samples ({bad / len(self):.2%}) cannot "
                               f"be read, more than max_bad_fraction={limit:.2%}, e.g. {examples}: stopping rather "
                               f"than training on a shrinking dataset (repair or re-download these files)")


class ImageDataset(_Samples):
    """Images, (3, S, S) in training and (V, 3, S, S) views in evaluation."""
    is_video = False

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        self.train_transform = v2.Compose([
            v2.RandomResizedCrop(cfg.img_size, scale=spec['crop_scale'], ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0),
            *_color_jitter(spec),
            self.normalise,
        ])

    def _item(self, index, seed):
        path, label = self.samples[index]
        image = self.load(path)  # (3, H, W) uint8
        if self.train:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self.train_transform(image), label  # (3, S, S)
        image = TF.resize(image, self.cfg.img_size, antialias=True)  # short side = S
        views = spatial_crops(image, self.cfg.img_size, self.cfg.num_spatial_crops)  # (V, 3, S, S)
        return self.normalise(views), label

    def load(self, path):
        return read_image(path)


class CifarDataset(ImageDataset):
    """CIFAR-100: a sample's 'path' is its row in the split's pickle, which each process reads once."""

    def load(self, index):
        return read_cifar_image(_cifar_file(self.spec['root'], 'train' if self.train else 'val'), index)


class VideoDataset(_Samples):
    """
    Video clips in the torchvision layout, (3, T, S, S) in training and (V, 3, T, S, S) views in evaluation.
    A sample (path, label, (t0, t1)) is a time segment of its video (ActivityNet): clips are taken inside it.
    """
    is_video = True

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        low, high = spec['short_side']
        # the same resize, crop, flip and colours for every frame: v2 transforms draw once per (T, 3, H, W) clip
        self.train_transform = v2.Compose([
            v2.RandomResize(round(low * cfg.img_size), round(high * cfg.img_size) + 1, antialias=True),
            v2.RandomCrop(cfg.img_size),
            v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0),
            *_color_jitter(spec),
            self.normalise,
        ])

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
                return self.train_transform(clip).permute(1, 0, 2, 3), label                 # (3, T, S, S)
        u = eval_positions(self.spec['sampler'], self.cfg.num_temporal_clips, T)  # (K, T)
        clips = self.read(path, segment, u)                                # (K, T, 3, H, W)
        clips = TF.resize(clips, S, antialias=True)                        # (K, T, 3, H', W'), short side S
        views = spatial_crops(clips, S, self.cfg.num_spatial_crops)        # (N, K, T, 3, S, S)
        views = views.transpose(0, 1).flatten(0, 1)                       # (K*N, T, 3, S, S), clip-major
        return self.normalise(views).permute(0, 2, 1, 3, 4), label        # (V, 3, T, S, S)


# -----------------------------------------------------------------------------
# sampling and loaders


def sample_seed(*numbers):
    """A well-mixed 64-bit seed from non-negative integers, e.g. (seed, epoch, index)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint64)[0])


class ShardedBatchSampler(Sampler):
    """
    Batches of (index, sample_seed) pairs for rank `rank` of `world` processes.
    drop_last=True (training): each epoch, a permutation (shuffle) or the plain order is cut into global
        batches of batch_size * world and rank r takes the r-th contiguous chunk of each, so 1 process with
        batch 2b sees exactly the samples (and seeds) of 2 processes with batch b. The ragged end is dropped in
        whole optimizer steps of `accum` batches, so that accum micro-batches of b split the same global batches
        as one batch of accum * b, epoch after epoch (gradient accumulation is then equivalent).
    drop_last=False (evaluation): rank r takes samples r, r + world, ..., in batches; the last may be short.
        The shards are disjoint and cover the split, so correct counts summed over ranks are exact.
    """

    def __init__(self, n, batch_size, rank=0, world=1, seed=0, shuffle=True, drop_last=True, accum=1):
        self.n, self.batch_size, self.rank, self.world, self.accum = n, batch_size, rank, world, accum
        self.seed, self.shuffle, self.drop_last, self.epoch, self.start = seed, shuffle, drop_last, 0, 0

    def set_epoch(self, epoch, start=0):
        """The epoch to draw (its shuffle), and how many of its batches to skip: a resumed run starts mid-epoch."""
        self.epoch, self.start = epoch, start

    def _order(self):
        if not self.shuffle:
            return torch.arange(self.n)
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch))
        return torch.randperm(self.n, generator=generator)

    def _shard(self):
        """The indices of this rank, in the order they are batched."""
        order = self._order()
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
        x, y = self.datasets[k][(index - int(self.offsets[k]), seed)]
        return x, y, k


# One entry per on-disk format: (kind of sample, reader(spec, split), writer of a synthetic copy).
# The kind picks the dataset class: 'cifar' samples are rows of an in-memory array, not files.
# each on-disk layout: the kind of dataset it holds and its reader (synthetic.WRITERS writes a fake one)
FORMATS = {
    'tinyimagenet': ('image', lambda spec, split: read_tinyimagenet(spec['root'], split)),
    'ucf101': ('video', lambda spec, split: read_ucf101(spec['root'], split, spec['fold'])),
    'imagefolder': ('image', lambda spec, split: read_imagefolder(spec['root'], split)),
    'cifar100': ('cifar', lambda spec, split: read_cifar100(spec['root'], split)),
    'hmdb51': ('video', lambda spec, split: read_hmdb51(spec['root'], split, spec['fold'])),
    'kinetics': ('video', lambda spec, split: read_kinetics(spec['root'], split, spec['frames'],
                                                             flat=spec['flat'])),
    'minikinetics': ('video', lambda spec, split: read_minikinetics(spec['root'], split, spec['frames'])),
    'ssv2': ('video', lambda spec, split: read_ssv2(spec['root'], split)),
    'moments': ('video', lambda spec, split: read_moments(spec['root'], split)),
    'activitynet': ('video', lambda spec, split: read_activitynet(
        spec['root'], split, spec['frames'], spec['clip_len'] or ACTIVITYNET_CLIP_LEN)),
}
DATASETS = {'image': ImageDataset, 'cifar': CifarDataset, 'video': VideoDataset}


def dataset_spec(name, spec):
    """DATASET_DEFAULTS updated with spec (one dataset of a config), checked early with clear errors."""
    for key in spec:
        if key not in DATASET_DEFAULTS:
            close = difflib.get_close_matches(key, DATASET_DEFAULTS)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ''
            raise ValueError(f"dataset {name!r}: unknown key {key!r}{hint} (known: {', '.join(DATASET_DEFAULTS)})")
    spec = {**DATASET_DEFAULTS, **spec}
    if spec['format'] not in FORMATS:
        raise ValueError(f"dataset {name!r}: unknown format {spec['format']!r} (known: {', '.join(FORMATS)})")
    if spec['root'] is None:
        raise ValueError(f"dataset {name!r}: 'root' is required")
    if spec['sampler'] not in SAMPLERS:
        raise ValueError(f"dataset {name!r}: sampler must be one of {', '.join(SAMPLERS)}, got {spec['sampler']!r}")
    if spec['frames'] and (FORMATS[spec['format']][0] != 'video' or not spec['frames_fps']):
        raise ValueError(f"dataset {name!r}: frames=True needs a video format and frames_fps, the rate at which "
                         f"the frames were extracted (got format {spec['format']!r}, frames_fps "
                         f"{spec['frames_fps']!r})")
    for key in ('color_jitter', 'max_bad_fraction'):
        if not 0 <= spec[key] <= 1:
            raise ValueError(f"dataset {name!r}: {key} must be in [0, 1], got {spec[key]!r}")
    return spec


def _ensure_synthetic(spec, rank, timeout=1800):
    """
    Rank 0 writes the synthetic dataset if its root is missing, into a temporary folder renamed to root at
    the end, so that root appears complete or not at all (root is the marker). Other ranks wait at a
    barrier when torch.distributed is initialised, else until root appears.
    """
    root = Path(spec['root'])
    if rank == 0 and not root.exists():
        partial = root.with_name(root.name + '.partial')
        shutil.rmtree(partial, ignore_errors=True)
        print(f"writing a synthetic {spec['format']} dataset to {root}")
        options = spec['synthetic'] if isinstance(spec['synthetic'], dict) else {}  # e.g. dict(train_per_class=30)
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
    _check_split(split)
    if spec['synthetic']:
        _ensure_synthetic(spec, rank)
    kind, read = FORMATS[spec['format']]
    samples, classes = read(spec, split)
    return DATASETS[kind](samples, classes, split == 'train' if train is None else train, spec, cfg)


def _loader(dataset, batch_size, train, cfg, rank, world, where):
    sampler = ShardedBatchSampler(len(dataset), batch_size, rank, world, cfg.seed, shuffle=train, drop_last=train,
                                  accum=cfg.grad_accum if train else 1)
    if train and len(sampler) == 0:
        raise ValueError(f"{where}: {len(dataset)} training samples cannot fill one global batch of {batch_size} x "
                         f"{world} ranks x {cfg.grad_accum} micro-batches")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                      pin_memory=torch.cuda.is_available() and cfg.device != 'cpu',
                      persistent_workers=cfg.num_workers > 0,
                      generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG: see train.py


def make_loader(spec, split, cfg, rank=0, world=1, train=None):
    """
    A DataLoader of (x, y) for rank `rank` of `world`. Training (the train split, unless train=False):
    shuffled, drop_last, augmented, x (B, 3, H, W) for images or (B, 3, T, H, W) for videos. Evaluation (the
    val split, or any split with train=False): in order, sharded rank::world, x (B, V, 3, H, W) or
    (B, V, 3, T, H, W) with V views (temporal clips x spatial crops). y is long (B,).
    """
    train = split == 'train' if train is None else train
    dataset = _dataset(spec, split, cfg, rank, train)
    return _loader(dataset, spec['batch_size'], train, cfg, rank, world, spec['root'])


def split_batch(total, sizes):
    """`total` samples split over groups in proportion to their sizes: each group gets the floor of its exact share,
    at least 1, and the samples left go to the largest remainders (ties to the first). [8, 8] for (16, [1.2M, 1.28M])."""
    if total < len(sizes):
        raise ValueError(f"a batch of {total} cannot hold one sample of each of {len(sizes)} sample shapes")
    exact = [total * n / sum(sizes) for n in sizes]
    out = [max(1, int(e)) for e in exact]
    while sum(out) < total:  # the largest remainders first
        out[max(range(len(out)), key=lambda g: (exact[g] - out[g], -g))] += 1
    while sum(out) > total:  # the minimum of 1 took too many: take back from the most over-served group
        out[min((g for g in range(len(out)) if out[g] > 1), key=lambda g: (exact[g] - out[g], g))] -= 1
    return out


def make_train_loaders(specs, cfg, rank=0, world=1):
    """
    The training loaders of a run: {key: (names, loader)}, names being the datasets whose samples the loader's
    batches hold. With sampling='mixed' or 'proportional', datasets whose samples have the same shape (all images;
    videos of the same num_frames) share one loader over their concatenation, whose batches are drawn uniformly
    over all their samples, i.e. each dataset in proportion to its size; they are (x, y, ds) with ds (B,) the
    position of each sample's dataset in names. A group's batch size is
      'mixed' (MultiTrain): the sum of its datasets' batch sizes;
      'proportional' (CoVeR): its share, by size, of the sum of ALL datasets' batch sizes (split_batch). One round
        takes one batch of every group, so that every step sees images and videos together and every dataset's
        share of the step's samples is its share of the data (up to rounding the group batches to integers).
    Otherwise each dataset has a loader of its own, batches (x, y).
    """
    if cfg.sampling not in ('mixed', 'proportional'):
        return {name: ((name,), make_loader(spec, 'train', cfg, rank, world)) for name, spec in specs.items()}
    groups = {}  # sample shape -> [(name, dataset)]
    for name, spec in specs.items():
        dataset = _dataset(spec, 'train', cfg, rank)
        groups.setdefault(spec['num_frames'] if dataset.is_video else 'image', []).append((name, dataset))
    if cfg.sampling == 'proportional':
        batch_sizes = split_batch(sum(spec['batch_size'] for spec in specs.values()),
                                  [sum(len(d) for _, d in members) for members in groups.values()])
    else:
        batch_sizes = [sum(specs[name]['batch_size'] for name, _ in members) for members in groups.values()]
    loaders = {}
    for members, batch_size in zip(groups.values(), batch_sizes):
        names = tuple(name for name, _ in members)
        mixed = MixedDataset(dataset for _, dataset in members)
        loaders['+'.join(names)] = (names, _loader(mixed, batch_size, True, cfg, rank, world, ' + '.join(names)))
    return loaders


def sample_shares(loaders):
    """{dataset: (its expected share of a round's samples, its share of all training samples)} for
    make_train_loaders()'s loaders: what 'proportional' sampling makes equal (up to rounding)."""
    total_batch = sum(loader.batch_sampler.batch_size for _, loader in loaders.values())
    total_size = sum(len(loader.dataset) for _, loader in loaders.values())
    shares = {}
    for names, loader in loaders.values():
        parts = loader.dataset.datasets if isinstance(loader.dataset, MixedDataset) else [loader.dataset]
        for name, part in zip(names, parts):
            shares[name] = (loader.batch_sampler.batch_size / total_batch * len(part) / len(loader.dataset),
                            len(part) / total_size)
    return shares


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


def rounds(loaders, sampling='round_robin', seed=0, accum=1, start=0):
    """
    Training rounds without end, from round `start` on; train.py takes one round per iteration. A round is a
    list of slots, a slot a list of `accum` consecutive batches (names, x, y, ds) of one loader (the
    micro-batches of one optimizer step). loaders is make_train_loaders()'s {key: (names, loader)}: for every
    sampling scheme one slot per loader, in order (IV-ViT's fixed order); what differs is what the loaders hold
    (one dataset each, or groups of datasets with 'mixed' and 'proportional', see make_train_loaders).
    Restarting at `start` continues exactly where a run that had taken `start` rounds was: each loader resumes
    at the number of batches it had given by then. (seed is unused: the loaders' samplers carry their seeds.)
    """
    if sampling not in ('round_robin', 'proportional', 'mixed'):
        raise ValueError(f"sampling must be 'round_robin', 'proportional' or 'mixed', got {sampling!r}")
    keys = list(loaders)
    streams = {key: _labelled(*loaders[key], start * accum) for key in keys}
    while True:
        yield [[next(streams[key]) for _ in range(accum)] for key in keys]

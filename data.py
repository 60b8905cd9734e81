"""
Data: dataset readers, synthetic datasets in the real on-disk layouts, clip sampling, transforms, loaders.

Our machines have no internet and a laptop has no Kinetics, so this module can WRITE small synthetic
datasets in exactly the layouts of the real downloads (images: Tiny-ImageNet-200, CIFAR-100, an ImageNet-style
class-folder tree; videos: UCF101, HMDB51, Kinetics, mini-Kinetics, Something-Something v2, Moments in Time,
ActivityNet v1.3), and the very same reader reads either. One small reader per on-disk format turns a dataset
root into `samples`, a list of (path, label) or, for ActivityNet's annotated segments, (path, label, (t0, t1)),
and `classes`, a list of human-readable names. Any video dataset can also be read from folders of extracted
frames instead of the videos (spec frames=True, see frame_folder).

    python data.py tinyimagenet OUT_DIR --seed 0     # write a synthetic Tiny-ImageNet-200 layout
    python data.py ucf101 OUT_DIR --seed 0 --frames  # write a synthetic UCF101 layout, and its frame folders

Videos are decoded with PyAV from the key frame before a clip up to its last frame only, skipping the frames
no other frame needs (see _shown_frames); three clip samplers pick the frames (see clip_indices).

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

import argparse
import contextlib
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

import av
from av.video.reformatter import VideoReformatter
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

DATASET_DEFAULTS = dict(
    format=None,            # on-disk layout, a key of FORMATS
    root=None,              # dataset root directory
    synthetic=False,        # write a synthetic copy at root first if root does not exist (a dict: the writer's options)
    fold=1,                 # official split number (UCF101, HMDB51: 1, 2 or 3)
    batch_size=32,          # per rank
    num_frames=8,           # frames per video clip
    sampler='window',       # how a clip's frames are picked (see clip_indices): 'window' (IV-ViT: num_frames
                            # over clip_seconds), 'stride' (MViT, MultiTrain: every frame_stride-th frame at
                            # 30 fps), 'segments' (CoVeR, SSv2: one frame in each of num_frames parts of the video)
    clip_seconds=2.67,      # 'window': the clip's duration in seconds, whatever the video's fps
    frame_stride=4,         # 'stride': frames between two samples, counted at 30 fps (MViT's 16x4, 32x3)
    crop_scale=(0.08, 1.0), # images: area range of the random resized crop
    short_side=(1.0, 1.43), # videos: random short side range, in units of img_size (IV-ViT: 224..320)
    flip=True,              # random horizontal flip (off for direction-sensitive classes)
    color_jitter=0.0,       # strength of the random colour distortion in training (0 = off, at most 1)
    max_bad_fraction=0.01,  # stop when more than this fraction of the samples cannot be read
    frames=False,           # read videos from folders of extracted frames (see frame_folder), not by decoding
    flat=False,             # Kinetics: clips directly in {train,val}/, not in {train,val}/<label>/
    frames_fps=None,        # frames=True: the rate at which the frames were extracted (a folder has none)
)

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
                                f"or write a synthetic copy with `python data.py {fmt} {root}`")
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
    counterpart under <root>/frames/, i.e. the videos that have a frame folder (see frame_folder)."""
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
    'segment': [t0, t1]}, ...]}} with 0 <= t0 < t1; a wrong entry is named by its place in the file."""
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
                    or not 0 <= segment[0] < segment[1]):
                raise ValueError(f"{path}: database/{video}/annotations/{k}: expected {{'label': name, 'segment': "
                                 f"[t0, t1]}} with 0 <= t0 < t1 seconds: {a!r}")
    return database


def read_activitynet(root, split, frames=False):
    """
    ActivityNet v1.3 layout:
        activity_net.v1-3.min.json    {"version": ..., "taxonomy": [...], "database": {"<id>": {"subset":
                                      "training" | "validation" | "testing", "duration": s, "url": ...,
                                      "annotations": [{"label": "Long jump", "segment": [t0, t1]}, ...]}}}
        videos/v_<id>.mp4 or videos/<id>.mp4 (or .mkv, .webm), <id> being the youtube id
    Each annotated segment is one sample (path, label, (t0, t1)), its clips taken inside the segment (MultiTrain
    trims the segments). 'train' is subset training, 'val' validation (testing has no labels). The classes are
    the sorted labels of the training segments. Videos missing on disk are skipped, as in read_kinetics.
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
    samples, missing = [], 0
    for video, annotations in videos.items():
        name = stems.get(f"v_{video}") or stems.get(video)
        if name is None:
            missing += 1
            continue
        for k, a in enumerate(annotations):
            if a['label'] not in label_of:
                raise ValueError(f"{path}: database/{video}/annotations/{k}: label {a['label']!r} has no "
                                 f"training segment")
            samples.append((str(root / 'videos' / name), label_of[a['label']], tuple(a['segment'])))
    if not samples:
        raise FileNotFoundError(f"{path}: none of its {len(videos)} {subset} videos is in {root / 'videos'}"
                                + (" (frame folders)" if frames else ''))
    if missing:
        print(f"{path}: {missing} of {len(videos)} {subset} videos missing on disk")
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
# synthetic datasets: simple shapes on noisy backgrounds, rendered with numpy (vectorised over pixels and frames)

# The mask of a shape of half-size r; dx, dy are pixel offsets from its centre. All arguments broadcast.
SHAPES = {
    'square': lambda dx, dy, r: np.maximum(abs(dx), abs(dy)) <= r,
    'circle': lambda dx, dy, r: dx ** 2 + dy ** 2 <= r ** 2,
    'diamond': lambda dx, dy, r: abs(dx) + abs(dy) <= r,
    'triangle': lambda dx, dy, r: (dy <= r) & (2 * abs(dx) <= dy + r),  # apex up, base at dy = r
    'cross': lambda dx, dy, r: (np.maximum(abs(dx), abs(dy)) <= r) & (np.minimum(abs(dx), abs(dy)) <= r / 3),
    'ring': lambda dx, dy, r: (dx ** 2 + dy ** 2 <= r ** 2) & (dx ** 2 + dy ** 2 >= (r / 2) ** 2),
}
COLOURS = dict(red=(210, 40, 40), blue=(40, 60, 220), green=(40, 190, 50),
               yellow=(220, 210, 40), magenta=(200, 40, 200), cyan=(40, 200, 210))


def _background(rng, height, width):
    """Grey noise: per-channel noise keeps it unsaturated, so the saturated objects stand out."""
    grey = rng.integers(60, 190)
    noise = rng.normal(0, 18, size=(height, width, 3))
    return np.clip(grey + noise, 0, 255).astype(np.uint8)  # (H, W, 3)


def _colour(rng, name):
    """A named colour with a random jitter of up to +-35 per channel."""
    return np.clip(np.array(COLOURS[name]) + rng.integers(-35, 36, size=3), 0, 255).astype(np.uint8)


# Tiny-ImageNet stand-in: 10 appearance classes = 5 shapes x 2 colours, e.g. "red square".
TINY_CLASSES = [(colour, shape) for shape in ('square', 'circle', 'triangle', 'cross', 'ring')
                for colour in ('red', 'blue')]


def render_image(colour, shape, rng, size=64):
    """One synthetic image (size, size, 3) uint8 and the object's inclusive box (x0, y0, x1, y1)."""
    image = _background(rng, size, size)
    r = rng.uniform(0.24, 0.40) * size
    cx, cy = rng.uniform(r, size - 1 - r, size=2)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = SHAPES[shape](xx - cx, yy - cy, r)  # (size, size)
    image[mask] = _colour(rng, colour)
    ys, xs = np.nonzero(mask)
    return image, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


def write_synthetic_tinyimagenet(root, seed=0, num_classes=10, train_per_class=100, val_per_class=20, size=64):
    """Write a Tiny-ImageNet-200 layout of num_classes appearance classes (see read_tinyimagenet)."""
    root = Path(root)
    classes = TINY_CLASSES[:num_classes]
    wnids = [f"n9{i:07d}" for i in range(len(classes))]  # the real 'n' + 8 digits form; no real wnid starts n9
    root.mkdir(parents=True, exist_ok=True)
    (root / 'wnids.txt').write_text(''.join(f"{w}\n" for w in wnids))
    (root / 'words.txt').write_text(''.join(f"{w}\t{c} {s}\n" for w, (c, s) in zip(wnids, classes)))

    def save(path, colour, shape, rng):
        image, box = render_image(colour, shape, rng, size)
        Image.fromarray(image).save(path, quality=90)
        return '\t'.join(map(str, box))

    for label, (wnid, (colour, shape)) in enumerate(zip(wnids, classes)):
        folder = root / 'train' / wnid / 'images'
        folder.mkdir(parents=True, exist_ok=True)
        boxes = []
        for n in range(train_per_class):
            name = f"{wnid}_{n}.JPEG"
            box = save(folder / name, colour, shape, np.random.default_rng([seed, 0, label, n]))
            boxes.append(f"{name}\t{box}\n")
        (root / 'train' / wnid / f"{wnid}_boxes.txt").write_text(''.join(boxes))

    # like the real val set, classes are mixed in one folder
    (root / 'val' / 'images').mkdir(parents=True, exist_ok=True)
    labels = np.random.default_rng([seed, 1]).permutation(np.repeat(np.arange(len(classes)), val_per_class))
    annotations = []
    for n, label in enumerate(labels.tolist()):
        name = f"val_{n}.JPEG"
        colour, shape = classes[label]
        box = save(root / 'val' / 'images' / name, colour, shape, np.random.default_rng([seed, 2, n]))
        annotations.append(f"{name}\t{wnids[label]}\t{box}\n")
    (root / 'val' / 'val_annotations.txt').write_text(''.join(annotations))


# UCF101 stand-in. Motion-only pairs: MoveRight is the time reversal of a MoveLeft video, Shrink of a Grow
# video, so telling them apart needs the order of frames. Appearance-only pair: BounceBall (a red circle) and
# BounceBox (a blue square) share one time-symmetric bouncing motion and differ only in the object.
UCF_CLASSES = ('MoveLeft', 'MoveRight', 'Grow', 'Shrink', 'BounceBall', 'BounceBox')
REVERSED = {'MoveRight': 'MoveLeft', 'Shrink': 'Grow'}
MOTION_SHAPES = ('circle', 'square', 'triangle', 'diamond')
MOTION_COLOURS = ('green', 'yellow', 'magenta', 'cyan')
SHAPE_POOL = {'MoveLeft': MOTION_SHAPES, 'Grow': MOTION_SHAPES,
              'BounceBall': ('circle',), 'BounceBox': ('square',)}
COLOUR_POOL = {'MoveLeft': MOTION_COLOURS, 'Grow': MOTION_COLOURS, 'BounceBall': ('red',), 'BounceBox': ('blue',)}


def _move_left(rng, width, height, s):
    r = rng.uniform(11, 14)
    right, left = width - 1 - r - rng.uniform(0, 4), r + rng.uniform(0, 4)
    cx = right + (left - right) * s  # from the right edge to the left edge
    return cx, np.full_like(s, rng.uniform(r, height - 1 - r)), np.full_like(s, r)


def _grow(rng, width, height, s):
    r0, r1 = rng.uniform(4, 6), rng.uniform(16, 20)
    cx, cy = rng.uniform(r1, width - 1 - r1), rng.uniform(r1, height - 1 - r1)
    return np.full_like(s, cx), np.full_like(s, cy), r0 + (r1 - r0) * s


def _bounce(rng, width, height, s):
    # |sin(pi k s)| with a whole number k of bounces is the same played backwards: time-symmetric
    r = rng.uniform(11, 14)
    floor = height - 1 - r
    cy = floor - rng.uniform(0.5, 1.0) * (height - 1 - 2 * r) * np.abs(np.sin(np.pi * rng.integers(2, 4) * s))
    return np.full_like(s, rng.uniform(r, width - 1 - r)), cy, np.full_like(s, r)


TRAJECTORIES = {'MoveLeft': _move_left, 'Grow': _grow, 'BounceBall': _bounce, 'BounceBox': _bounce}


def render_video(cls, rng, width=64, height=48, num_frames=75):
    """Frames (T, H, W, 3) uint8 of one synthetic video of class cls, drawing everything from rng."""
    if cls in REVERSED:
        return render_video(REVERSED[cls], rng, width, height, num_frames)[::-1].copy()
    background = _background(rng, height, width)                        # (H, W, 3)
    colour = _colour(rng, COLOUR_POOL[cls][rng.integers(len(COLOUR_POOL[cls]))])
    shape = SHAPE_POOL[cls][rng.integers(len(SHAPE_POOL[cls]))]
    cx, cy, r = TRAJECTORIES[cls](rng, width, height, np.linspace(0, 1, num_frames))  # each (T,)
    yy, xx = np.mgrid[0:height, 0:width]                                # (H, W)
    mask = SHAPES[shape](xx - cx[:, None, None], yy - cy[:, None, None], r[:, None, None])  # (T, H, W)
    return np.where(mask[..., None], colour, background)                # (T, H, W, 3)


def write_synthetic_ucf101(root, seed=0, classes=UCF_CLASSES, groups=25, clips=2, width=64, height=48,
                           fps=25, seconds=3.0):
    """
    Write a UCF101 layout (see read_ucf101): classes x groups x clips videos and the 3 official splits,
    where split k tests on groups 7(k-1)+1 .. 7k, as in the real dataset. Frames are 4:3 like UCF's 320x240.
    """
    root = Path(root)
    lists = root / 'ucfTrainTestlist'
    lists.mkdir(parents=True, exist_ok=True)
    (lists / 'classInd.txt').write_text(''.join(f"{i} {c}\n" for i, c in enumerate(classes, start=1)))
    videos = []  # (relative path, 1-based label, group)
    for label, cls in enumerate(classes):
        (root / 'UCF-101' / cls).mkdir(parents=True, exist_ok=True)
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                rel = f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi"
                rng = np.random.default_rng([seed, UCF_CLASSES.index(cls), g, c])
                write_video(root / 'UCF-101' / rel, render_video(cls, rng, width, height, round(seconds * fps)), fps,
                            'mpeg4')
                videos.append((rel, label + 1, g))
    for k in (1, 2, 3):
        test_groups = range(7 * (k - 1) + 1, 7 * k + 1)
        train = ''.join(f"{p} {y}\n" for p, y, g in videos if g not in test_groups)
        test = ''.join(f"{p}\n" for p, y, g in videos if g in test_groups)
        (lists / f"trainlist0{k}.txt").write_text(train)
        (lists / f"testlist0{k}.txt").write_text(test)


def write_video(path, frames, fps, codec, audio=False, key_every=None):
    """
    Write frames (T, H, W, 3) uint8 in the container named by the suffix: .avi with codec 'mpeg4' (MPEG-4 Part 2
    with the XVID tag, like UCF101 and HMDB51), .mp4 with 'libx264' (H.264), .webm with 'libvpx-vp9' (VP9);
    audio=True adds an AAC track holding a sine, like most Kinetics clips; key_every: frames from one key frame
    to the next (None: the encoder's default, 250 for H.264). One thread and bitexact muxing: the same seed
    writes the same bytes.
    """
    container_format = {'.avi': 'avi', '.mp4': 'mp4', '.webm': 'webm'}[Path(path).suffix]
    with av.open(str(path), 'w', format=container_format, options={'fflags': '+bitexact'}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        stream.codec_context.thread_count = 1
        if key_every:
            stream.codec_context.gop_size = key_every
        if codec == 'mpeg4':
            stream.bit_rate = 1_000_000
            stream.codec_context.codec_tag = 'XVID'
        if codec == 'libvpx-vp9':
            stream.options = {'deadline': 'realtime', 'cpu-used': '8'}  # fast enough for tests
        if audio:
            _write_sine(container, seconds=len(frames) / fps, hz=220 + 20 * (int(frames[0, 0, 0, 0]) % 32))
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())  # flush


def _write_sine(container, seconds, hz, rate=16000):
    """An AAC mono track holding a sine; PyAV cuts the one long frame into the encoder's 1024-sample frames."""
    stream = container.add_stream('aac', rate=rate)
    stream.layout = 'mono'
    stream.codec_context.thread_count = 1
    t = np.arange(round(seconds * rate)) / rate
    frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None],
                                       format='fltp', layout='mono')  # (1, samples), planar float
    frame.sample_rate, frame.pts = rate, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode())  # flush


def _synthetic_video(cls, seed, dataset, n, width, height, fps, seconds):
    """Frames of synthetic video n of UCF-style class cls; `dataset` keeps the formats' pixels distinct."""
    rng = np.random.default_rng([seed, dataset, UCF_CLASSES.index(cls), n])
    return render_video(cls, rng, width, height, round(seconds * fps))


def write_synthetic_cifar100(root, seed=0, num_classes=10, train_per_class=20, test_per_class=5):
    """Write CIFAR-100 python pickles (see read_cifar100) of num_classes 32 x 32 appearance classes."""
    folder = Path(root) / 'cifar-100-python'
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{colour}_{shape}" for colour, shape in TINY_CLASSES[:num_classes]]  # CIFAR style: aquarium_fish
    for split, per_class in (('train', train_per_class), ('test', test_per_class)):
        labels = np.random.default_rng([seed, 3, split == 'train']).permutation(
            np.repeat(np.arange(num_classes), per_class)).tolist()
        images = [render_image(*TINY_CLASSES[y], np.random.default_rng([seed, 4, split == 'train', n]), 32)[0]
                  for n, y in enumerate(labels)]                                   # N x (32, 32, 3)
        rows = np.stack(images).transpose(0, 3, 1, 2).reshape(len(labels), 3072)   # (N, 3072), channel-major
        batch = {b'data': rows, b'fine_labels': labels, b'coarse_labels': [0] * len(labels),
                 b'filenames': [f"{names[y]}_s_{n:06d}.png".encode() for n, y in enumerate(labels)]}
        with open(folder / split, 'wb') as f:
            pickle.dump(batch, f)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({b'fine_label_names': [n.encode() for n in names], b'coarse_label_names': [b'shapes']}, f)


def write_synthetic_imagefolder(root, seed=0, num_classes=10, train_per_class=20, val_per_class=5, size=64):
    """Write an ImageNet-style class-folder tree of JPEGs (see read_imagefolder)."""
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        for label, (colour, shape) in enumerate(TINY_CLASSES[:num_classes]):
            folder = Path(root) / split / f"{colour}_{shape}"
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                rng = np.random.default_rng([seed, 5, split == 'train', label, n])
                image, _ = render_image(colour, shape, rng, size)
                Image.fromarray(image).save(folder / f"{colour}_{shape}_{n}.JPEG", quality=90)


def _snake(name):
    """'MoveLeft' -> 'move_left', HMDB51's style of class names."""
    return ''.join('_' + c.lower() if c.isupper() else c for c in name).lstrip('_')


def write_synthetic_hmdb51(root, seed=0, classes=UCF_CLASSES, videos_per_class=8, width=64, height=48, fps=25,
                           seconds=2.0):
    """
    Write an HMDB51 layout (see read_hmdb51) of mpeg4 AVIs. In split k, video n is marked
    (1, 1, 2, 0)[(n + k) % 4]: half train, a quarter test, a quarter unused, different in each split.
    """
    root = Path(root)
    (root / 'splits').mkdir(parents=True, exist_ok=True)
    for cls in classes:
        name = _snake(cls)
        (root / 'videos' / name).mkdir(parents=True, exist_ok=True)
        videos = [f"{name}_clip{n:02d}_f_cm_np1_fr_med_0.avi" for n in range(videos_per_class)]
        for n, video in enumerate(videos):
            frames = _synthetic_video(cls, seed, 6, n, width, height, fps, seconds)
            write_video(root / 'videos' / name / video, frames, fps, 'mpeg4')
        for k in (1, 2, 3):
            lines = ''.join(f"{video} {(1, 1, 2, 0)[(n + k) % 4]} \n" for n, video in enumerate(videos))
            (root / 'splits' / f"{name}_test_split{k}.txt").write_text(lines)  # trailing space: as the real files


# Kinetics-style names: spaces (quoted in the CSV), an apostrophe and parentheses, as in real labels.
KINETICS_NAMES = {'MoveLeft': 'moving something left', 'MoveRight': 'moving something right', 'Grow': 'growing',
                  'Shrink': 'shrinking (zooming out)', 'BounceBall': 'bouncing a ball',
                  'BounceBox': "bouncing somebody's box"}


def _csv_field(text):
    """A CSV field quoted as in the Kinetics files: only when it holds a space, comma or quote."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ' ,"') else text


def write_synthetic_kinetics(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                             height=48, fps=25, seconds=2.0):
    """Write a Kinetics layout (see read_kinetics): H.264 MP4 clips with an AAC sine track, and the CSVs."""
    root = Path(root)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    alphabet = np.array(list('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'))
    for split, csv_name, per_class in (('train', 'train.csv', train_per_class),
                                       ('val', 'validate.csv', val_per_class)):
        lines = ['label,youtube_id,time_start,time_end,split,is_cc\n']
        for cls in classes:
            label = KINETICS_NAMES[cls]
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                rng = np.random.default_rng([seed, 7, split == 'train', UCF_CLASSES.index(cls), n])
                youtube_id, start = ''.join(rng.choice(alphabet, 11)), int(rng.integers(0, 300))
                frames = _synthetic_video(cls, seed, 8 + (split == 'train'), n, width, height, fps, seconds)
                write_video(root / split / label / f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4", frames, fps,
                            'libx264', audio=True)
                lines.append(f"{_csv_field(label)},{youtube_id},{start},{start + 10},{split},0\n")
        (root / 'annotations' / csv_name).write_text(''.join(lines))


# Something-Something v2 style templates; the class is the template without brackets.
SSV2_TEMPLATES = {'MoveLeft': 'Pushing [something] from right to left',
                  'MoveRight': 'Pushing [something] from left to right',
                  'Grow': 'Approaching [something] with your camera',
                  'Shrink': 'Moving away from [something] with your camera',
                  'BounceBall': 'Throwing [something] in the air and catching it',
                  'BounceBox': 'Lifting [something] up completely, then letting it drop down'}


def write_synthetic_ssv2(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                         height=48, fps=12, seconds=2.0):
    """Write a Something-Something v2 layout (see read_ssv2): VP9 WebM videos (12 fps, as SSv2) and the JSONs."""
    root = Path(root)
    (root / 'videos').mkdir(parents=True, exist_ok=True)
    names = [SSV2_TEMPLATES[cls].replace('[', '').replace(']', '') for cls in classes]
    (root / 'labels.json').write_text(json.dumps({name: str(i) for i, name in enumerate(names)}, indent=1))
    next_id = 1000
    for split, json_name, per_class in (('train', 'train.json', train_per_class),
                                        ('val', 'validation.json', val_per_class)):
        entries = []
        for cls in classes:
            template = SSV2_TEMPLATES[cls]
            for n in range(per_class):
                frames = _synthetic_video(cls, seed, 10 + (split == 'train'), n, width, height, fps, seconds)
                write_video(root / 'videos' / f"{next_id}.webm", frames, fps, 'libvpx-vp9')
                entries.append({'id': str(next_id), 'label': template.replace('[something]', 'a shape'),
                                'template': template, 'placeholders': ['a shape']})
                next_id += 1
        (root / json_name).write_text(json.dumps(entries, indent=1))


MOMENTS_NAMES = {'MoveLeft': 'leaving', 'MoveRight': 'entering', 'Grow': 'inflating', 'Shrink': 'deflating',
                 'BounceBall': 'bouncing', 'BounceBox': 'dropping'}


def write_synthetic_moments(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                            height=48, fps=25, seconds=2.0):
    """Write a Moments in Time layout (see read_moments) of H.264 MP4 videos (3 s in the real set)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = [MOMENTS_NAMES[cls] for cls in classes]
    (root / 'categories.txt').write_text(''.join(f"{name},{i}\n" for i, name in enumerate(names)))
    for split, folder, csv_name, per_class in (('train', 'training', 'trainingSet.csv', train_per_class),
                                               ('val', 'validation', 'validationSet.csv', val_per_class)):
        lines = []
        for cls, name in zip(classes, names):
            (root / folder / name).mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                rel = f"{name}/yt-{split}{n:04d}_{seed}.mp4"
                frames = _synthetic_video(cls, seed, 12 + (split == 'train'), n, width, height, fps, seconds)
                write_video(root / folder / rel, frames, fps, 'libx264')
                lines.append(f"{rel},{name},3,0\n")
        (root / csv_name).write_text(''.join(lines))


def write_synthetic_minikinetics(root, seed=0, classes=UCF_CLASSES, **kinetics):
    """Write a Kinetics layout (see write_synthetic_kinetics) and the mini-Kinetics lists (see read_minikinetics)
    that select all classes but the last and, of their training clips, three in four."""
    write_synthetic_kinetics(root, seed, classes, **kinetics)
    kept = {KINETICS_NAMES[cls] for cls in classes[:-1]}
    for split, csv_name in (('train', 'train.csv'), ('val', 'validate.csv')):
        rows = _kinetics_rows(Path(root) / 'annotations' / csv_name)
        ids = [youtube_id for k, (_, label, youtube_id, _) in enumerate(rows)
               if label in kept and (split == 'val' or k % 4 != 3)]
        (Path(root) / MINI_KINETICS_LISTS[split]).write_text(''.join(f"{i}\n" for i in ids))


ACTIVITYNET_NAMES = {'MoveLeft': 'Rolling a ball left', 'MoveRight': 'Rolling a ball right',
                     'Grow': 'Inflating a balloon', 'Shrink': 'Deflating a balloon',
                     'BounceBall': 'Dribbling a ball', 'BounceBox': "Bouncing a kid's box"}


def _untrimmed(action, num_frames, segments):
    """An untrimmed video (num_frames, H, W, 3) that plays `action` (L, H, W, 3) once within each of the segments
    [(first frame, end frame), ...] and shows a still frame elsewhere: its first before the first segment, its
    last after each segment, so that only clips inside the segments show the class's motion."""
    where = np.zeros(num_frames, dtype=np.int64)  # (num_frames,): which action frame each video frame shows
    for a, b in segments:
        where[a:b] = np.linspace(0, len(action) - 1, b - a).round().astype(np.int64)
        where[b:] = len(action) - 1
    return action[where]


def write_synthetic_activitynet(root, seed=0, classes=UCF_CLASSES, train_per_class=4, val_per_class=1, width=64,
                                height=48, fps=25, seconds=4.0):
    """
    Write an ActivityNet v1.3 layout (see read_activitynet): untrimmed H.264 MP4 videos, named v_<id>.mp4 and
    <id>.mp4 in turn (downloads have both), of which one or two annotated segments show the class's motion and
    the rest still frames (see _untrimmed); a few 'testing' videos without annotations, as the real file has.
    """
    root = Path(root)
    (root / 'videos').mkdir(parents=True, exist_ok=True)
    alphabet = np.array(list('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'))
    num_frames = round(seconds * fps)
    database = {}
    for subset, per_class in (('training', train_per_class), ('validation', val_per_class), ('testing', 1)):
        for cls in classes:
            for n in range(per_class):
                rng = np.random.default_rng([seed, 14, len(subset), UCF_CLASSES.index(cls), n])
                video = ''.join(rng.choice(alphabet, 11))
                parts = 1 + n % 2  # one or two segments, each inside its own part of the video
                segments = []
                for k in range(parts):
                    part = num_frames // parts
                    length = int(rng.integers(part * 2 // 5, part * 4 // 5 + 1))
                    start = k * part + int(rng.integers(0, part - length + 1))
                    segments.append((start, start + length))
                action = render_video(cls, rng, width, height, max(b - a for a, b in segments))
                name = f"v_{video}.mp4" if n % 2 == 0 else f"{video}.mp4"
                write_video(root / 'videos' / name, _untrimmed(action, num_frames, segments), fps, 'libx264')
                annotations = [] if subset == 'testing' else [
                    {'segment': [round(a / fps, 2), round(b / fps, 2)], 'label': ACTIVITYNET_NAMES[cls]}
                    for a, b in segments]
                database[video] = {'subset': subset, 'duration': seconds, 'resolution': f"{width}x{height}",
                                   'url': f"https://www.youtube.com/watch?v={video}", 'annotations': annotations}
    taxonomy = [{'nodeId': i + 1, 'nodeName': ACTIVITYNET_NAMES[cls], 'parentId': 0, 'parentName': 'Root'}
                for i, cls in enumerate(classes)]
    content = {'version': 'VERSION 1.3', 'taxonomy': taxonomy, 'database': database}
    (root / 'activity_net.v1-3.min.json').write_text(json.dumps(content))


# -----------------------------------------------------------------------------
# reading samples: images with PIL, videos with PyAV or from folders of extracted frames


class UnreadableSample(RuntimeError):
    """A sample that cannot be read (missing, empty, truncated, undecodable, no video stream). Datasets replace
    such a sample by another (see the module docstring); any other exception is a bug and stops the run."""


@contextlib.contextmanager
def _reading(path):
    """Turn any failure to read one sample into an UnreadableSample naming the file, chained to the cause.
    (PIL reports some broken files with SyntaxError or EOFError.)"""
    try:
        yield
    except (OSError, ValueError, EOFError, SyntaxError, av.error.FFmpegError, Image.DecompressionBombError) as e:
        raise UnreadableSample(f"cannot read {path}: {type(e).__name__}: {e}") from e


def read_image(path):
    """An image as uint8 (3, H, W); grayscale, palette, CMYK and alpha images all become RGB."""
    with _reading(path), Image.open(path) as image:
        return TF.pil_to_tensor(image.convert('RGB'))


# Clip samplers. A video is seen on the grid of its average frame rate fps: index i stands for the interval
# [i / fps, (i + 1) / fps) from the start of the stream and reads the frame on screen in its middle (see
# _frame_times), which in a constant-frame-rate video is frame i. Each sampler maps positions u (K clips, T
# frames) in [0, 1) to indices (K, T) of a video of video_frames frames. Where a window is longer than the
# video, the indices past its end are clamped: a short video's clip repeats its last frame rather than play
# at another speed (a clip keeps its duration, so that motion has one speed in every clip).

REFERENCE_FPS = 30  # the 'stride' sampler's frame_stride counts frames of a 30 fps video, as MViT's 16x4
SAMPLERS = ('window', 'stride', 'segments')


def _spread(video_frames, window, num_frames, start, phase):
    """
    num_frames indices evenly over a window of `window` frames (a float) that starts at start * (video_frames -
    window), start (K, 1) or a number in [0, 1]: at the centres of num_frames equal parts of the window
    (phase 0.5) or at their beginnings (phase 0). Returns (K, num_frames).
    """
    start = torch.as_tensor(start, dtype=torch.float64).reshape(-1, 1)             # (K, 1)
    first = start * max(0.0, video_frames - window)                                 # (K, 1)
    steps = (torch.arange(num_frames, dtype=torch.float64) + phase) * (window / num_frames)  # (T,)
    return (first + steps).floor().long().clamp(0, video_frames - 1)               # (K, T)


def window_indices(video_frames, fps, num_frames, clip_seconds, start):
    """IV-ViT: num_frames frames at the centres of equal parts of a clip_seconds window. The window is counted
    in seconds, so its number of frames follows the video's fps: clips of one duration whatever the frame rate,
    the adaptive frame rate of the DRL supplement. (K, T) for start (K, 1)."""
    return _spread(video_frames, clip_seconds * float(fps), num_frames, start, 0.5)


def stride_indices(video_frames, fps, num_frames, frame_stride, start):
    """MViT, MultiTrain: num_frames frames, frame_stride frames apart in a 30 fps video (32x3, 16x4). The stride
    scales with the video's fps (6 in a 60 fps video for frame_stride 3), so that a clip spans num_frames *
    frame_stride / 30 seconds in every video. (K, T) for start (K, 1)."""
    stride = frame_stride * float(fps) / REFERENCE_FPS
    return _spread(video_frames, num_frames * stride, num_frames, start, 0.0)


def segment_indices(video_frames, num_frames, offsets):
    """CoVeR, SSv2 (TSN's segments): the whole video cut into num_frames equal segments, one frame from each at
    offsets (K, T) in [0, 1) of the segments (random in training, 0.5: the centres). A video of fewer than
    num_frames frames shows some of them twice. Returns (K, T)."""
    parts = torch.arange(num_frames, dtype=torch.float64) + offsets.double()            # (K, T)
    return (parts * (video_frames / num_frames)).floor().long().clamp(0, video_frames - 1)  # (K, T)


def clip_indices(spec, video_frames, fps, u):
    """Indices (K, T) of K clips of spec's sampler at positions u (K, T) in [0, 1): a 'window' or 'stride'
    clip starts its window at u[:, 0], a 'segments' clip takes u[k, t] into segment t."""
    if spec['sampler'] == 'window':
        return window_indices(video_frames, fps, spec['num_frames'], spec['clip_seconds'], u[:, :1])
    if spec['sampler'] == 'stride':
        return stride_indices(video_frames, fps, spec['num_frames'], spec['frame_stride'], u[:, :1])
    return segment_indices(video_frames, spec['num_frames'], u)


def train_positions(sampler, num_frames):
    """Random positions (1, T) of a training clip from the global RNG (the dataset seeds it per sample): one
    start for a window, one offset per segment."""
    if sampler == 'segments':
        return torch.rand(1, num_frames, dtype=torch.float64)
    return torch.rand(1, 1).double().expand(1, num_frames)


def eval_positions(sampler, num_clips, num_frames):
    """Positions (K, T) of K evaluation clips: windows evenly from the start to the end of the video (a single
    one: the centre); for 'segments', K offsets evenly inside the segments (a single one: their centres)."""
    k = torch.arange(num_clips, dtype=torch.float64)
    if sampler == 'segments':
        u = (k + 0.5) / num_clips
    else:
        u = k / (num_clips - 1) if num_clips > 1 else k + 0.5
    return u[:, None].expand(num_clips, num_frames)  # (K, T)


def _segment_frames(segment, fps, video_frames):
    """(first index, number of frames) of a time segment (t0, t1) in seconds of a video, or of the whole video
    for None; a segment that runs past the end (annotations are not exact) is cut at the last frame."""
    if segment is None:
        return 0, video_frames
    first = min(video_frames - 1, max(0, math.floor(segment[0] * fps)))
    return first, max(1, min(video_frames, math.ceil(segment[1] * fps)) - first)


def _first_video_stream(container):
    """The first video stream and its average frame rate."""
    if not container.streams.video:
        raise ValueError("no video stream")
    stream = container.streams.video[0]
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise ValueError("unknown frame rate")
    return stream, float(fps)


def _video_stream(container):
    """
    The first video stream, its average frame rate, its length in frames on that grid and the grid's origin.
    The length comes from the stream's duration, else the container's (WebM headers hold no frame count), else
    from counting packets (demuxing is cheap: nothing is decoded; reading then seeks back, or reopens a file that
    cannot seek). The origin is the pts of the first packet, the first frame shown: stream.start_time may be a
    dts instead (XviD AVIs with B-frames show their first frame at pts 1, start_time 0). Opening the file has
    buffered that packet already.
    """
    stream, fps = _first_video_stream(container)
    packets = (packet for packet in container.demux(stream) if packet.size)
    first = next(packets, None)
    origin = first.pts if first is not None and first.pts is not None else stream.start_time or 0
    if stream.duration:
        frames = round(stream.duration * stream.time_base * fps)
    elif container.duration:
        frames = round(container.duration / av.time_base * fps)
    else:
        frames = (first is not None) + sum(1 for _ in packets)
    if not frames:
        raise ValueError("no frames")
    return stream, fps, frames, origin


def _frame_times(stream, fps, origin, indices):
    """Timestamps (N,) in stream.time_base of grid indices (N,): the middles of their intervals after the first
    frame's pts `origin`. In a constant-frame-rate video the frame on screen there is frame i, half a frame away
    from rounding trouble; in a variable-frame-rate video it is the frame a viewer sees at that moment."""
    seconds = (indices.double() + 0.5) / fps                                      # (N,)
    return origin + (seconds / float(stream.time_base)).floor().long()            # (N,)


def _packets(container, stream, seek_to, last):
    """The video packets from the key frame at or before seek_to up to the first one decoded after `last`: as no
    frame is shown before it is decoded (pts >= dts), no later packet can be on screen at or before `last`."""
    container.seek(seek_to, stream=stream, backward=True)
    packets = []
    for packet in container.demux(stream):
        if packet.size:  # the demuxer ends with an empty packet
            packets.append(packet)
            if packet.dts is not None and packet.dts > last:
                break
    return packets


def _shown_frames(container, stream, times):
    """
    {time: frame} for sorted distinct timestamps `times` (a numpy int64 array): the frame on screen at each,
    i.e. the one with the largest pts <= time. It decodes as little as it can:
      1. seek to the key frame at or before times[0] (decoding has to start at a key frame), or one further
         back when times[0] is before that key frame's pts: the B-frames shown just before a key frame may
         refer to the frames before it (open GOPs, XviD);
      2. demux (cheap: nothing is decoded) up to the first packet decoded after times[-1] (see _packets);
      3. the packets' pts tell which frames are shown; the others are decoded with skip_frame='NONREF', so that
         the frames no other frame refers to (most B-frames) are skipped: the reference frames, hence the
         shown ones, come out bit-exact, at about half the work.
    Returns None when the packets cannot show every time (the file cannot seek, no key frame where the demuxer
    landed, or the decoder dropped a frame it was asked for): the caller then decodes from the start.
    """
    seek_to, landed = int(times[0]), None
    for _ in range(4):
        try:
            packets = _packets(container, stream, seek_to, times[-1])
        except av.error.FFmpegError:  # a file without an index may not seek at all
            return None
        if not packets or not packets[0].is_keyframe or packets[0].pts is None:
            return None
        key = packets[0]
        if times[0] >= key.pts or key.pts == landed:  # at the stream's first key frame nothing is shown before it
            break
        landed, seek_to = key.pts, min(key.pts, key.pts if key.dts is None else key.dts) - 1
    else:
        return None
    pts = np.sort([p.pts for p in packets if p.pts is not None]).astype(np.int64)  # (P,)
    where = np.searchsorted(pts, times, side='right') - 1  # (N,): the last packet to start at or before each time
    shown = pts[np.maximum(where, 0)]                       # (N,); times before the first frame show it
    wanted = set(shown.tolist())
    codec, frames = stream.codec_context, {}
    for packet in packets:
        codec.skip_frame = 'DEFAULT' if packet.pts is None or packet.pts in wanted else 'NONREF'
        frames.update((frame.pts, frame) for frame in codec.decode(packet) if frame.pts in wanted)
    codec.skip_frame = 'DEFAULT'
    frames.update((frame.pts, frame) for frame in codec.decode(None) if frame.pts in wanted)  # what it still holds
    if len(frames) < len(wanted):
        return None
    return {t: frames[s] for t, s in zip(times.tolist(), shown.tolist())}


def _shown_frames_from_start(path, times, origin):
    """The sure way, for files whose seeking or timestamps cannot be trusted: decode every frame from the start.
    A frame without a pts is placed on the frame-rate grid from `origin` by its number; times before the first
    frame show it, times past the end the last frame."""
    with av.open(str(path)) as container:
        stream, fps = _first_video_stream(container)
        frames, previous, i = {}, None, 0
        for n, frame in enumerate(container.decode(stream)):
            pts = frame.pts if frame.pts is not None else origin + int(n / fps / stream.time_base)
            while i < len(times) and times[i] < pts:
                frames[int(times[i])] = frame if previous is None else previous
                i += 1
            if i == len(times):
                break
            previous = frame
    if previous is None and not frames:
        raise ValueError("no frame could be decoded")
    frames.update((int(t), previous) for t in times[i:])
    return frames


# Windows of one video further apart than this are read with a seek each; closer ones in one forward pass. A
# seek costs decoding from the key frame before the window: half a key-frame interval on average, about 1 s in
# YouTube-style videos (a key frame every 2 s). Decoding across a gap costs the gap (less the skipped frames).
SEEK_GAP_SECONDS = 1.0


def _decode(path, container, stream, fps, origin, indices):
    """Frames at grid indices (N,) as uint8 (N, 3, H, W): the sorted distinct timestamps, in groups no more than
    SEEK_GAP_SECONDS apart, each read by one seek and one forward pass (see _shown_frames). Only the frames
    returned are converted to RGB, each once."""
    times = _frame_times(stream, fps, origin, indices).numpy()                         # (N,)
    distinct = np.unique(times)
    groups = np.split(distinct, np.flatnonzero(np.diff(distinct) > SEEK_GAP_SECONDS / float(stream.time_base)) + 1)
    shown = {}
    for group in groups:
        found = _shown_frames(container, stream, group)
        if found is None:
            shown = _shown_frames_from_start(path, distinct, origin)
            break
        shown.update(found)
    rgb = VideoReformatter()  # one converter for the clip: frame.to_ndarray(format=...) builds one per frame
    arrays = {id(frame): rgb.reformat(frame, format='rgb24').to_ndarray() for frame in shown.values()}
    video = np.stack([arrays[id(shown[t])] for t in times.tolist()])  # (N, H, W, 3)
    return torch.from_numpy(video).permute(0, 3, 1, 2)               # (N, 3, H, W)


def read_video_frames(path, indices):
    """Frames of a video at grid indices (N,) (index i: the frame on screen at (i + 1/2) / fps), uint8 (N, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, fps, _, origin = _video_stream(container)
        return _decode(path, container, stream, fps, origin, torch.as_tensor(indices))


def read_clips(path, spec, u, segment=None):
    """K clips of spec's sampler at positions u (K, T) (see clip_indices), inside the time segment (t0, t1) in
    seconds when given (ActivityNet), decoded together: uint8 (K, T, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, fps, count, origin = _video_stream(container)
        first, frames = _segment_frames(segment, fps, count)
        indices = first + clip_indices(spec, frames, fps, u)                    # (K, T)
        video = _decode(path, container, stream, fps, origin, indices.flatten())  # (K*T, 3, H, W)
    return video.view(*indices.shape, *video.shape[1:])                        # (K, T, 3, H, W)


# Frame folders: <root>/frames/<video path relative to root, without its suffix>/img_00001.jpg, img_00002.jpg ...
# (1-based, as `ffmpeg -i VIDEO FOLDER/img_%05d.jpg` and the usual extraction scripts write them).
FRAME_NAME = 'img_{:05d}.jpg'
VIDEO_SUFFIXES = ('.avi', '.mp4', '.webm', '.mkv')


def frame_folder(root, path):
    """The folder of extracted frames of video `path` (a path under root): <root>/frames/<relative path>/ without
    the video's suffix, e.g. <root>/frames/UCF-101/Run/v_Run_g01_c01/ for <root>/UCF-101/Run/v_Run_g01_c01.avi."""
    return Path(root) / 'frames' / Path(path).relative_to(root).with_suffix('')


def read_frame_clips(folder, spec, u, segment=None):
    """read_clips for a folder of extracted frames, at spec['frames_fps'] frames per second: frame i of the grid
    is the folder's (i+1)-th image. Each distinct frame is read once: uint8 (K, T, 3, H, W)."""
    folder = Path(folder)
    with _reading(folder):
        count = sum(1 for name in os.listdir(folder) if name.startswith('img_') and name.endswith('.jpg'))
        if not count:
            raise FileNotFoundError(f"no frames {FRAME_NAME.format(1)}, ... in the folder")
    first, frames = _segment_frames(segment, spec['frames_fps'], count)
    indices = first + clip_indices(spec, frames, spec['frames_fps'], u)  # (K, T)
    distinct, inverse = indices.unique(return_inverse=True)              # (U,), (K, T)
    images = torch.stack([read_image(folder / FRAME_NAME.format(i + 1)) for i in distinct.tolist()])  # (U, 3, H, W)
    return images[inverse]                                               # (K, T, 3, H, W)


def write_frame_folders(root, quality=90):
    """Extract every video under root (suffixes VIDEO_SUFFIXES) into its frame folder (see frame_folder), every
    frame at the video's own rate: a config reads them with frames=True and frames_fps = that rate."""
    root = Path(root)
    videos = sorted(p for p in root.rglob('*') if p.suffix in VIDEO_SUFFIXES)
    for path in (p for p in videos if p.relative_to(root).parts[0] != 'frames'):
        folder = frame_folder(root, path)
        folder.mkdir(parents=True, exist_ok=True)
        with av.open(str(path)) as container:
            for n, frame in enumerate(container.decode(video=0), start=1):
                frame.to_image().save(folder / FRAME_NAME.format(n), quality=quality)


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
FORMATS = {
    'tinyimagenet': ('image', lambda spec, split: read_tinyimagenet(spec['root'], split),
                     write_synthetic_tinyimagenet),
    'ucf101': ('video', lambda spec, split: read_ucf101(spec['root'], split, spec['fold']),
               write_synthetic_ucf101),
    'imagefolder': ('image', lambda spec, split: read_imagefolder(spec['root'], split),
                    write_synthetic_imagefolder),
    'cifar100': ('cifar', lambda spec, split: read_cifar100(spec['root'], split), write_synthetic_cifar100),
    'hmdb51': ('video', lambda spec, split: read_hmdb51(spec['root'], split, spec['fold']),
               write_synthetic_hmdb51),
    'kinetics': ('video', lambda spec, split: read_kinetics(spec['root'], split, spec['frames'],
                                                             flat=spec['flat']),
                 write_synthetic_kinetics),
    'minikinetics': ('video', lambda spec, split: read_minikinetics(spec['root'], split, spec['frames']),
                     write_synthetic_minikinetics),
    'ssv2': ('video', lambda spec, split: read_ssv2(spec['root'], split), write_synthetic_ssv2),
    'moments': ('video', lambda spec, split: read_moments(spec['root'], split), write_synthetic_moments),
    'activitynet': ('video', lambda spec, split: read_activitynet(spec['root'], split, spec['frames']),
                    write_synthetic_activitynet),
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
        FORMATS[spec['format']][2](partial, **options)
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
    kind, read, _ = FORMATS[spec['format']]
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


def make_train_loaders(specs, cfg, rank=0, world=1):
    """
    The training loaders of a run: {key: (names, loader)}, names being the datasets whose samples the loader's
    batches hold. With sampling='mixed', datasets whose samples have the same shape (all images; videos of the
    same num_frames) share one loader over their concatenation, a batch holding the sum of their batch sizes
    drawn uniformly over all their samples, i.e. each dataset in proportion to its size (MultiTrain); its
    batches are (x, y, ds) with ds (B,) the position of each sample's dataset in names. Otherwise each dataset
    has a loader of its own, batches (x, y).
    """
    if cfg.sampling != 'mixed':
        return {name: ((name,), make_loader(spec, 'train', cfg, rank, world)) for name, spec in specs.items()}
    groups = {}  # sample shape -> [(name, dataset)]
    for name, spec in specs.items():
        dataset = _dataset(spec, 'train', cfg, rank)
        groups.setdefault(spec['num_frames'] if dataset.is_video else 'image', []).append((name, dataset))
    loaders = {}
    for members in groups.values():
        names = tuple(name for name, _ in members)
        batch_size = sum(specs[name]['batch_size'] for name in names)
        mixed = MixedDataset(dataset for _, dataset in members)
        loaders['+'.join(names)] = (names, _loader(mixed, batch_size, True, cfg, rank, world, ' + '.join(names)))
    return loaders


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


def _draws(sizes, seed):
    """Loader picks without end, each with probability proportional to sizes (CoVeR), in blocks of 1024 drawn
    from a generator seeded by (seed, block): the same on every rank, and cheap to replay on resume."""
    block = 0
    while True:
        generator = torch.Generator().manual_seed(sample_seed(seed, 1 << 32, block))  # apart from the samplers' seeds
        yield from torch.multinomial(sizes, 1024, replacement=True, generator=generator).tolist()
        block += 1


def rounds(loaders, sampling='round_robin', seed=0, accum=1, start=0):
    """
    Training rounds without end, from round `start` on; train.py takes one round per iteration. A round is a
    list of slots, a slot a list of `accum` consecutive batches (names, x, y, ds) of one loader (the
    micro-batches of one optimizer step). loaders is make_train_loaders()'s {key: (names, loader)}.
    'round_robin' and 'mixed': one slot per loader, in order (IV-ViT's fixed order).
    'proportional': as many slots as loaders, each from a loader drawn with probability proportional to its
        dataset's size (CoVeR); a small dataset may sit out a round, a large one come twice.
    Restarting at `start` continues exactly where a run that had taken `start` rounds was: each loader resumes
    at the number of batches it had given by then.
    """
    keys = list(loaders)
    if sampling == 'proportional':
        sizes = torch.tensor([len(loaders[key][1].dataset) for key in keys], dtype=torch.float64)
        draws = _draws(sizes, seed)
        given = [0] * len(keys)
        for _ in range(start * len(keys)):  # replay the picks of the rounds before `start`
            given[next(draws)] += accum
        next_keys = lambda: [keys[next(draws)] for _ in keys]
    elif sampling in ('round_robin', 'mixed'):
        given = [start * accum] * len(keys)
        next_keys = lambda: keys
    else:
        raise ValueError(f"sampling must be 'round_robin', 'proportional' or 'mixed', got {sampling!r}")
    streams = {key: _labelled(*loaders[key], n) for key, n in zip(keys, given)}
    while True:
        yield [[next(streams[key]) for _ in range(accum)] for key in next_keys()]


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description="Write a synthetic dataset in the on-disk layout of a real one "
                                     "(image formats: 10 classes of coloured shapes; video formats: 6 classes of "
                                     "moving shapes, e.g. ucf101: 300 MPEG-4 AVI videos with 3 splits).")
    parser.add_argument('format', choices=list(FORMATS), help="the layout to write")
    parser.add_argument('out_dir', help="dataset root to write (use it as the dataset's root in a config)")
    parser.add_argument('--seed', type=int, default=0, help="the same seed writes the same pixels and split files")
    parser.add_argument('--frames', action='store_true', help="also extract every video into its frame folder "
                        "(read with frames=True, frames_fps = the videos' fps: 25, ssv2 12)")
    args = parser.parse_args()
    t0 = time.time()
    FORMATS[args.format][2](args.out_dir, seed=args.seed)
    if args.frames:
        write_frame_folders(args.out_dir)
    print(f"wrote a synthetic {args.format} dataset to {args.out_dir} in {time.time() - t0:.1f} s")

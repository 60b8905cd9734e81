"""
Data: dataset readers, synthetic datasets in the real on-disk layouts, clip sampling, transforms, loaders.

Our machines have no internet and a laptop has no Kinetics, so this module can WRITE small synthetic
datasets in exactly the layouts of the real downloads (images: Tiny-ImageNet-200, CIFAR-100, an ImageNet-style
class-folder tree; videos: UCF101, HMDB51, Kinetics, Something-Something v2, Moments in Time), and the very
same reader reads either. One small reader per on-disk format turns a dataset root into
`samples`, a list of (path, label), and `classes`, a list of human-readable names.

    python data.py tinyimagenet OUT_DIR --seed 0     # write a synthetic Tiny-ImageNet-200 layout
    python data.py ucf101 OUT_DIR --seed 0           # write a synthetic UCF101 layout

Sampling is deterministic so that later multi-GPU runs equal single-GPU runs and resumes are exact:
ShardedBatchSampler yields (index, sample_seed) pairs, with sample_seed a function of (seed, epoch, index)
only, and a dataset draws ALL the randomness of a sample (clip start, crop, flip, resize) from its seed. A
sample is therefore the same whichever worker process or GPU rank loads it.

Bad input policy: an annotation or split file with a malformed line, an unknown class or a label out of
range raises ValueError "<file>:<line>: <what is wrong>: <the line>" when the loader is built, before any
training. A sample that cannot be read (missing or empty file, undecodable image or video, no video
stream) raises RuntimeError naming the file and the reason, chained to the original exception: the run
stops. Nothing is silently dropped or replaced, because a silently shrinking dataset changes the results.
The one exception is Kinetics, whose real downloads always miss clips taken off YouTube: read_kinetics skips
CSV rows without a clip on disk and prints how many it skipped.
"""

import argparse
import contextlib
import csv
import difflib
import functools
import json
import os
import pickle
import shutil
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
    synthetic=False,        # write a synthetic copy at root first if root does not exist
    fold=1,                 # official split number (UCF101, HMDB51: 1, 2 or 3)
    batch_size=32,          # per rank
    num_frames=8,           # frames per video clip
    clip_seconds=2.67,      # temporal window of a clip (IV-ViT)
    crop_scale=(0.08, 1.0), # images: area range of the random resized crop
    short_side=(1.0, 1.43), # videos: random short side range, in units of img_size (IV-ViT: 224..320)
    flip=True,              # random horizontal flip (off for direction-sensitive classes)
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


def _kinetics_rows(path):
    """(line number, label, clip file name) of a Kinetics CSV with header label,youtube_id,time_start,..."""
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
        out.append((n, label, f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"))
    return out


def read_kinetics(root, split):
    """
    Kinetics-400/600/700 layout (the clips as cut by the usual download scripts):
        annotations/train.csv, validate.csv       'label,youtube_id,time_start,time_end,split[,is_cc]',
                                                  labels with spaces double-quoted (read with the csv module)
        {train,val}/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4
    The classes are the sorted labels of train.csv. Real downloads always miss some videos (taken off
    YouTube), so a row whose clip is not on disk is skipped: the ONE place in this module where samples
    are dropped, and it is loud: one line "<csv>: N of M clips missing on disk" when N > 0.
    """
    _check_split(split)
    root = _check_root(root, 'kinetics')
    train_csv = root / 'annotations' / 'train.csv'
    classes = sorted({label for _, label, _ in _kinetics_rows(train_csv)})
    label_of = {name: label for label, name in enumerate(classes)}
    path = train_csv if split == 'train' else root / 'annotations' / 'validate.csv'
    rows = _kinetics_rows(path)
    on_disk = {}  # label -> set of file names in its folder: one listing per folder, not one stat per clip
    samples = []
    for n, label, name in rows:
        if label not in label_of:
            raise _bad_line(path, n, f'label {label!r} is not in {train_csv}', label)
        folder = root / split / label
        if label not in on_disk:
            on_disk[label] = set(os.listdir(folder)) if folder.is_dir() else set()
        if name in on_disk[label]:
            samples.append((str(folder / name), label_of[label]))
    missing = len(rows) - len(samples)
    if rows and not samples:
        raise FileNotFoundError(f"{path}: none of its {len(rows)} clips is on disk, e.g. "
                                f"{root / split / rows[0][1] / rows[0][2]}")
    if missing:
        print(f"{path}: {missing} of {len(rows)} clips missing on disk")
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


def write_video(path, frames, fps, codec, audio=False):
    """
    Write frames (T, H, W, 3) uint8 in the container named by the suffix: .avi with codec 'mpeg4' (MPEG-4 Part 2
    with the XVID tag, like UCF101 and HMDB51), .mp4 with 'libx264' (H.264), .webm with 'libvpx-vp9' (VP9);
    audio=True adds an AAC track holding a sine, like most Kinetics clips. One thread and bitexact muxing: the
    same seed writes the same bytes.
    """
    container_format = {'.avi': 'avi', '.mp4': 'mp4', '.webm': 'webm'}[Path(path).suffix]
    with av.open(str(path), 'w', format=container_format, options={'fflags': '+bitexact'}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        stream.codec_context.thread_count = 1
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


# -----------------------------------------------------------------------------
# reading samples: images with PIL, videos with PyAV


@contextlib.contextmanager
def _reading(path):
    """Turn any failure to read one sample into a RuntimeError naming the file (the run stops)."""
    try:
        yield
    except (OSError, ValueError, av.error.FFmpegError, Image.DecompressionBombError) as e:
        raise RuntimeError(f"cannot read {path}: {type(e).__name__}: {e}") from e


def read_image(path):
    """An image as uint8 (3, H, W); grayscale, palette, CMYK and alpha images all become RGB."""
    with _reading(path), Image.open(path) as image:
        return TF.pil_to_tensor(image.convert('RGB'))


def clip_indices(video_frames, fps, num_frames, clip_seconds, start):
    """
    Indices (num_frames,) of a clip: a window of clip_seconds * fps frames whose first frame sits at
    start * (video_frames - window), start in [0, 1], and num_frames indices at the centres of num_frames
    equal segments of the window (IV-ViT). In a video shorter than the window the indices past its end are
    clamped, i.e. the clip repeats the last frame rather than changing the playback speed.
    """
    window = clip_seconds * float(fps)
    first = start * max(0.0, video_frames - window)
    centres = (torch.arange(num_frames, dtype=torch.float64) + 0.5) * (window / num_frames)
    return (first + centres).floor().long().clamp(0, video_frames - 1)


def _video_stream(container):
    """The first video stream, its frame rate and its number of frames (estimated if the header lacks it)."""
    if not container.streams.video:
        raise ValueError("no video stream")
    stream = container.streams.video[0]
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise ValueError("unknown frame rate")
    frames = stream.frames
    if not frames and stream.duration:
        frames = round(stream.duration * stream.time_base * fps)
    elif not frames and container.duration:
        frames = round(container.duration / av.time_base * fps)
    if not frames:
        raise ValueError("unknown number of frames")
    return stream, float(fps), frames


def _decode(container, stream, indices):
    """
    Frames at indices (N,) as uint8 (N, 3, H, W). Decodes forward and stops at the last index needed; only
    the needed frames are converted to RGB. When the header over-counted the frames, indices past the end
    get the last frame.
    """
    wanted = set(indices.tolist())
    last = max(wanted)
    rgb = VideoReformatter()  # one converter for the clip: frame.to_ndarray(format=...) builds one per frame
    arrays, i, frame = {}, -1, None
    for i, frame in enumerate(container.decode(stream)):
        if i in wanted:
            arrays[i] = rgb.reformat(frame, format='rgb24').to_ndarray()  # (H, W, 3)
        if i == last:
            break
    if frame is None:
        raise ValueError("no frame could be decoded")
    if i not in arrays:  # the video ended before the last index: its last frame i stands in for the rest
        arrays[i] = rgb.reformat(frame, format='rgb24').to_ndarray()
    video = np.stack([arrays[min(j, i)] for j in indices.tolist()])  # (N, H, W, 3)
    return torch.from_numpy(video).permute(0, 3, 1, 2)               # (N, 3, H, W)


def read_video_frames(path, indices):
    """Frames of a video at the given indices, uint8 (T, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, _, _ = _video_stream(container)
        return _decode(container, stream, torch.as_tensor(indices))


def read_clips(path, num_frames, clip_seconds, starts):
    """K = len(starts) clips of one video (see clip_indices), decoded in one pass: uint8 (K, T, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, fps, count = _video_stream(container)
        indices = torch.stack([clip_indices(count, fps, num_frames, clip_seconds, s) for s in starts])  # (K, T)
        frames = _decode(container, stream, indices.flatten())  # (K*T, 3, H, W)
    return frames.view(len(starts), num_frames, *frames.shape[1:])  # (K, T, 3, H, W)


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


class _Samples(Dataset):
    """What images and videos share: (path, label) samples, class names, settings, the final normalisation.
    Items are indexed by (index, sample_seed) pairs from ShardedBatchSampler."""

    def __init__(self, samples, classes, train, spec, cfg):
        self.samples, self.classes, self.train, self.spec, self.cfg = samples, classes, train, spec, cfg
        self.normalise = _normalise(cfg)

    def __len__(self):
        return len(self.samples)


class ImageDataset(_Samples):
    """Images, (3, S, S) in training and (V, 3, S, S) views in evaluation."""
    is_video = False

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        self.train_transform = v2.Compose([
            v2.RandomResizedCrop(cfg.img_size, scale=spec['crop_scale'], ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0),
            self.normalise,
        ])

    def __getitem__(self, item):
        index, seed = item
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
    """Video clips in the torchvision layout, (3, T, S, S) in training and (V, 3, T, S, S) views in evaluation."""
    is_video = True

    def __init__(self, samples, classes, train, spec, cfg):
        super().__init__(samples, classes, train, spec, cfg)
        low, high = spec['short_side']
        # the same resize, crop and flip for every frame: v2 transforms draw once per call on a (T, 3, H, W) clip
        self.train_transform = v2.Compose([
            v2.RandomResize(round(low * cfg.img_size), round(high * cfg.img_size) + 1, antialias=True),
            v2.RandomCrop(cfg.img_size),
            v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0),
            self.normalise,
        ])

    def __getitem__(self, item):
        index, seed = item
        path, label = self.samples[index]
        T, S = self.spec['num_frames'], self.cfg.img_size
        if self.train:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                start = torch.rand(()).item()
                clip = read_clips(path, T, self.spec['clip_seconds'], [start])[0]  # (T, 3, H, W)
                return self.train_transform(clip).permute(1, 0, 2, 3), label     # (3, T, S, S)
        K = self.cfg.num_temporal_clips
        starts = [k / (K - 1) for k in range(K)] if K > 1 else [0.5]
        clips = read_clips(path, T, self.spec['clip_seconds'], starts)    # (K, T, 3, H, W)
        clips = TF.resize(clips, S, antialias=True)                       # (K, T, 3, H', W'), short side S
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
        batch 2b sees exactly the samples (and seeds) of 2 processes with batch b; the ragged end is dropped.
    drop_last=False (evaluation): rank r takes samples r, r + world, ..., in batches; the last may be short.
        The shards are disjoint and cover the split, so correct counts summed over ranks are exact.
    """

    def __init__(self, n, batch_size, rank=0, world=1, seed=0, shuffle=True, drop_last=True):
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
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
            return self.n // (self.batch_size * self.world)
        return -(-len(range(self.rank, self.n, self.world)) // self.batch_size)

    def __iter__(self):
        shard = self._shard().tolist()
        for i in range(self.start * self.batch_size, len(shard), self.batch_size):
            yield [(j, sample_seed(self.seed, self.epoch, j)) for j in shard[i:i + self.batch_size]]


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
    'kinetics': ('video', lambda spec, split: read_kinetics(spec['root'], split), write_synthetic_kinetics),
    'ssv2': ('video', lambda spec, split: read_ssv2(spec['root'], split), write_synthetic_ssv2),
    'moments': ('video', lambda spec, split: read_moments(spec['root'], split), write_synthetic_moments),
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
        FORMATS[spec['format']][2](partial)
        os.replace(partial, root)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    deadline = time.time() + timeout
    while not root.exists():
        if time.time() > deadline:
            raise TimeoutError(f"rank {rank}: waited {timeout} s for rank 0 to write {root}")
        time.sleep(1)


def make_loader(spec, split, cfg, rank=0, world=1):
    """
    A DataLoader of (x, y) for rank `rank` of `world`. train: shuffled, drop_last, x (B, 3, H, W) for images or
    (B, 3, T, H, W) for videos; val: in order, sharded rank::world, x (B, V, 3, H, W) or (B, V, 3, T, H, W)
    with V views (temporal clips x spatial crops). y is long (B,).
    """
    _check_split(split)
    if spec['synthetic']:
        _ensure_synthetic(spec, rank)
    kind, read, _ = FORMATS[spec['format']]
    samples, classes = read(spec, split)
    train = split == 'train'
    dataset = DATASETS[kind](samples, classes, train, spec, cfg)
    sampler = ShardedBatchSampler(len(samples), spec['batch_size'], rank, world, cfg.seed,
                                  shuffle=train, drop_last=train)
    if train and len(sampler) == 0:
        raise ValueError(f"{spec['root']}: {len(samples)} training samples cannot fill one global batch of "
                         f"{spec['batch_size']} x {world} ranks")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                      pin_memory=torch.cuda.is_available() and cfg.device != 'cpu',
                      persistent_workers=cfg.num_workers > 0,
                      generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG: see train.py


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


def round_robin(loaders, start=0):
    """(name, x, y) without end: one batch of every dataset per round, in the dict's order (IV-ViT), from
    round `start` on (every dataset has given `start` batches before it: how train.py resumes exactly)."""
    streams = {name: forever(loader, start) for name, loader in loaders.items()}
    while True:
        for name, stream in streams.items():
            x, y = next(stream)
            yield name, x, y


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description="Write a synthetic dataset in the on-disk layout of a real one "
                                     "(image formats: 10 classes of coloured shapes; video formats: 6 classes of "
                                     "moving shapes, e.g. ucf101: 300 MPEG-4 AVI videos with 3 splits).")
    parser.add_argument('format', choices=list(FORMATS), help="the layout to write")
    parser.add_argument('out_dir', help="dataset root to write (use it as the dataset's root in a config)")
    parser.add_argument('--seed', type=int, default=0, help="the same seed writes the same pixels and split files")
    args = parser.parse_args()
    t0 = time.time()
    FORMATS[args.format][2](args.out_dir, seed=args.seed)
    print(f"wrote a synthetic {args.format} dataset to {args.out_dir} in {time.time() - t0:.1f} s")

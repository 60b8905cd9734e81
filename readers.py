"""
Readers of the real datasets' on-disk layouts: one function per format turns a dataset root and a split ('train'
or 'val') into `samples`, a list of (path, label) or, for ActivityNet's annotated segments, (path, label,
(t0, t1)), and `classes`, a list of names. Each reader's docstring shows its layout; synthetic.py writes a fake
copy of each. A malformed line, an unknown class or a label out of range raises ValueError "<file>:<line>: <what
is wrong>: <the line>" before any training. Kinetics, mini-Kinetics and ActivityNet, whose real downloads always
miss videos taken off YouTube, skip annotations without a video on disk and print how many.
"""

import csv
import functools
import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from decode import frame_folder


def _annotation(path):
    """path as a Path, or FileNotFoundError naming the missing annotation file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} is missing (is the dataset root complete?)")
    return path


def _lines(path):
    """(line number, line) for the non-blank lines of a text file; CRLF line endings are fine."""
    lines = _annotation(path).read_text(encoding='utf-8').splitlines()  # drops '\n', '\r\n' and '\r'
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]


def _bad_line(path, n, what, line):
    return ValueError(f"{path}:{n}: {what}: {line!r}")


def _json(path):
    """A JSON file; a syntax error names the file and line."""
    path = _annotation(path)
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: {e.msg} (column {e.colno})") from e


def _check_root(root, split, fmt):
    """The root as a Path, split checked; a missing root names itself and how to write a synthetic copy there."""
    if split not in ('train', 'val'):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist: download the real {fmt} there, "
                                f"or write a synthetic copy with `python synthetic.py {fmt} {root}`")
    return root


def read_tinyimagenet(root, split):
    """Tiny-ImageNet-200 layout (tab-separated text files):
        wnids.txt                                   one WordNet id per line; its line order gives the label
        words.txt                                   'wnid<TAB>name, synonym, ...' (all of WordNet: 82k lines)
        train/<wnid>/images/<wnid>_<n>.JPEG         (the boxes files next to them are not needed here)
        val/images/val_<n>.JPEG, val/val_annotations.txt  'val_0.JPEG<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1'
    Returns (samples, classes); a class is named by the first term of its words.txt entry, else its wnid.
    """
    root = _check_root(root, split, 'tinyimagenet')
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
    """UCF101 layout, as extracted from UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip:
        UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
        ucfTrainTestlist/classInd.txt               '1 ApplyEyeMakeup' (1-based, space-separated)
        ucfTrainTestlist/trainlist0{1,2,3}.txt      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'
        ucfTrainTestlist/testlist0{1,2,3}.txt       path only; 'val' means this official test list
    The class of a video is its folder (one real folder, HandstandPushups, holds v_HandStandPushups_*).
    Returns (samples, classes) with 0-based labels.
    """
    root = _check_root(root, split, 'ucf101')
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
    """ImageNet-style class-folder tree: <root>/{train,val}/<class>/*.{JPEG,jpg,png} (case-insensitive suffix).
    The classes are the sorted folder names of train/, so that both splits share one label map; a val
    folder that is not a training class is an error.
    """
    root = _check_root(root, split, 'imagefolder')
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


def cifar_file(root, split):
    return Path(root) / 'cifar-100-python' / ('train' if split == 'train' else 'test')


@functools.lru_cache(maxsize=4)
def _cifar_arrays(path):
    """One CIFAR-100 pickle as (images uint8 (N, 3, 32, 32), fine labels list), read once per process: the
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
    """CIFAR-100 'python version', as extracted from cifar-100-python.tar.gz into root:
        cifar-100-python/train, test      pickled dicts: b'data' N x 3072 uint8 channel-major, b'fine_labels',
                                          b'coarse_labels', b'filenames'; 'val' means the official test set
        cifar-100-python/meta             b'fine_label_names' (and b'coarse_label_names')
    The images live in memory, so a sample is (row index into the split's array, fine label); CifarDataset
    turns the index back into an image.
    """
    root = _check_root(root, split, 'cifar100')
    meta = root / 'cifar-100-python' / 'meta'
    with open(meta, 'rb') as f:
        names = pickle.load(f, encoding='bytes').get(b'fine_label_names')
    if not names:
        raise ValueError(f"{meta}: no b'fine_label_names'")
    classes = [n.decode() if isinstance(n, bytes) else n for n in names]
    path = cifar_file(root, split)
    _, labels = _cifar_arrays(str(path))
    bad = [i for i, y in enumerate(labels) if not 0 <= y < len(classes)]
    if bad:
        raise ValueError(f"{path}: fine label {labels[bad[0]]} of row {bad[0]} is out of range "
                         f"0..{len(classes) - 1}")
    return list(enumerate(labels)), classes


def read_hmdb51(root, split, fold=1):
    """HMDB51 layout:
        videos/<class>/<video>.avi
        splits/<class>_test_split{1,2,3}.txt       '<video>.avi <n>': 1 train, 2 test ('val'), 0 unused
    The classes are the sorted class names of the fold's split files (names hold underscores: brush_hair).
    """
    root = _check_root(root, split, 'hmdb51')
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
    with open(_annotation(path), newline='', encoding='utf-8') as f:
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
    """The names in `folder` (one listing, not a stat per video), or with frames=True in <root>/frames/<folder>."""
    if frames:
        folder = Path(root) / 'frames' / Path(folder).relative_to(root)
    return set(os.listdir(folder)) if folder.is_dir() else set()


def read_kinetics(root, split, frames=False, lists=None, flat=False):
    """Kinetics-400/600/700 layout (the clips as cut by the usual download scripts):
        annotations/train.csv, validate.csv       'label,youtube_id,time_start,time_end,split[,is_cc]',
                                                  labels with spaces double-quoted (read with the csv module)
        {train,val}/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4
        or, with flat=True, {train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4 (the labels from the CSV only)
    The classes are the sorted labels of train.csv. Real downloads always miss some videos (taken off
    YouTube), so a row whose clip is not on disk (with frames=True: whose frame folder is not) is skipped, and
    loudly: one line "<csv>: N of M clips missing on disk" when N > 0. lists: {'train': ids, 'val': ids} keeps
    only the rows of those youtube ids, and the classes of the kept training rows (see read_minikinetics).
    """
    root = _check_root(root, split, 'minikinetics' if lists else 'kinetics')
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
    """Mini-Kinetics-200 (Xie et al. 2018, IV-ViT's mini-Kinetics): a Kinetics-400 layout (see read_kinetics) and
    the two lists that select the subset, as released with it, one youtube id per line:
        train_ytid_list.txt, val_ytid_list.txt    (78246 and 5000 ids: 200 classes, from train.csv, validate.csv)
    Only the listed clips are read; the classes are the sorted labels of the listed training clips.
    """
    root = _check_root(root, split, 'minikinetics')
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


ACTIVITYNET_CLIP_LEN = 10.0  # MultiTrain: "We cut the annotated segments of the videos into 10-second long clips"


def read_activitynet(root, split, frames=False, clip_len=None):
    """ActivityNet v1.3 layout:
        activity_net.v1-3.min.json    {"version": ..., "taxonomy": [...], "database": {"<id>": {"subset":
                                      "training" | "validation" | "testing", "duration": s, "url": ...,
                                      "annotations": [{"label": "Long jump", "segment": [t0, t1]}, ...]}}}
        videos/v_<id>.mp4 or videos/<id>.mp4 (or .mkv, .webm), <id> being the youtube id
    Each annotated segment [t0, t1] is cut into ceil((t1 - t0) / clip_len) consecutive clips of at most clip_len
    seconds, the last ending at t1, each one sample (path, label, (start, end)) whose frames are taken inside it:
    MultiTrain (arXiv:2209.12362, section 4.1) cuts 10-second clips, 107K for training and 16K for testing, which
    sets ActivityNet's share of a batch mixed by size (whole segments would give about 15K). 'train' is subset
    training, 'val' validation; the classes are the sorted labels of the training segments. Videos missing on
    disk (as in read_kinetics) and zero-length segments (the real file has some, e.g. [0, 0]) are skipped;
    every count is printed.
    """
    root, clip_len = _check_root(root, split, 'activitynet'), clip_len or ACTIVITYNET_CLIP_LEN  # None: 10 s
    path = root / 'activity_net.v1-3.min.json'
    database = _activitynet_database(path)
    classes = sorted({a['label'] for entry in database.values() if entry.get('subset') == 'training'
                      for a in entry.get('annotations', [])})
    label_of = {name: label for label, name in enumerate(classes)}
    subset = 'training' if split == 'train' else 'validation'
    videos = {video: entry['annotations'] for video, entry in database.items()
              if entry.get('subset') == subset and entry.get('annotations')}
    names = _listing(root, root / 'videos', frames)
    stems = ({name: name for name in names} if frames else  # a frame folder is named as its video, no suffix
             {os.path.splitext(n)[0]: n for n in names if os.path.splitext(n)[1] in ACTIVITYNET_SUFFIXES})
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
            t0, t1 = a['segment']
            if t0 == t1:
                empty.append(f"database/{video}/annotations/{k}")
                continue
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
    """Something-Something v2 layout:
        labels.json                               {"Approaching something with your camera": "0", ...}
        train.json, validation.json               [{"id": "78687", "label": ..., "template": "Approaching
                                                  [something] with your camera", "placeholders": [...]}, ...]
        videos/<id>.webm                          VP9 WebM
    The class of an entry is its template with '[' and ']' removed.
    """
    root = _check_root(root, split, 'ssv2')
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


def read_moments(root, split):
    """Moments in Time layout:
        categories.txt                            'name,index' per line, or 'name' alone (index = line order)
        trainingSet.csv, validationSet.csv        no header: 'class/file.mp4,class,...'
        training/<class>/<file>.mp4, validation/<class>/<file>.mp4
    """
    root = _check_root(root, split, 'moments')
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


# Each on-disk layout's reader(spec, split), by config.FORMATS's names (synthetic.WRITERS writes a fake copy).
FORMATS = {
    'tinyimagenet': lambda spec, split: read_tinyimagenet(spec['root'], split),
    'ucf101': lambda spec, split: read_ucf101(spec['root'], split, spec['fold']),
    'imagefolder': lambda spec, split: read_imagefolder(spec['root'], split),
    'cifar100': lambda spec, split: read_cifar100(spec['root'], split),
    'hmdb51': lambda spec, split: read_hmdb51(spec['root'], split, spec['fold']),
    'kinetics': lambda spec, split: read_kinetics(spec['root'], split, spec['frames'], flat=spec['flat']),
    'minikinetics': lambda spec, split: read_minikinetics(spec['root'], split, spec['frames']),
    'ssv2': lambda spec, split: read_ssv2(spec['root'], split),
    'moments': lambda spec, split: read_moments(spec['root'], split),
    'activitynet': lambda spec, split: read_activitynet(spec['root'], split, spec['frames'], spec['clip_len']),
}

"""
Readers of the real datasets' on-disk layouts: one function per format turns a dataset root and a split ('train'
or 'val') into `samples`, a list of (path, label) or, for ActivityNet's annotated segments, (path, label,
(t0, t1)), and `classes`, a list of names. Each reader's docstring shows its layout; tools/synthetic.py writes a
fake copy of each. A user's mistake in the data raises a DataError whose message alone, one line, names the path
and the fix, before any training: a malformed line, an unknown class or a label out of range is "<file>:<line>:
<what is wrong>: <the line>" (DataInvalid); a root one level too high or too low, or a split none of whose files
is where the layout puts them, says what was expected and what was found (DataNotFound). Kinetics, mini-Kinetics
and ActivityNet, whose real downloads always miss videos taken off YouTube, skip annotations without a video on
disk and print how many.
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


class DataError(Exception):
    """A user's mistake in a dataset's files or layout. Its message alone (one line: the path and the fix) says what
    is wrong; train.py and eval.py print it without a traceback (data.excepthook)."""


class DataNotFound(DataError, FileNotFoundError):
    """A file, a folder or a whole split that is not where the dataset's layout puts it."""


class DataInvalid(DataError, ValueError):
    """A malformed or inconsistent annotation: a bad line, an unknown class, a label out of range."""


def _annotation(path):
    """path as a Path, or DataNotFound naming the missing annotation file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFound(f"annotation file {path} is missing (is the dataset root complete?)")
    return path


def _lines(path):
    """(line number, line) for the non-blank lines of a text file; CRLF line endings are fine."""
    lines = _annotation(path).read_text(encoding='utf-8').splitlines()  # drops '\n', '\r\n' and '\r'
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]


def _bad_line(path, n, what, line):
    return DataInvalid(f"{path}:{n}: {what}: {line!r}")


def _json(path):
    """A JSON file; a syntax error names the file and line."""
    path = _annotation(path)
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as e:
        raise DataInvalid(f"{path}:{e.lineno}: {e.msg} (column {e.colno})") from e


# What each layout holds right under its root: where it is missing, the root is checked one level up and one down.
MARKERS = dict(tinyimagenet='wnids.txt', ucf101='ucfTrainTestlist', imagefolder='train',
               cifar100='cifar-100-python/meta', hmdb51='splits', kinetics='annotations/train.csv',
               minikinetics='train_ytid_list.txt', ssv2='labels.json', moments='trainingSet.csv',
               activitynet='activity_net.v1-3.min.json')
# What to do when a layout's marker is nowhere near the root, where the usual cause is known.
HINTS = dict(ucf101="unzip UCF101TrainTestSplits-RecognitionTask.zip into it (it holds ucfTrainTestlist/)",
             kinetics="Kinetics needs its CSVs in annotations/ (CVDF's downloader puts them there)",
             minikinetics="add the two lists of Mini-Kinetics-200 to a Kinetics-400 root")


def _contents(folder, n=8):
    """What a folder holds, for a message: 'a/, b.txt, c/ (12 entries)', folders marked with a slash."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"no folder {folder}"
    entries = sorted(e.name + ('/' if e.is_dir() else '') for e in os.scandir(folder))
    if not entries:
        return "an empty folder"
    return ', '.join(entries[:n]) + (f", ... ({len(entries)} entries)" if len(entries) > n else '')


def _check_root(root, split, fmt, marker=None):
    """The root as a Path, split checked. A missing root names itself and how to write a synthetic copy there; a
    root without its layout's marker (MARKERS, or the given file) says where the marker is when the root is one
    level too high or too low, else what the root holds."""
    if split not in ('train', 'val'):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataNotFound(f"dataset root {root} does not exist: download the real {fmt} there, "
                           f"or write a synthetic copy with `python -m tools.synthetic {fmt} {root}`")
    marker = marker or MARKERS.get(fmt)
    if marker is None or (root / marker).exists():
        return root
    expected = f"dataset root {root} is not a {fmt} root: expected {marker} in it"
    if (root.parent / marker).exists():
        raise DataNotFound(f"{expected}, found {root.parent / marker}: the root is one level too low, "
                           f"set root='{root.parent}'")
    below = sorted(d.path for d in os.scandir(root) if d.is_dir() and os.path.exists(os.path.join(d.path, marker)))
    if below:
        others = f" (or {', '.join(below[1:])})" if len(below) > 1 else ''
        raise DataNotFound(f"{expected}, found {Path(below[0]) / marker}: the root is one level too high, "
                           f"set root='{below[0]}'{others}")
    hint = f"; {HINTS[fmt]}" if fmt in HINTS else ''
    raise DataNotFound(f"{expected}, found {_contents(root)}{hint} (see README.md#real-data for the layout)")


def _find(root, name, limit=5000):
    """The first path named `name` under root, breadth first, looking into at most `limit` folders; else None."""
    queue, seen = [Path(root)], 0
    while queue and seen < limit:
        folder, seen = queue.pop(0), seen + 1
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == name:
                return Path(entry.path)
        queue += sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    return None


def _nowhere(root, what, expected, frames=False):
    """The DataNotFound of a split none of whose files is on disk: a layout problem, not a few bad files. Names an
    expected path and where a file of that name is under the root, or what the nearest existing folder holds."""
    found = _find(root, expected.name)
    kind = 'frame folder' if frames else 'file'
    if found is not None:
        where = f"a {kind} of that name is at {found}: move the files to where the layout puts them, or fix the root"
    else:
        folder = expected.parent
        while not folder.is_dir() and folder != Path(root).parent:
            folder = folder.parent
        where = f"no {kind} of that name is under {root}; {folder} holds {_contents(folder)}"
    return DataNotFound(f"{what}, e.g. {expected}: {where}")


def _require_on_disk(samples, root, what, frames=False):
    """Stop with _nowhere's message when not one sample's file (with frames=True: its frame folder) is on disk. One
    listing per folder until a file is found, so a split that is there costs about one listing. Some missing
    files are no layout problem: each is replaced when met, as any unreadable sample (data.py)."""
    listings = {}
    paths = [frame_folder(root, s[0]) if frames else Path(s[0]) for s in samples]
    for path in paths:
        if path.parent not in listings:
            listings[path.parent] = set(os.listdir(path.parent)) if path.parent.is_dir() else set()
        if path.name in listings[path.parent]:
            return
    if paths:
        raise _nowhere(root, f"{what}: none of its {len(paths)} {'frame folders' if frames else 'files'} is on disk",
                       paths[0], frames)


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
                raise DataNotFound(f"no .JPEG images in {folder} (class {wnid} of {root / 'wnids.txt'})")
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
    _require_on_disk(samples, root, path)
    return samples, classes


def read_ucf101(root, split, fold=1, frames=False):
    """UCF101 layout, as extracted from UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip:
        UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
        ucfTrainTestlist/classInd.txt               '1 ApplyEyeMakeup' (1-based, space-separated)
        ucfTrainTestlist/trainlist0{1,2,3}.txt      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'
        ucfTrainTestlist/testlist0{1,2,3}.txt       path only; 'val' means this official test list
    The class of a video is its folder (one real folder, HandstandPushups, holds v_HandStandPushups_*).
    Returns (samples, classes) with 0-based labels. With frames=True the videos' frame folders must be on disk.
    """
    root = _check_root(root, split, 'ucf101')
    if fold not in (1, 2, 3):
        raise DataInvalid(f"UCF101 has official splits 1, 2, 3; got fold={fold!r}")
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
    _require_on_disk(samples, root, path, frames)
    return samples, classes


IMAGE_SUFFIXES = ('.jpeg', '.jpg', '.png')  # compared lower-cased: ImageNet's .JPEG counts


def read_imagefolder(root, split):
    """ImageNet-style class-folder tree: <root>/{train,val}/<class>/*.{JPEG,jpg,png} (case-insensitive suffix).
    The classes are the sorted folder names of train/, so that both splits share one label map; a val
    folder that is not a training class is an error.
    """
    root = _check_root(root, split, 'imagefolder')
    if not (root / 'train').is_dir():
        raise DataNotFound(f"{root / 'train'} is missing: the classes are the folders of the train split")
    classes = sorted(d.name for d in (root / 'train').iterdir() if d.is_dir())
    label_of = {name: label for label, name in enumerate(classes)}
    if not (root / split).is_dir():
        raise DataNotFound(f"{root / split} is missing: the {split} split's images go in {root / split}/<class>/, "
                           f"found {_contents(root)}")
    samples = []
    for folder in sorted(d for d in (root / split).iterdir() if d.is_dir()):
        if folder.name not in label_of:
            raise DataInvalid(f"{folder}: class {folder.name!r} has no folder in {root / 'train'}")
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataNotFound(f"no .JPEG, .jpg or .png images in {folder}")
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
        raise DataInvalid(f"{path}: b'data' must be N x 3072 uint8, got {rows.shape} {rows.dtype}")
    if labels is None or len(labels) != len(rows):
        raise DataInvalid(f"{path}: b'fine_labels' must hold one label per row of b'data' ({len(rows)})")
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
        raise DataInvalid(f"{meta}: no b'fine_label_names'")
    classes = [n.decode() if isinstance(n, bytes) else n for n in names]
    path = _annotation(cifar_file(root, split))
    _, labels = _cifar_arrays(str(path))
    bad = [i for i, y in enumerate(labels) if not 0 <= y < len(classes)]
    if bad:
        raise DataInvalid(f"{path}: fine label {labels[bad[0]]} of row {bad[0]} is out of range "
                         f"0..{len(classes) - 1}")
    return list(enumerate(labels)), classes


def read_hmdb51(root, split, fold=1, frames=False):
    """HMDB51 layout:
        videos/<class>/<video>.avi
        splits/<class>_test_split{1,2,3}.txt       '<video>.avi <n>': 1 train, 2 test ('val'), 0 unused
    The classes are the sorted class names of the fold's split files (names hold underscores: brush_hair).
    With frames=True the videos' frame folders must be on disk.
    """
    root = _check_root(root, split, 'hmdb51')
    if fold not in (1, 2, 3):
        raise DataInvalid(f"HMDB51 has official splits 1, 2, 3; got fold={fold!r}")
    suffix = f"_test_split{fold}.txt"
    files = sorted((root / 'splits').glob(f"*{suffix}"))
    if not files:
        raise DataNotFound(f"no split files *{suffix} in {root / 'splits'}")
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
    _require_on_disk(samples, root, f"{root / 'splits'}/*{suffix} (mark {wanted})", frames)
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
        raise DataInvalid(f"{path}:1: expected a header with columns {', '.join(KINETICS_COLUMNS)}")
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


KINETICS_VAL_CSVS = ('val.csv', 'validate.csv')  # CVDF's name, DeepMind's name: whichever is there
# CVDF's re-encoded copies of about 1400 corrupted Kinetics-400 training clips, as k400_extractor.sh extracts them
KINETICS_REPLACEMENTS = 'replacement/replacement_for_corrupted_k400'


def _kinetics_val_csv(root):
    """The validation CSV of a Kinetics root, and one printed line saying which was read."""
    found = [root / 'annotations' / name for name in KINETICS_VAL_CSVS if (root / 'annotations' / name).is_file()]
    if not found:
        raise DataNotFound(f"{root / 'annotations'} has neither {' nor '.join(KINETICS_VAL_CSVS)} (the validation "
                           f"split's CSV), found {_contents(root / 'annotations')}")
    also = f" ({found[1].name} is there too, not read)" if len(found) > 1 else ''
    print(f"{root}: the val split is {found[0].relative_to(root)}{also}")
    return found[0]


def kinetics_folder_names(label):
    """The names a class folder of `label` has on disk, in the order tried: the label itself (CVDF's per-class
    archives, the ActivityNet crawler: 'playing ice hockey'), spaces made underscores (mmaction2's renaming:
    'playing_ice_hockey'), and also without ' ( ) (torchvision's Kinetics: "tying bow tie" -> 'tying_bow_tie')."""
    underscored = label.replace(' ', '_')
    return list(dict.fromkeys([label, underscored, underscored.translate(str.maketrans('', '', "'()"))]))


def read_kinetics(root, split, frames=False, lists=None, flat=None):
    """Kinetics-400/600/700 layouts, read as downloaded (see README.md#real-data):
        annotations/train.csv                     'label,youtube_id,time_start,time_end,split[,is_cc]',
                                                  labels with spaces double-quoted (read with the csv module)
        annotations/val.csv or validate.csv       the validation split (CVDF's name, DeepMind's name)
        {train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4           flat (CVDF's Kinetics-400), or
        {train,val}/<class folder>/<youtube_id>_<start:06d>_<end:06d>.mp4   per class (CVDF's Kinetics-600/700,
                                                  the ActivityNet crawler), the folder named as the label, or with
                                                  underscores for spaces (see kinetics_folder_names)
    The layout is found on disk, clip by clip: a clip is looked for in its class folder, then directly in the split's
    folder, so a mix of the two is read too. flat=True looks only directly in the split's folder, flat=False only
    in class folders (None: both). A training clip with a copy in CVDF's replacement/replacement_for_corrupted_k400/
    (matched by youtube id, as CVDF's arrange_by_classes.py matches them) is read from that copy. The classes are
    the sorted labels of train.csv. Real downloads always miss some videos (taken off YouTube), so a row whose clip
    is not on disk (with frames=True: whose frame folder is not) is skipped, and loudly: one line "<csv>: N of M
    clips missing on disk" when N > 0; when all are missing, DataNotFound says where the clips were expected and
    where they are. lists: {'train': ids, 'val': ids} keeps only the rows of those youtube ids, and the classes of
    the kept training rows (see read_minikinetics).
    """
    root = _check_root(root, split, 'minikinetics' if lists else 'kinetics')
    train_csv = root / 'annotations' / 'train.csv'
    keep = {'train': None, 'val': None} if lists is None else lists  # youtube ids to keep, None: all
    classes = sorted({row[1] for row in _kinetics_rows(train_csv, keep['train'])})
    label_of = {name: label for label, name in enumerate(classes)}
    path = train_csv if split == 'train' else _kinetics_val_csv(root)
    rows = _kinetics_rows(path, keep[split])
    if not rows:
        raise DataInvalid(f"{path}: no clips" + (f" of the {len(lists[split])} listed youtube ids" if lists else ''))
    top = root / split
    names = _listing(root, top, frames)  # the clips of a flat layout, or the class folders
    folders = {}  # label -> (its class folder, the names in it); (None, set()) when it has none
    replacements = {}  # youtube id -> the name of its replacement clip (training split, videos only)
    if split == 'train' and not frames:
        replacements = {name[:11]: name for name in _listing(root, root / KINETICS_REPLACEMENTS, False)
                        if name.endswith('.mp4')}
    samples = []
    replaced = 0
    for n, label, youtube_id, name in rows:
        if label not in label_of:
            raise _bad_line(path, n, f'label {label!r} is not in {train_csv}' + (' (listed rows)' if lists else ''),
                            label)
        if label not in folders:
            folder = next((top / f for f in kinetics_folder_names(label) if f in names), None)
            folders[label] = (folder, _listing(root, folder, frames) if folder and flat is not True else set())
        folder, inside = folders[label]
        key = name.removesuffix('.mp4') if frames else name  # a frame folder is named as its clip, no suffix
        if youtube_id in replacements:
            samples.append((str(root / KINETICS_REPLACEMENTS / replacements[youtube_id]), label_of[label]))
            replaced += 1
        elif key in inside:
            samples.append((str(folder / name), label_of[label]))
        elif flat is not False and key in names:
            samples.append((str(top / name), label_of[label]))
    missing = len(rows) - len(samples)
    if not samples:
        label, name = rows[0][1], rows[0][3]
        expected = {True: top / name, False: top / label / name, None: top / name}[flat]
        where = {True: f"directly in {top}", False: f"in the class folders of {top}",
                 None: f"directly in {top} or in its class folders"}[flat]
        raise _nowhere(root, f"{path}: none of its {len(rows)} clips is on disk {where}",
                       frame_folder(root, expected) if frames else expected, frames)
    if missing:
        print(f"{path}: {missing} of {len(rows)} clips missing on disk")
    if replaced:
        print(f"{path}: {replaced} clips read from their replacements in {root / KINETICS_REPLACEMENTS}")
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
        raise DataInvalid(f"{path}: expected an object with a 'database' object of videos")
    for video, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get('annotations', []), list):
            raise DataInvalid(f"{path}: database/{video}: expected an object with 'subset' and 'annotations' [...]")
        for k, a in enumerate(entry.get('annotations', [])):
            segment = a.get('segment') if isinstance(a, dict) else None
            if (not isinstance(a.get('label') if isinstance(a, dict) else None, str) or not isinstance(segment, list)
                    or len(segment) != 2 or not all(isinstance(t, (int, float)) for t in segment)
                    or not 0 <= segment[0] <= segment[1]):
                raise DataInvalid(f"{path}: database/{video}/annotations/{k}: expected {{'label': name, 'segment': "
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
    samples = []
    missing = 0
    empty = []
    segments = 0
    for video, annotations in videos.items():
        name = stems.get(f"v_{video}") or stems.get(video)
        if name is None:
            missing += 1
            continue
        for k, a in enumerate(annotations):
            if a['label'] not in label_of:
                raise DataInvalid(f"{path}: database/{video}/annotations/{k}: label {a['label']!r} has no "
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
        raise DataNotFound(f"{path}: none of its {len(videos)} {subset} videos is in {root / 'videos'}"
                                + (" (frame folders)" if frames else ''))
    if missing:
        print(f"{path}: {missing} of {len(videos)} {subset} videos missing on disk")
    if empty:
        print(f"{path}: skipped {len(empty)} {subset} segment(s) of zero length, e.g. {', '.join(empty[:3])}")
    print(f"{path}: {segments} {subset} segments cut into {len(samples)} clips of <= {clip_len:g} s")
    return samples, classes


def read_ssv2(root, split, frames=False):
    """Something-Something v2 layout:
        labels.json                               {"Approaching something with your camera": "0", ...}
        train.json, validation.json               [{"id": "78687", "label": ..., "template": "Approaching
                                                  [something] with your camera", "placeholders": [...]}, ...]
        videos/<id>.webm                          VP9 WebM
    The class of an entry is its template with '[' and ']' removed. With frames=True the videos' frame folders
    must be on disk.
    """
    root = _check_root(root, split, 'ssv2')
    index = _json(root / 'labels.json')
    if not isinstance(index, dict) or sorted(map(str, index.values())) != sorted(map(str, range(len(index)))):
        raise DataInvalid(f"{root / 'labels.json'}: expected {{name: index}} with the indices 0..N-1 as strings")
    classes = sorted(index, key=lambda name: int(index[name]))
    path = root / ('train.json' if split == 'train' else 'validation.json')
    entries = _json(path)
    if not isinstance(entries, list):
        raise DataInvalid(f"{path}: expected a JSON array of entries")
    samples = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'id' not in entry or 'template' not in entry:
            raise DataInvalid(f"{path}: entry {i}: expected an object with 'id' and 'template': {entry!r}")
        name = entry['template'].replace('[', '').replace(']', '')
        if name not in index:
            raise DataInvalid(f"{path}: entry {i}: class {name!r} (template {entry['template']!r}) "
                             f"is not in {root / 'labels.json'}")
        samples.append((str(root / 'videos' / f"{entry['id']}.webm"), int(index[name])))
    _require_on_disk(samples, root, path, frames)
    return samples, classes


MOMENTS_CATEGORIES = ('moments_categories.txt', 'categories.txt')  # the real file's name, then the older one


def read_moments(root, split, frames=False):
    """Moments in Time layout, as Moments_in_Time_Raw.zip extracts (its README.txt lists these files):
        moments_categories.txt                    'name,index' per line, or 'name' alone (index = line order);
                                                  categories.txt is read when moments_categories.txt is absent
        trainingSet.csv, validationSet.csv        no header: 'class/file.mp4,class,agreeing,disagreeing'
        training/<class>/<file>.mp4, validation/<class>/<file>.mp4
    With frames=True the videos' frame folders must be on disk.
    """
    root = _check_root(root, split, 'moments')
    categories = next((root / name for name in MOMENTS_CATEGORIES if (root / name).is_file()),
                      root / MOMENTS_CATEGORIES[0])
    index = {}
    for order, (n, line) in enumerate(_lines(categories)):
        name, _, number = line.rpartition(',') if ',' in line else (line, '', str(order))
        if not name or not number.isdigit() or name in index or int(number) in index.values():
            raise _bad_line(categories, n, 'expected a new "name,index" or "name"', line)
        index[name] = int(number)
    if sorted(index.values()) != list(range(len(index))):
        raise DataInvalid(f"{categories}: the indices must be 0..{len(index) - 1}")
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
    _require_on_disk(samples, root, path, frames)
    return samples, classes


def _list_lines(root, path):
    """(line number, relative path, label) of a list file: 'relative/path label' per line. The label is the last
    field, so a path may hold spaces (Kinetics' class folders do)."""
    out = []
    for n, line in _lines(path):
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2 or not fields[1].isdigit():
            raise _bad_line(path, n, 'expected "relative/path label" with an integer label', line)
        if fields[0].rsplit(maxsplit=1)[-1].isdigit():  # 'path 3 7': mmaction2's multi-label lines
            raise _bad_line(path, n, 'expected one label per line (multi-label lists are not read)', line)
        out.append((n, fields[0], int(fields[1])))
    return out


def is_image(path):
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_list(root, split, frames=False, train_list='train.txt', val_list='val.txt', label_map='classes.txt'):
    """Any dataset given as lists of files, one sample a line: how a dataset without a reader of its own is read.
    The lines of mmaction2's *_list_videos.txt and of PySlowFast's train.csv / val.csv are of this form.
        train.txt, val.txt     'relative/path label': a path relative to the root (it may hold spaces: the label is
                               the line's last field; an absolute path is taken as it is) and an integer label 0..C-1
        classes.txt            optional: the class names, one per line, line k naming label k (mmaction2's label
                               map); without it the classes are named by their numbers, 0 .. the largest label
        the files              anywhere under the root; images (.jpg, .jpeg, .png, in any case) or videos (any
                               other suffix: whatever PyAV decodes)
    train_list, val_list and label_map rename the three files. A list of images makes an image dataset, a list of
    videos a video dataset (list_kind); a dataset holds one kind, so images and videos in the lists of one root
    are an error, with a line of each named: give them two roots and two datasets. With frames=True the videos'
    frame folders are read instead (see decode.frame_folder). A file missing on disk is replaced when met, as any
    unreadable sample (data.py); a split none of whose files is on disk stops with what was expected and found.
    """
    lists = {'train': train_list, 'val': val_list}
    root = _check_root(root, split, 'list', train_list)
    lines = {key: _list_lines(root, root / name) for key, name in lists.items() if key in ('train', split)}
    if (root / label_map).is_file():
        classes = [name for _, name in _lines(root / label_map)]
        if len(set(classes)) != len(classes):
            raise DataInvalid(f"{root / label_map}: a class name appears twice")
    else:
        classes = [str(k) for k in range(max((y for _, _, y in lines['train']), default=-1) + 1)]
    kinds = {}  # 'image' or 'video' -> (list file, line number, path) of its first line
    for key, rows in lines.items():
        for n, rel, label in rows:
            kinds.setdefault('image' if is_image(rel) else 'video', (root / lists[key], n, rel))
            if label >= len(classes):
                names = f"{len(classes)} classes in {root / label_map}" if (root / label_map).is_file() else \
                    f"the largest label of {root / train_list} is {len(classes) - 1}"
                raise _bad_line(root / lists[key], n, f"label {label} is out of range ({names})", f"{rel} {label}")
    if len(kinds) > 1:
        (f1, n1, p1), (f2, n2, p2) = kinds['image'], kinds['video']
        raise DataInvalid(f"{f1}:{n1}: an image ({p1}) and {f2}:{n2}: a video ({p2}): a dataset holds images or "
                          f"videos, not both; list each kind under its own root, as two datasets")
    if frames and 'image' in kinds:
        raise DataInvalid(f"{root / lists[split]}: frames=True reads the frame folders of videos, but the list holds "
                          f"images ({kinds['image'][2]})")
    samples = [(str(root / rel), label) for _, rel, label in lines[split]]
    if not samples:
        raise DataInvalid(f"{root / lists[split]}: no samples")
    _require_on_disk(samples, root, root / lists[split], frames)
    return samples, classes


def list_kind(samples):
    """'image' or 'video': the kind of a list's samples (read_list allows one kind per dataset)."""
    return 'image' if is_image(samples[0][0]) else 'video'


# Each on-disk layout's reader(spec, split), by config.FORMATS's names (synthetic.WRITERS writes a fake copy).
FORMATS = {
    'tinyimagenet': lambda spec, split: read_tinyimagenet(spec['root'], split),
    'ucf101': lambda spec, split: read_ucf101(spec['root'], split, spec['fold'], spec['frames']),
    'imagefolder': lambda spec, split: read_imagefolder(spec['root'], split),
    'cifar100': lambda spec, split: read_cifar100(spec['root'], split),
    'hmdb51': lambda spec, split: read_hmdb51(spec['root'], split, spec['fold'], spec['frames']),
    'kinetics': lambda spec, split: read_kinetics(spec['root'], split, spec['frames'], flat=spec['flat']),
    'minikinetics': lambda spec, split: read_minikinetics(spec['root'], split, spec['frames']),
    'ssv2': lambda spec, split: read_ssv2(spec['root'], split, spec['frames']),
    'moments': lambda spec, split: read_moments(spec['root'], split, spec['frames']),
    'activitynet': lambda spec, split: read_activitynet(spec['root'], split, spec['frames'], spec['clip_len']),
    'list': lambda spec, split: read_list(spec['root'], split, spec['frames'], spec['train_list'], spec['val_list'],
                                          spec['label_map']),
}

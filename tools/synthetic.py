"""
Synthetic datasets written in the on-disk layouts of the real ones, so that the readers of readers.py, which read the
real downloads, can be run, tested and demonstrated on a machine without them.

    python -m tools.synthetic tinyimagenet OUT_DIR --seed 0          # a synthetic Tiny-ImageNet-200 layout
    python -m tools.synthetic ucf101 OUT_DIR --seed 0 --frames       # a synthetic UCF101 layout, and its frame folders
    python -m tools.synthetic kinetics OUT_DIR --layout=cvdf_k400    # Kinetics as CVDF's K400 extractor leaves it
    python -m tools.synthetic list OUT_DIR --kind=images             # a dataset given as lists of image files

Images are coloured shapes on noisy backgrounds (classes that differ in appearance); videos are shapes that move
(classes that differ only in motion: MoveLeft is MoveRight played backwards, Grow is Shrink backwards) or bounce
(classes that differ in appearance). Everything is rendered with numpy, vectorised over pixels and frames, and
encoded with PyAV in each format's real codec: MPEG-4 Part 2 AVI (UCF101, HMDB51), H.264 MP4 with an AAC track
(Kinetics), VP9 WebM (Something-Something v2). The same seed writes the same bytes.
"""

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import decode
from tools import encode

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


def write_synthetic_tinyimagenet(root, seed=0, num_classes=10, train_per_class=100, val_per_class=20, size=64,
                                 classes=None):
    """Write a Tiny-ImageNet-200 layout of num_classes appearance classes (see readers.read_tinyimagenet); classes,
    a list of object names of OBJECTS (e.g. ['RedSquare', 'BlueRing']), picks the objects instead: images of the
    objects that the videos of those classes show."""
    root = Path(root)
    classes = TINY_CLASSES[:num_classes] if classes is None else [OBJECTS[name] for name in classes]
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

# Appearance-only video classes, one per object: 'RedSquare' is a red square that moves along one of
# OBJECT_MOTIONS, drawn per video, so that only the object tells the class (and reversing a clip gives a clip of
# the same class). All 36 objects of COLOURS x SHAPES; the first ten are TINY_CLASSES, in their order, so that
# write_synthetic_tinyimagenet(classes=[...]) writes images of the same objects.
OBJECTS = {f"{colour.capitalize()}{shape.capitalize()}": (colour, shape)
           for colour, shape in TINY_CLASSES + [(c, s) for s in SHAPES for c in COLOURS if (c, s) not in TINY_CLASSES]}
OBJECT_MOTIONS = ('MoveLeft', 'MoveRight', 'Grow', 'Shrink', 'BounceBall')


def _class_key(cls):
    """The number of a video class in the writers' seeds: UCF_CLASSES first, then OBJECTS."""
    return UCF_CLASSES.index(cls) if cls in UCF_CLASSES else len(UCF_CLASSES) + list(OBJECTS).index(cls)


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


def render_video(cls, rng, width=64, height=48, num_frames=75, colours=None, shapes=None):
    """Frames (T, H, W, 3) uint8 of one synthetic video of class cls (of UCF_CLASSES or OBJECTS), drawing
    everything from rng; colours, shapes: the pools the object is drawn from (default: the class's own)."""
    if cls in OBJECTS:  # a fixed object, in a motion drawn per video
        colour, shape = OBJECTS[cls]
        motion = OBJECT_MOTIONS[rng.integers(len(OBJECT_MOTIONS))]
        return render_video(motion, rng, width, height, num_frames, (colour,), (shape,))
    if cls in REVERSED:
        return render_video(REVERSED[cls], rng, width, height, num_frames, colours, shapes)[::-1].copy()
    colours, shapes = colours or COLOUR_POOL[cls], shapes or SHAPE_POOL[cls]
    background = _background(rng, height, width)                        # (H, W, 3)
    colour = _colour(rng, colours[rng.integers(len(colours))])
    shape = shapes[rng.integers(len(shapes))]
    cx, cy, r = TRAJECTORIES[cls](rng, width, height, np.linspace(0, 1, num_frames))  # each (T,)
    yy, xx = np.mgrid[0:height, 0:width]                                # (H, W)
    mask = SHAPES[shape](xx - cx[:, None, None], yy - cy[:, None, None], r[:, None, None])  # (T, H, W)
    return np.where(mask[..., None], colour, background)                # (T, H, W, 3)


def write_synthetic_ucf101(root, seed=0, classes=UCF_CLASSES, groups=25, clips=2, width=64, height=48,
                           fps=25, seconds=3.0):
    """
    Write a UCF101 layout (see readers.read_ucf101): classes x groups x clips videos and the 3 official splits,
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
                rng = np.random.default_rng([seed, _class_key(cls), g, c])
                frames = render_video(cls, rng, width, height, round(seconds * fps))
                encode.write_video(root / 'UCF-101' / rel, frames, fps, 'mpeg4')
                videos.append((rel, label + 1, g))
    for k in (1, 2, 3):
        test_groups = range(7 * (k - 1) + 1, 7 * k + 1)
        train = ''.join(f"{p} {y}\n" for p, y, g in videos if g not in test_groups)
        test = ''.join(f"{p}\n" for p, y, g in videos if g in test_groups)
        (lists / f"trainlist0{k}.txt").write_text(train)
        (lists / f"testlist0{k}.txt").write_text(test)


def _synthetic_video(cls, seed, dataset, n, width, height, fps, seconds):
    """Frames of synthetic video n of UCF-style class cls; `dataset` keeps the formats' pixels distinct."""
    rng = np.random.default_rng([seed, dataset, _class_key(cls), n])
    return render_video(cls, rng, width, height, round(seconds * fps))


def write_synthetic_cifar100(root, seed=0, num_classes=10, train_per_class=20, test_per_class=5):
    """Write CIFAR-100 python pickles (see readers.read_cifar100) of num_classes 32 x 32 appearance classes."""
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
    """Write an ImageNet-style class-folder tree of JPEGs (see readers.read_imagefolder)."""
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
    Write an HMDB51 layout (see readers.read_hmdb51) of mpeg4 AVIs. In split k, video n is marked
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
            encode.write_video(root / 'videos' / name / video, frames, fps, 'mpeg4')
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


# The shapes Kinetics comes in (readers.read_kinetics reads each with no setting): whether the clips sit in class
# folders named as their labels, and the name of the validation CSV.
KINETICS_LAYOUTS = {
    'cvdf_k400': dict(per_class=False, val_csv='val.csv'),     # CVDF's Kinetics-400 as k400_extractor.sh leaves it
    'cvdf_k700': dict(per_class=True, val_csv='val.csv'),      # CVDF's Kinetics-700-2020 (per-class archives)
    'deepmind': dict(per_class=True, val_csv='validate.csv'),  # DeepMind's CSVs, clips by the ActivityNet crawler
}


def write_synthetic_kinetics(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                             height=48, fps=25, seconds=2.0, layout='deepmind'):
    """Write a Kinetics layout (see readers.read_kinetics) in one of the KINETICS_LAYOUTS shapes: H.264 MP4 clips
    with an AAC sine track named <youtube_id>_<start:06d>_<end:06d>.mp4, class folders named as the labels
    (spaces and all), annotations/train.csv, the validation CSV and, as CVDF ships it, a test.csv whose clips
    are not written. Returns {split: [(label, youtube_id)]} in the CSVs' row order."""
    root = Path(root)
    per_class, val_csv = KINETICS_LAYOUTS[layout]['per_class'], KINETICS_LAYOUTS[layout]['val_csv']
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    alphabet = np.array(list('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'))
    header = 'label,youtube_id,time_start,time_end,split,is_cc\n'
    rows = {}
    for split, csv_name, per_split in (('train', 'train.csv', train_per_class), ('val', val_csv, val_per_class)):
        lines, rows[split] = [header], []
        for cls in classes:
            label = KINETICS_NAMES[cls]
            folder = root / split / label if per_class else root / split
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_split):
                rng = np.random.default_rng([seed, 7, split == 'train', UCF_CLASSES.index(cls), n])
                youtube_id, start = ''.join(rng.choice(alphabet, 11)), int(rng.integers(0, 300))
                frames = _synthetic_video(cls, seed, 8 + (split == 'train'), n, width, height, fps, seconds)
                encode.write_video(folder / f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4", frames, fps,
                                   'libx264', audio=True)
                lines.append(f"{_csv_field(label)},{youtube_id},{start},{start + 10},{split},0\n")
                rows[split].append((label, youtube_id))
        (root / 'annotations' / csv_name).write_text(''.join(lines))
    (root / 'test').mkdir(exist_ok=True)
    (root / 'annotations' / 'test.csv').write_text(header)
    return rows


# Something-Something v2 style templates; the class is the template without brackets.
SSV2_TEMPLATES = {'MoveLeft': 'Pushing [something] from right to left',
                  'MoveRight': 'Pushing [something] from left to right',
                  'Grow': 'Approaching [something] with your camera',
                  'Shrink': 'Moving away from [something] with your camera',
                  'BounceBall': 'Throwing [something] in the air and catching it',
                  'BounceBox': 'Lifting [something] up completely, then letting it drop down'}


def write_synthetic_ssv2(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                         height=48, fps=12, seconds=2.0):
    """Write a Something-Something v2 layout (see readers.read_ssv2): VP9 WebM videos (12 fps, as SSv2), the JSONs."""
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
                encode.write_video(root / 'videos' / f"{next_id}.webm", frames, fps, 'libvpx-vp9')
                entries.append({'id': str(next_id), 'label': template.replace('[something]', 'a shape'),
                                'template': template, 'placeholders': ['a shape']})
                next_id += 1
        (root / json_name).write_text(json.dumps(entries, indent=1))


MOMENTS_NAMES = {'MoveLeft': 'leaving', 'MoveRight': 'entering', 'Grow': 'inflating', 'Shrink': 'deflating',
                 'BounceBall': 'bouncing', 'BounceBox': 'dropping'}
MOMENTS_NAMES.update({name: f'{colour} {shape}' for name, (colour, shape) in OBJECTS.items()})  # 'red square'


def write_synthetic_moments(root, seed=0, classes=UCF_CLASSES, train_per_class=8, val_per_class=2, width=64,
                            height=48, fps=25, seconds=2.0):
    """Write a Moments in Time layout (see readers.read_moments) of H.264 MP4 videos (3 s in the real set)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = [MOMENTS_NAMES[cls] for cls in classes]
    (root / 'moments_categories.txt').write_text(''.join(f"{name},{i}\n" for i, name in enumerate(names)))
    for split, folder, csv_name, per_class in (('train', 'training', 'trainingSet.csv', train_per_class),
                                               ('val', 'validation', 'validationSet.csv', val_per_class)):
        lines = []
        for cls, name in zip(classes, names):
            (root / folder / name).mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                rel = f"{name}/yt-{split}{n:04d}_{seed}.mp4"
                frames = _synthetic_video(cls, seed, 12 + (split == 'train'), n, width, height, fps, seconds)
                encode.write_video(root / folder / rel, frames, fps, 'libx264')
                lines.append(f"{rel},{name},3,0\n")
        (root / csv_name).write_text(''.join(lines))


def write_synthetic_minikinetics(root, seed=0, classes=UCF_CLASSES, **kinetics):
    """Write a Kinetics layout (see write_synthetic_kinetics) and the mini-Kinetics lists (see
    readers.read_minikinetics, whose file names these are) that select all classes but the last and, of their
    training clips, three in four."""
    rows = write_synthetic_kinetics(root, seed, classes, **kinetics)
    kept = {KINETICS_NAMES[cls] for cls in classes[:-1]}
    for split, list_name in (('train', 'train_ytid_list.txt'), ('val', 'val_ytid_list.txt')):
        ids = [youtube_id for k, (label, youtube_id) in enumerate(rows[split])
               if label in kept and (split == 'val' or k % 4 != 3)]
        (Path(root) / list_name).write_text(''.join(f"{i}\n" for i in ids))


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
    Write an ActivityNet v1.3 layout (see readers.read_activitynet): untrimmed H.264 MP4 videos, named v_<id>.mp4 and
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
                encode.write_video(root / 'videos' / name, _untrimmed(action, num_frames, segments), fps, 'libx264')
                annotations = [] if subset == 'testing' else [
                    {'segment': [round(a / fps, 2), round(b / fps, 2)], 'label': ACTIVITYNET_NAMES[cls]}
                    for a, b in segments]
                database[video] = {'subset': subset, 'duration': seconds, 'resolution': f"{width}x{height}",
                                   'url': f"https://www.youtube.com/watch?v={video}", 'annotations': annotations}
    taxonomy = [{'nodeId': i + 1, 'nodeName': ACTIVITYNET_NAMES[cls], 'parentId': 0, 'parentName': 'Root'}
                for i, cls in enumerate(classes)]
    content = {'version': 'VERSION 1.3', 'taxonomy': taxonomy, 'database': database}
    (root / 'activity_net.v1-3.min.json').write_text(json.dumps(content))


def write_synthetic_list(root, seed=0, kind='videos', classes=None, train_per_class=8, val_per_class=2, width=64,
                         height=48, fps=25, seconds=2.0, size=64, label_map=True):
    """Write a dataset given as lists (see readers.read_list): train.txt and val.txt of 'relative/path label' lines
    and, with label_map, classes.txt. kind='videos': H.264 MP4 videos of UCF-style classes (default UCF_CLASSES) in
    videos/<Kinetics-style name>/, spaces and all; kind='images': JPEGs of Tiny-ImageNet-style classes (default the
    first 10 of TINY_CLASSES) in images/<colour>_<shape>/."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if kind == 'videos':
        classes = list(classes or UCF_CLASSES)
        names = [KINETICS_NAMES[cls] for cls in classes]
    elif kind == 'images':
        classes = list(classes or TINY_CLASSES)
        names = [f"{colour}_{shape}" for colour, shape in classes]
    else:
        raise ValueError(f"kind must be 'videos' or 'images', got {kind!r}")
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        lines = []
        for label, (cls, name) in enumerate(zip(classes, names)):
            for n in range(per_class):
                if kind == 'videos':
                    rel = f"videos/{name}/{split}_{n:04d}.mp4"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    frames = _synthetic_video(cls, seed, 15 + (split == 'train'), n, width, height, fps, seconds)
                    encode.write_video(root / rel, frames, fps, 'libx264')
                else:
                    rel = f"images/{name}/{split}_{n:04d}.jpg"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    image, _ = render_image(*cls, np.random.default_rng([seed, 17, split == 'train', label, n]), size)
                    Image.fromarray(image).save(root / rel, quality=90)
                lines.append(f"{rel} {label}\n")
        (root / f"{split}.txt").write_text(''.join(lines))
    if label_map:
        (root / 'classes.txt').write_text(''.join(f"{name}\n" for name in names))


# each format's writer, by the format names of config.FORMATS
WRITERS = dict(tinyimagenet=write_synthetic_tinyimagenet, ucf101=write_synthetic_ucf101,
               imagefolder=write_synthetic_imagefolder, cifar100=write_synthetic_cifar100,
               hmdb51=write_synthetic_hmdb51, kinetics=write_synthetic_kinetics,
               minikinetics=write_synthetic_minikinetics, ssv2=write_synthetic_ssv2, moments=write_synthetic_moments,
               activitynet=write_synthetic_activitynet, list=write_synthetic_list)


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description="Write a synthetic dataset in the on-disk layout of a real one "
                                     "(image formats: 10 classes of coloured shapes; video formats: 6 classes of "
                                     "moving shapes, e.g. ucf101: 300 MPEG-4 AVI videos with 3 splits).")
    parser.add_argument('format', choices=list(WRITERS), help="the layout to write")
    parser.add_argument('out_dir', help="dataset root to write (use it as the dataset's root in a config)")
    parser.add_argument('--seed', type=int, default=0, help="the same seed writes the same pixels and split files")
    parser.add_argument('--frames', action='store_true', help="also extract every video into its frame folder "
                        "(read with frames=True, frames_fps = the videos' fps: 25, ssv2 12)")
    parser.add_argument('--layout', choices=list(KINETICS_LAYOUTS), help="kinetics, minikinetics: the shape to write "
                        "(default deepmind: class folders, validate.csv)")
    parser.add_argument('--kind', choices=('videos', 'images'), help="list: a list of videos (default) or of images")
    args = parser.parse_args()
    options = {key: value for key, value in (('layout', args.layout), ('kind', args.kind)) if value is not None}
    t0 = time.time()
    WRITERS[args.format](args.out_dir, seed=args.seed, **options)
    if args.frames:
        decode.write_frame_folders(args.out_dir)
    print(f"wrote a synthetic {args.format} dataset to {args.out_dir} in {time.time() - t0:.1f} s")

"""Tests of the readers of data.py beyond Tiny-ImageNet and UCF101: each writes its synthetic layout (or a
hand-made one for the corner cases of the real files), reads it back and checks classes, labels and paths."""

import json
import pickle
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from PIL import Image

import config
import data
import decode
import readers
from readers import kinetics_folder_names
from conftest import read_log, run, write_config
from tools import synthetic

CLASSES = ('MoveLeft', 'Grow', 'BounceBall')  # 3 of the 6 synthetic video classes keep the writers fast
VIDEO = dict(classes=CLASSES, seconds=1.0)  # 64 x 48 frames, the renderer's smallest sensible size


def make_cfg(**kw):
    cfg = dict(img_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_workers=0, seed=0,
               num_temporal_clips=1, num_spatial_crops=1, device='cpu', grad_accum=1, sampling='round_robin')
    return SimpleNamespace(**{**cfg, **kw})


def write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def touch(path):
    """An empty stand-in for a video: the readers only list files, they never open them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def folder_of(path):
    return Path(path).parent.name


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    """One small synthetic copy of every new format, written once for this module."""
    base = tmp_path_factory.mktemp('readers')
    synthetic.write_synthetic_imagefolder(base / 'imagefolder', num_classes=3, train_per_class=2, val_per_class=1,
                                     size=32)
    synthetic.write_synthetic_cifar100(base / 'cifar100', num_classes=4, train_per_class=3, test_per_class=2)
    synthetic.write_synthetic_hmdb51(base / 'hmdb51', videos_per_class=4, **VIDEO)
    synthetic.write_synthetic_kinetics(base / 'kinetics', train_per_class=2, val_per_class=1, **VIDEO)
    for layout in ('cvdf_k400', 'cvdf_k700'):  # 'kinetics' above is the default shape, 'deepmind'
        synthetic.write_synthetic_kinetics(base / layout, train_per_class=2, val_per_class=1, layout=layout, **VIDEO)
    synthetic.write_synthetic_list(base / 'list_videos', train_per_class=2, val_per_class=1, **VIDEO)
    synthetic.write_synthetic_list(base / 'list_images', kind='images', classes=synthetic.TINY_CLASSES[:3],
                                   train_per_class=2, val_per_class=1, size=32)
    synthetic.write_synthetic_ssv2(base / 'ssv2', train_per_class=2, val_per_class=1, **VIDEO)
    synthetic.write_synthetic_moments(base / 'moments', train_per_class=2, val_per_class=1, **VIDEO)
    synthetic.write_synthetic_minikinetics(base / 'minikinetics', train_per_class=4, val_per_class=1, **VIDEO)
    synthetic.write_synthetic_activitynet(base / 'activitynet', classes=CLASSES, train_per_class=2, val_per_class=1,
                                     seconds=3.0)
    return base


# -----------------------------------------------------------------------------
# images: class-folder tree and CIFAR-100


def test_imagefolder_synthetic(roots):
    samples, classes = readers.read_imagefolder(roots / 'imagefolder', 'train')
    assert classes == sorted(f"{c}_{s}" for c, s in synthetic.TINY_CLASSES[:3])
    assert len(samples) == 3 * 2
    assert all(classes[label] == folder_of(path) and Path(path).is_file() for path, label in samples)
    val, val_classes = readers.read_imagefolder(roots / 'imagefolder', 'val')
    assert val_classes == classes and sorted(y for _, y in val) == [0, 1, 2]


def save_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 8)).save(path, format='PNG')


def test_imagefolder_suffixes_and_foreign_class(tmp_path):
    for name in ('b/x.jpg', 'b/y.png', 'a/z.JPEG'):
        save_image(tmp_path / 'train' / name)
    write(tmp_path / 'train' / 'b' / 'notes.txt', 'not an image')
    samples, classes = readers.read_imagefolder(tmp_path, 'train')
    assert classes == ['a', 'b']
    assert sorted((Path(p).name, y) for p, y in samples) == [('x.jpg', 1), ('y.png', 1), ('z.JPEG', 0)]
    save_image(tmp_path / 'val' / 'c' / 'q.png')
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / 'val' / 'c'))):
        readers.read_imagefolder(tmp_path, 'val')


def write_cifar(root, rows, labels, names):
    folder = Path(root) / 'cifar-100-python'
    folder.mkdir(parents=True)
    for split in ('train', 'test'):
        with open(folder / split, 'wb') as f:
            pickle.dump({b'data': rows, b'fine_labels': labels, b'filenames': [b'f.png'] * len(labels)}, f)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({b'fine_label_names': [n.encode() for n in names]}, f)


def test_cifar_synthetic(roots):
    samples, classes = readers.read_cifar100(roots / 'cifar100', 'train')
    assert classes == [f"{c}_{s}" for c, s in synthetic.TINY_CLASSES[:4]]
    assert [i for i, _ in samples] == list(range(4 * 3))
    assert sorted(y for _, y in samples) == sorted([0, 1, 2, 3] * 3)
    with open(roots / 'cifar100' / 'cifar-100-python' / 'test', 'rb') as f:
        test = pickle.load(f, encoding='bytes')
    val, _ = readers.read_cifar100(roots / 'cifar100', 'val')
    assert [y for _, y in val] == test[b'fine_labels']


def test_cifar_channel_major_pixels_and_dataset(tmp_path):
    rows = np.zeros((2, 3072), np.uint8)
    rows[1, 0] = 255                    # red plane, pixel (y=0, x=0)
    rows[1, 1024 + 32 * 5 + 7] = 77     # green plane, pixel (y=5, x=7)
    rows[1, 2048 + 32 * 31 + 30] = 9    # blue plane, pixel (y=31, x=30)
    write_cifar(tmp_path, rows, [1, 0], ['apple', 'aquarium_fish'])
    samples, classes = readers.read_cifar100(tmp_path, 'train')
    assert classes == ['apple', 'aquarium_fish'] and samples == [(0, 1), (1, 0)]
    image = readers.read_cifar_image(readers.cifar_file(tmp_path, 'train'), 1)
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert image[0, 0, 0] == 255 and image[1, 5, 7] == 77 and image[2, 31, 30] == 9 and image.sum() == 255 + 77 + 9

    spec = config.dataset_spec('c', dict(format='cifar100', root=str(tmp_path)))
    dataset = data.CifarDataset(samples, classes, False, spec, make_cfg())
    assert torch.equal(dataset.load(1), image)
    views, label = dataset[(1, 0)]
    assert views.shape == (1, 3, 32, 32) and label == 0
    assert views[0, 0, 0, 0] == pytest.approx((1.0 - 0.5) / 0.25)  # the planted red pixel, normalised


def test_cifar_loader_batches(roots):
    spec = config.dataset_spec('c', dict(format='cifar100', root=str(roots / 'cifar100'), batch_size=4))
    x, y = next(iter(data.make_loader(spec, 'train', make_cfg(img_size=16))))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and y.shape == (4,)


def test_imagefolder_and_cifar_missing_parts_are_named(roots, tmp_path):
    touch(tmp_path / 'images' / 'train' / 'cat' / 'a.jpg')
    with pytest.raises(readers.DataNotFound, match=re.escape(f"{tmp_path / 'images' / 'val'} is missing")):
        readers.read_imagefolder(tmp_path / 'images', 'val')
    shutil.copytree(roots / 'cifar100', tmp_path / 'cifar')
    (tmp_path / 'cifar' / 'cifar-100-python' / 'test').unlink()
    with pytest.raises(readers.DataNotFound, match=re.escape(f"{tmp_path / 'cifar' / 'cifar-100-python' / 'test'}")):
        readers.read_cifar100(tmp_path / 'cifar', 'val')


def test_cifar_label_out_of_range(tmp_path):
    write_cifar(tmp_path, np.zeros((2, 3072), np.uint8), [0, 5], ['apple', 'bear'])
    with pytest.raises(ValueError, match=r"cifar-100-python/train: fine label 5 of row 1 is out of range"):
        readers.read_cifar100(tmp_path, 'train')


# -----------------------------------------------------------------------------
# HMDB51


def test_hmdb_synthetic(roots):
    train, classes = readers.read_hmdb51(roots / 'hmdb51', 'train', fold=1)
    assert classes == ['bounce_ball', 'grow', 'move_left']
    val, _ = readers.read_hmdb51(roots / 'hmdb51', 'val', fold=1)
    assert len(train) == 3 * 2 and len(val) == 3 * 1 and not {p for p, _ in train} & {p for p, _ in val}
    assert all(Path(p).is_file() and classes[y] == folder_of(p) for p, y in train + val)
    assert {p for p, _ in readers.read_hmdb51(roots / 'hmdb51', 'val', fold=2)[0]} != {p for p, _ in val}
    with av.open(train[0][0]) as container:
        assert container.format.name == 'avi' and container.streams.video[0].codec_context.name == 'mpeg4'


def test_hmdb_split_marks(tmp_path):
    write(tmp_path / 'splits' / 'brush_hair_test_split2.txt', "a.avi 1 \r\nb.avi 2\n\nc.avi 0\nd.avi 1\n")
    write(tmp_path / 'splits' / 'brush_hair_test_split1.txt', "a.avi 2\n")
    write(tmp_path / 'splits' / 'fall_floor_test_split2.txt', "e.avi 2\n")
    for name in ('a.avi', 'b.avi'):  # a split none of whose videos is on disk is an error (see test_bad_input.py)
        touch(tmp_path / 'videos' / 'brush_hair' / name)
    train, classes = readers.read_hmdb51(tmp_path, 'train', fold=2)
    val, _ = readers.read_hmdb51(tmp_path, 'val', fold=2)
    assert classes == ['brush_hair', 'fall_floor']
    videos = tmp_path / 'videos'
    assert train == [(str(videos / 'brush_hair' / 'a.avi'), 0), (str(videos / 'brush_hair' / 'd.avi'), 0)]
    assert val == [(str(videos / 'brush_hair' / 'b.avi'), 0), (str(videos / 'fall_floor' / 'e.avi'), 1)]


def test_hmdb_bad_mark(tmp_path):
    path = write(tmp_path / 'splits' / 'run_test_split1.txt', "a.avi 1\nb.avi 3\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2:")):
        readers.read_hmdb51(tmp_path, 'train')


# -----------------------------------------------------------------------------
# Kinetics


def test_kinetics_synthetic_and_decode(roots):
    samples, classes = readers.read_kinetics(roots / 'kinetics', 'train')
    names = sorted(synthetic.KINETICS_NAMES[c] for c in CLASSES)
    assert classes == names and len(samples) == 3 * 2
    assert all(Path(p).is_file() and folder_of(p) == classes[y] for p, y in samples)
    assert all(re.fullmatch(r"[\w-]{11}_\d{6}_\d{6}\.mp4", Path(p).name) for p, _ in samples)
    path = samples[0][0]
    with av.open(path) as container:
        kinds = sorted((s.type, s.codec_context.name) for s in container.streams)
    assert kinds == [('audio', 'aac'), ('video', 'h264')]
    clips = decode.read_clips(path, dict(sampler='window', num_frames=4, clip_seconds=0.5),
                            decode.eval_positions('window', 2, 4))  # the first and the last window
    assert clips.shape == (2, 4, 3, 48, 64) and clips.dtype == torch.uint8
    assert not torch.equal(clips[0], clips[1])  # two different windows of a moving shape


KINETICS_CSV = '''label,youtube_id,time_start,time_end,split,is_cc
"pouring milk, carefully",-abcdefghij,5,15,train,0
"person's dog",ABCDEFGHIJK,0,10,train,0
abseiling,zzzzzzzzzzz,120,130,train,1
"person's dog",Bbbbbbbbbbb,30,40,train,0
'''


def test_kinetics_quoted_labels_and_missing_clips(tmp_path, capsys):
    csv_path = write(tmp_path / 'annotations' / 'train.csv', KINETICS_CSV)
    for rel in ("pouring milk, carefully/-abcdefghij_000005_000015.mp4",  # the second "person's dog" clip
                "person's dog/ABCDEFGHIJK_000000_000010.mp4",              # is missing
                "abseiling/zzzzzzzzzzz_000120_000130.mp4"):
        touch(tmp_path / 'train' / rel)
    samples, classes = readers.read_kinetics(tmp_path, 'train')
    assert classes == ['abseiling', "person's dog", 'pouring milk, carefully']
    assert [(folder_of(p), Path(p).name[:11], y) for p, y in samples] == [
        ('pouring milk, carefully', '-abcdefghij', 2), ("person's dog", 'ABCDEFGHIJK', 1),
        ('abseiling', 'zzzzzzzzzzz', 0)]
    assert capsys.readouterr().out.strip() == f"{csv_path}: 1 of 4 clips missing on disk"


def test_kinetics_flat_layout(tmp_path, capsys):
    """flat=True: every clip directly in train/, its label from the CSV; a clip in a label folder is not seen."""
    csv_path = write(tmp_path / 'annotations' / 'train.csv', KINETICS_CSV)
    for name in ('-abcdefghij_000005_000015.mp4', 'ABCDEFGHIJK_000000_000010.mp4', 'Bbbbbbbbbbb_000030_000040.mp4'):
        touch(tmp_path / 'train' / name)
    touch(tmp_path / 'train' / 'abseiling' / 'zzzzzzzzzzz_000120_000130.mp4')  # the foldered layout: not flat
    samples, classes = readers.read_kinetics(tmp_path, 'train', flat=True)
    assert [(Path(p).parent, Path(p).name[:11], y) for p, y in samples] == [
        (tmp_path / 'train', '-abcdefghij', 2), (tmp_path / 'train', 'ABCDEFGHIJK', 1),
        (tmp_path / 'train', 'Bbbbbbbbbbb', 1)]
    assert capsys.readouterr().out.strip() == f"{csv_path}: 1 of 4 clips missing on disk"


def test_kinetics_nothing_missing_is_quiet_and_all_missing_is_an_error(tmp_path, capsys):
    header = KINETICS_CSV.splitlines()[0]
    write(tmp_path / 'annotations' / 'train.csv', f"{header}\nabseiling,zzzzzzzzzzz,1,11,train,0\n")
    with pytest.raises(FileNotFoundError, match="none of its 1 clips"):
        readers.read_kinetics(tmp_path, 'train')
    touch(tmp_path / 'train' / 'abseiling' / 'zzzzzzzzzzz_000001_000011.mp4')
    assert len(readers.read_kinetics(tmp_path, 'train')[0]) == 1 and capsys.readouterr().out == ''


@pytest.mark.parametrize('split, text, line', [
    ('val', 'label,youtube_id,time_start,time_end,split\nabseiling,aaaaaaaaaaa,0,10,val\n'
            '"new class",b,0,10,val\n', 3),
    ('train', 'label,youtube_id,time_start,time_end,split\nabseiling,aaaaaaaaaaa,zero,10,train\n', 2),
    ('train', 'label,youtube_id,time_start,time_end,split\nabseiling,aaaaaaaaaaa,0,10\n', 2),
    ('train', 'youtube_id,time_start,time_end\naaaaaaaaaaa,0,10\n', 1),
])
def test_kinetics_bad_rows_name_file_and_line(tmp_path, split, text, line):
    if split == 'val':
        write(tmp_path / 'annotations' / 'train.csv', 'label,youtube_id,time_start,time_end,split\n'
                                                      'abseiling,aaaaaaaaaaa,0,10,train\n')
    path = write(tmp_path / 'annotations' / ('train.csv' if split == 'train' else 'validate.csv'), text)
    with pytest.raises(ValueError, match=re.escape(f"{path}:{line}:")):
        readers.read_kinetics(tmp_path, split)


def test_kinetics_shapes_are_read_with_no_setting(roots, capsys):
    """CVDF's K400 (flat, val.csv), CVDF's K700 (class folders, val.csv) and DeepMind's CSVs with crawled clips
    (class folders, validate.csv) give the same samples, found on disk; the val split says which CSV it read."""
    read = {}
    for shape in ('cvdf_k400', 'cvdf_k700', 'kinetics'):
        root = roots / shape
        read[shape] = {split: readers.read_kinetics(root, split) for split in ('train', 'val')}
        csv_name = 'validate.csv' if shape == 'kinetics' else 'val.csv'
        assert capsys.readouterr().out == f"{root}: the val split is annotations/{csv_name}\n"
        for split, (samples, classes) in read[shape].items():
            assert all(Path(p).is_file() for p, _ in samples)
            if shape == 'cvdf_k400':
                assert all(Path(p).parent == root / split for p, _ in samples)
            else:
                assert all(folder_of(p) == classes[y] for p, y in samples)
    names = {shape: {split: [(Path(p).name, y) for p, y in samples] for split, (samples, _) in splits.items()}
             for shape, splits in read.items()}
    assert names['cvdf_k400'] == names['cvdf_k700'] == names['kinetics']
    assert len(names['kinetics']['train']) == 3 * 2 and len(names['kinetics']['val']) == 3


def test_reader_lines_come_from_rank_0_only(roots, capsys):
    """What a reader prints is the same on every rank of a run: rank 0 says it, the others build the same loader
    in silence."""
    spec = config.dataset_spec('k', dict(format='kinetics', root=str(roots / 'cvdf_k400'), batch_size=1))
    sizes = [len(data.make_loader(spec, 'val', make_cfg(), rank, 2).dataset) for rank in (1, 0)]
    assert sizes == [3, 3]
    assert capsys.readouterr().out == f"{roots / 'cvdf_k400'}: the val split is annotations/val.csv\n"


def test_kinetics_class_folder_names_and_flat_override(tmp_path, capsys):
    """A class folder may be named as the label (CVDF, the ActivityNet crawler), with underscores for spaces
    (mmaction2), or also without ' ( ) (torchvision); a clip not in its class folder is looked for directly in the
    split's folder. flat=True looks only there, flat=False only in class folders."""
    write(tmp_path / 'annotations' / 'train.csv', KINETICS_CSV)
    assert kinetics_folder_names("person's dog (big)") == [
        "person's dog (big)", "person's_dog_(big)", 'persons_dog_big']
    touch(tmp_path / 'train' / 'pouring_milk,_carefully' / '-abcdefghij_000005_000015.mp4')  # mmaction2
    touch(tmp_path / 'train' / 'persons_dog' / 'ABCDEFGHIJK_000000_000010.mp4')              # torchvision
    touch(tmp_path / 'train' / 'abseiling' / 'zzzzzzzzzzz_000120_000130.mp4')                # the label itself
    touch(tmp_path / 'train' / 'Bbbbbbbbbbb_000030_000040.mp4')                              # flat
    samples, classes = readers.read_kinetics(tmp_path, 'train')
    assert [(str(Path(p).relative_to(tmp_path / 'train')), y) for p, y in samples] == [
        ('pouring_milk,_carefully/-abcdefghij_000005_000015.mp4', 2), ('persons_dog/ABCDEFGHIJK_000000_000010.mp4', 1),
        ('abseiling/zzzzzzzzzzz_000120_000130.mp4', 0), ('Bbbbbbbbbbb_000030_000040.mp4', 1)]
    assert capsys.readouterr().out == ''  # nothing missing: nothing to say
    assert [Path(p).name[:11] for p, _ in readers.read_kinetics(tmp_path, 'train', flat=True)[0]] == ['Bbbbbbbbbbb']
    assert len(readers.read_kinetics(tmp_path, 'train', flat=False)[0]) == 3
    assert capsys.readouterr().out.count('clips missing on disk') == 2
    spec = config.dataset_spec('k', dict(format='kinetics', root=str(tmp_path)))
    assert spec['flat'] is None and len(readers.FORMATS['kinetics'](spec, 'train')[0]) == 4
    with pytest.raises(config.ConfigError, match="flat must be None"):
        config.dataset_spec('k', dict(format='kinetics', root=str(tmp_path), flat='auto'))


def test_kinetics_cvdf_replacement_clips(tmp_path, capsys):
    """CVDF's re-encoded copies of corrupted K400 training clips are read instead of the clips, matched by youtube
    id, whether the corrupted clip is on disk or not; the count is printed."""
    csv_path = write(tmp_path / 'annotations' / 'train.csv', KINETICS_CSV)
    touch(tmp_path / 'train' / '-abcdefghij_000005_000015.mp4')
    touch(tmp_path / 'train' / 'ABCDEFGHIJK_000000_000010.mp4')
    replacements = tmp_path / 'replacement' / 'replacement_for_corrupted_k400'
    touch(replacements / 'ABCDEFGHIJK_000000_000010.mp4')
    touch(replacements / 'Bbbbbbbbbbb_000030_000040.mp4')
    samples, _ = readers.read_kinetics(tmp_path, 'train')
    assert [Path(p).relative_to(tmp_path).parts[0] for p, _ in samples] == ['train', 'replacement', 'replacement']
    assert capsys.readouterr().out == (f"{csv_path}: 1 of 4 clips missing on disk\n"
                                       f"{csv_path}: 2 clips read from their replacements in {replacements}\n")


def test_kinetics_val_csv_names(tmp_path, capsys):
    header = KINETICS_CSV.splitlines()[0]
    write(tmp_path / 'annotations' / 'train.csv', f"{header}\nabseiling,zzzzzzzzzzz,1,11,train,0\n")
    touch(tmp_path / 'val' / 'zzzzzzzzzzz_000001_000011.mp4')
    with pytest.raises(readers.DataNotFound, match=re.escape(f"{tmp_path / 'annotations'} has neither val.csv nor "
                                                             f"validate.csv")):
        readers.read_kinetics(tmp_path, 'val')
    write(tmp_path / 'annotations' / 'validate.csv', f"{header}\nabseiling,zzzzzzzzzzz,1,11,val,0\n")
    assert len(readers.read_kinetics(tmp_path, 'val')[0]) == 1
    assert capsys.readouterr().out == f"{tmp_path}: the val split is annotations/validate.csv\n"
    write(tmp_path / 'annotations' / 'val.csv', f"{header}\nabseiling,zzzzzzzzzzz,1,11,val,0\n")
    readers.read_kinetics(tmp_path, 'val')
    assert capsys.readouterr().out == (f"{tmp_path}: the val split is annotations/val.csv "
                                       f"(validate.csv is there too, not read)\n")


# -----------------------------------------------------------------------------
# lists of files (format='list')


def test_list_of_videos_and_of_images(roots):
    for name, kind, dataset_class in (('list_videos', 'video', data.VideoDataset),
                                      ('list_images', 'image', data.ImageDataset)):
        root = roots / name
        train, classes = readers.read_list(root, 'train')
        val, _ = readers.read_list(root, 'val')
        assert classes == (root / 'classes.txt').read_text().splitlines() and len(classes) == 3
        assert len(train) == 3 * 2 and len(val) == 3
        assert all(Path(p).is_file() and folder_of(p) == classes[y] for p, y in train + val)
        assert readers.list_kind(train) == kind
        spec = config.dataset_spec(name, dict(format='list', root=str(root), batch_size=3, num_frames=2,
                                              clip_seconds=0.5))
        loader = data.make_loader(spec, 'val', make_cfg(img_size=16))
        x, y = next(iter(loader))
        assert type(loader.dataset) is dataset_class and y.tolist() == [0, 1, 2]
        assert x.shape == ((3, 1, 3, 2, 16, 16) if kind == 'video' else (3, 1, 3, 16, 16))
    assert "moving something left" in readers.read_list(roots / 'list_videos', 'train')[0][0][0]  # a space in a path


def test_list_handwritten(tmp_path):
    """Paths with spaces, renamed list files, no label map (classes named by their numbers), CRLF lines."""
    write(tmp_path / 'lists' / 'a.txt', 'clips/x y.avi 2\r\n\r\nclips/z.mkv 0\r\n')
    write(tmp_path / 'lists' / 'b.txt', f"clips/z.mkv 1\n{tmp_path / 'clips' / 'x y.avi'} 0\n")  # absolute: as is
    touch(tmp_path / 'clips' / 'x y.avi')
    touch(tmp_path / 'clips' / 'z.mkv')
    spec = config.dataset_spec('l', dict(format='list', root=str(tmp_path), train_list='lists/a.txt',
                                         val_list='lists/b.txt'))
    samples, classes = readers.FORMATS['list'](spec, 'train')
    assert classes == ['0', '1', '2']
    assert samples == [(str(tmp_path / 'clips' / 'x y.avi'), 2), (str(tmp_path / 'clips' / 'z.mkv'), 0)]
    assert readers.FORMATS['list'](spec, 'val') == ([(str(tmp_path / 'clips' / 'z.mkv'), 1),
                                                     (str(tmp_path / 'clips' / 'x y.avi'), 0)], classes)


@pytest.mark.parametrize('train, val, words', [
    ('a.mp4 0\nb.mp4 one\n', 'a.mp4 0\n', 'train.txt:2: expected "relative/path label"'),
    ('a.mp4 0\nb.mp4 0 1\n', 'a.mp4 0\n', 'train.txt:2: expected one label per line'),
    ('a.mp4 0\n', 'a.mp4 0\nb.mp4 2\n', 'val.txt:2: label 2 is out of range (2 classes in'),
    ('a.mp4 0\nb.jpg 1\n', 'a.mp4 0\n', 'train.txt:2: an image (b.jpg) and'),
    ('a.mp4 0\n', 'a.PNG 0\n', 'val.txt:1: an image (a.PNG) and'),
])
def test_list_bad_lines_name_file_and_line(tmp_path, train, val, words):
    write(tmp_path / 'train.txt', train)
    write(tmp_path / 'val.txt', val)
    write(tmp_path / 'classes.txt', 'walking\nrunning\n')
    touch(tmp_path / 'a.mp4')
    with pytest.raises(readers.DataInvalid, match=re.escape(words)):
        for split in ('train', 'val'):
            readers.read_list(tmp_path, split)


def test_list_frames_and_bad_files(roots, tmp_path, capfd):
    """frame folders instead of the videos, and a broken listed file replaced like any unreadable sample."""
    root = tmp_path / 'list'
    shutil.copytree(roots / 'list_videos', root)
    decode.write_frame_folders(root)
    spec = config.dataset_spec('l', dict(format='list', root=str(root), frames=True, frames_fps=25, batch_size=3,
                                         num_frames=2, clip_seconds=0.5, max_bad_fraction=0.5))
    (root / readers.read_list(root, 'val')[0][0][0]).write_text('not a video')  # frames=True never opens it
    x, _ = next(iter(data.make_loader(spec, 'val', make_cfg(img_size=16))))
    assert x.shape == (3, 1, 3, 2, 16, 16)
    loader = data.make_loader(dict(spec, frames=False), 'val', make_cfg(img_size=16))
    x, _ = next(iter(loader))
    assert loader.dataset.num_bad() == 1 and 'cannot read' in capfd.readouterr().err
    with pytest.raises(readers.DataInvalid, match='frames=True reads the frame folders of videos'):
        readers.read_list(roots / 'list_images', 'train', frames=True)


def test_train_and_evaluate_on_each_kinetics_shape_and_on_lists(roots, tmp_path):
    """train.py, then eval.py, on the three Kinetics shapes and on a list of videos and one of images at once, as
    their writers leave them: no layout setting in the config. The val split's CSV is named once per read."""
    clips = dict(batch_size=2, num_frames=2, clip_seconds=0.5)
    datasets = {'k400_cvdf': dict(format='kinetics', root=str(roots / 'cvdf_k400'), **clips),
                'k700_cvdf': dict(format='kinetics', root=str(roots / 'cvdf_k700'), **clips),
                'k_deepmind': dict(format='kinetics', root=str(roots / 'kinetics'), **clips),
                'list_videos': dict(format='list', root=str(roots / 'list_videos'), **clips),
                'list_images': dict(format='list', root=str(roots / 'list_images'), batch_size=2)}
    out = tmp_path / 'out'
    path = write_config(tmp_path / 'config.py', roots, out, datasets=datasets, img_size=16, patch_size=8, dim=16,
                        depth=1, max_iters=2, eval_interval=2, log_interval=1, warmup_iters=0)
    printed = run('train.py', str(path)).stdout
    assert printed.count(f"{roots / 'cvdf_k400'}: the val split is annotations/val.csv") == 1
    assert printed.count(f"{roots / 'kinetics'}: the val split is annotations/validate.csv") == 1
    final = [event for event in read_log(out) if event['event'] == 'eval'][-1]
    assert final['iter'] == 2 and all(f'{name}/top1' in final for name in datasets)
    run('eval.py', f'--out_dir={out}')
    results = json.loads((out / 'eval.json').read_text())['results']
    assert set(results) == set(datasets) and results['list_images']['n'] == 3 and results['k400_cvdf']['n'] == 3


# -----------------------------------------------------------------------------
# Something-Something v2


def test_ssv2_synthetic_and_decode_webm(roots):
    samples, classes = readers.read_ssv2(roots / 'ssv2', 'train')
    assert classes == [synthetic.SSV2_TEMPLATES[c].replace('[', '').replace(']', '') for c in CLASSES]
    assert not any('[' in c or ']' in c for c in classes)
    assert len(samples) == 3 * 2 and all(Path(p).is_file() and p.endswith('.webm') for p, _ in samples)
    assert [y for _, y in samples] == [0, 0, 1, 1, 2, 2]
    with av.open(samples[0][0]) as container:
        assert container.streams.video[0].codec_context.name == 'vp9'
    clips = decode.read_clips(samples[0][0], dict(sampler='window', num_frames=4, clip_seconds=0.5),
                            decode.eval_positions('window', 1, 4))
    assert clips.shape == (1, 4, 3, 48, 64) and clips.dtype == torch.uint8


def test_ssv2_brackets_and_unknown_class(tmp_path):
    write(tmp_path / 'labels.json', '{"Putting something on a surface": "1", "Pretending to open something": "0"}')
    entries = ('[{"id": "7", "label": "Putting a cup on a table", "template": "Putting [something] on a surface",'
               ' "placeholders": ["a cup"]},\n {"id": "8", "template": "Pretending to open [something]"}')
    write(tmp_path / 'train.json', entries + ']')
    touch(tmp_path / 'videos' / '7.webm')
    samples, classes = readers.read_ssv2(tmp_path, 'train')
    assert classes == ['Pretending to open something', 'Putting something on a surface']
    assert samples == [(str(tmp_path / 'videos' / '7.webm'), 1), (str(tmp_path / 'videos' / '8.webm'), 0)]
    path = write(tmp_path / 'validation.json', entries + ',\n {"id": "9", "template": "Folding [something]"}]')
    with pytest.raises(ValueError, match=re.escape(f"{path}: entry 2: class 'Folding something'")):
        readers.read_ssv2(tmp_path, 'val')
    write(tmp_path / 'validation.json', entries + ',\n {"id": "9",,}]')
    with pytest.raises(ValueError, match=re.escape(f"{path}:3:")):
        readers.read_ssv2(tmp_path, 'val')


# -----------------------------------------------------------------------------
# Moments in Time


def test_moments_synthetic(roots):
    samples, classes = readers.read_moments(roots / 'moments', 'train')
    assert classes == [synthetic.MOMENTS_NAMES[c] for c in CLASSES]
    assert len(samples) == 3 * 2
    assert all(Path(p).is_file() and folder_of(p) == classes[y] and '/training/' in p for p, y in samples)
    val, _ = readers.read_moments(roots / 'moments', 'val')
    assert len(val) == 3 and all('/validation/' in p for p, _ in val)
    with av.open(val[0][0]) as container:
        assert container.streams.video[0].codec_context.name == 'h264' and not container.streams.audio


def test_moments_categories_without_index_and_bad_rows(tmp_path):
    write(tmp_path / 'categories.txt', 'running\nbouncing\r\n')
    write(tmp_path / 'trainingSet.csv', 'bouncing/a.mp4,bouncing,3,0\nrunning/b.mp4,running,2,1\n')
    touch(tmp_path / 'training' / 'bouncing' / 'a.mp4')
    samples, classes = readers.read_moments(tmp_path, 'train')
    assert classes == ['running', 'bouncing']
    assert samples == [(str(tmp_path / 'training' / 'bouncing' / 'a.mp4'), 1),
                       (str(tmp_path / 'training' / 'running' / 'b.mp4'), 0)]
    path = write(tmp_path / 'validationSet.csv', 'running/b.mp4,running\nflying/c.mp4,flying\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: class 'flying'")):
        readers.read_moments(tmp_path, 'val')
    write(tmp_path / 'validationSet.csv', 'running/b.mp4,bouncing\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:1:")):
        readers.read_moments(tmp_path, 'val')
    path = write(tmp_path / 'categories.txt', 'running,0\nbouncing,0\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:2:")):
        readers.read_moments(tmp_path, 'train')


# -----------------------------------------------------------------------------
# all formats


def test_every_format_has_a_writer():
    assert set(synthetic.WRITERS) == set(readers.FORMATS) == set(config.FORMATS)


@pytest.mark.parametrize('fmt', ['imagefolder', 'cifar100', 'hmdb51', 'kinetics', 'ssv2', 'moments', 'minikinetics',
                                 'activitynet'])
def test_formats_registered_and_missing_root_named(fmt, tmp_path):
    kind, read = config.FORMATS[fmt], readers.FORMATS[fmt]
    assert kind in data.DATASETS and callable(synthetic.WRITERS[fmt])
    spec = config.dataset_spec(fmt, dict(format=fmt, root=str(tmp_path / 'absent')))
    with pytest.raises(FileNotFoundError, match=f"python -m tools.synthetic {fmt} "):
        read(spec, 'train')


def test_video_loader_from_synthetic_kinetics(roots):
    spec = config.dataset_spec('k', dict(format='kinetics', root=str(roots / 'kinetics'), batch_size=2,
                                       num_frames=4, clip_seconds=0.5))
    x, y = next(iter(data.make_loader(spec, 'val', make_cfg(img_size=16))))
    assert x.shape == (2, 1, 3, 4, 16, 16) and y.dtype == torch.long


# -----------------------------------------------------------------------------
# mini-Kinetics


def test_minikinetics_synthetic(roots):
    root = roots / 'minikinetics'
    train, classes = readers.read_minikinetics(root, 'train')
    val, val_classes = readers.read_minikinetics(root, 'val')
    everything, all_classes = readers.read_kinetics(root, 'train')
    assert classes == val_classes == sorted(synthetic.KINETICS_NAMES[c] for c in CLASSES[:-1])  # the listed classes
    assert len(all_classes) == 3 and len(everything) == 3 * 4
    assert len(train) == 2 * 3 and len(val) == 2 * 1  # three in four training clips of two classes
    listed = set((root / 'train_ytid_list.txt').read_text().split())
    assert {Path(p).name[:11] for p, _ in train} == listed
    assert all(classes[y] == folder_of(p) for p, y in train + val)


def test_minikinetics_lists(tmp_path, capsys):
    write(tmp_path / 'annotations' / 'train.csv', KINETICS_CSV)
    write(tmp_path / 'annotations' / 'validate.csv', KINETICS_CSV.replace(',train,', ',val,'))
    for rel in ("pouring milk, carefully/-abcdefghij_000005_000015.mp4", "person's dog/ABCDEFGHIJK_000000_000010.mp4",
                "abseiling/zzzzzzzzzzz_000120_000130.mp4"):
        touch(tmp_path / 'train' / rel)
    write(tmp_path / 'train_ytid_list.txt', "ABCDEFGHIJK\r\nzzzzzzzzzzz\r\nBbbbbbbbbbb\n")  # the last clip is missing
    write(tmp_path / 'val_ytid_list.txt', "ABCDEFGHIJK\n")
    samples, classes = readers.read_minikinetics(tmp_path, 'train')
    assert classes == ['abseiling', "person's dog"]
    assert [(Path(p).name[:11], y) for p, y in samples] == [('ABCDEFGHIJK', 1), ('zzzzzzzzzzz', 0)]
    assert "1 of 3 clips missing on disk" in capsys.readouterr().out
    path = write(tmp_path / 'val_ytid_list.txt', "ABCDEFGHIJK\nzzzzzzzzzzz 120\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: expected one youtube id per line")):
        readers.read_minikinetics(tmp_path, 'val')
    write(tmp_path / 'val_ytid_list.txt', "nothere0000\n")
    with pytest.raises(ValueError, match="no clips of the 1 listed youtube ids"):
        readers.read_minikinetics(tmp_path, 'val')


# -----------------------------------------------------------------------------
# ActivityNet


def test_activitynet_synthetic(roots):
    root = roots / 'activitynet'
    train, classes = readers.read_activitynet(root, 'train')
    val, val_classes = readers.read_activitynet(root, 'val')
    assert classes == val_classes == sorted(synthetic.ACTIVITYNET_NAMES[c] for c in CLASSES)
    # per class: video 0 has one segment, video 1 two; validation: one video with one segment
    assert len(train) == 3 * 3 and len(val) == 3 * 1
    names = {Path(p).name for p, _, _ in train + val}
    assert any(n.startswith('v_') for n in names) and any(not n.startswith('v_') for n in names)
    content = json.loads((root / 'activity_net.v1-3.min.json').read_text())
    assert set(content) == {'version', 'taxonomy', 'database'}
    assert {v['subset'] for v in content['database'].values()} == {'training', 'validation', 'testing'}
    for path, label, (t0, t1) in train + val:
        assert Path(path).is_file() and 0 <= t0 < t1 <= 3.0
        video = Path(path).stem.removeprefix('v_')
        assert [t0, t1] in [a['segment'] for a in content['database'][video]['annotations']]


def test_activitynet_clips_come_from_the_segment(roots):
    """Outside its segments a synthetic ActivityNet video is still; a clip of a sample moves: it was taken
    inside the segment."""
    samples, _ = readers.read_activitynet(roots / 'activitynet', 'train')
    paths = [p for p, _, _ in samples]
    path, _, (t0, t1) = next(s for s in samples if s[2][0] >= 0.6 and paths.count(s[0]) == 1)  # one late segment
    spec = dict(sampler='window', num_frames=4, clip_seconds=0.5)
    u = decode.eval_positions('window', 2, 4)
    inside = decode.read_clips(path, spec, u, (t0, t1)).float()   # (2, 4, 3, H, W)
    before = decode.read_clips(path, spec, u, (0.0, t0)).float()
    def motion(clip):
        return (clip[:, 1:] - clip[:, :-1]).abs().mean()
    assert motion(before) < 0.5 and motion(inside) > 2.0
    # the same through a dataset: a sample's clips are those of its segment
    cfg = make_cfg(img_size=48, num_temporal_clips=2, mean=(0.0,) * 3, std=(1 / 255,) * 3)
    dataset = data.VideoDataset(samples, ['c'] * 3, False, config.dataset_spec('a', dict(
        format='activitynet', root=str(roots / 'activitynet'), **spec)), cfg)
    views, _ = dataset[(samples.index(next(s for s in samples if s[0] == path and s[2] == (t0, t1))), 0)]
    assert torch.allclose(views.permute(0, 2, 1, 3, 4), inside[..., 8:56], atol=1e-3)  # centre crop of 64x48


ANET = {'version': 'VERSION 1.3', 'taxonomy': [], 'database': {
    'aaaaaaaaaaa': {'subset': 'training', 'annotations': [{'label': 'Long jump', 'segment': [1.5, 7.25]},
                                                          {'label': 'Long jump', 'segment': [9, 12.0]}]},
    'bbbbbbbbbbb': {'subset': 'training', 'annotations': [{'label': 'Bathing dog', 'segment': [0, 3]}]},
    'ccccccccccc': {'subset': 'training', 'annotations': [{'label': 'Polishing shoes', 'segment': [2, 4]}]},
    'ddddddddddd': {'subset': 'validation', 'annotations': [{'label': 'Bathing dog', 'segment': [0.5, 1]}]},
    'eeeeeeeeeee': {'subset': 'testing', 'annotations': []}}}


def test_activitynet_handwritten(tmp_path, capsys):
    path = write(tmp_path / 'activity_net.v1-3.min.json', json.dumps(ANET))
    for name in ('v_aaaaaaaaaaa.mp4', 'bbbbbbbbbbb.mkv', 'ddddddddddd.webm', 'notes.txt'):  # ccc... is missing
        touch(tmp_path / 'videos' / name)
    samples, classes = readers.read_activitynet(tmp_path, 'train')
    assert classes == ['Bathing dog', 'Long jump', 'Polishing shoes']
    videos = tmp_path / 'videos'
    assert samples == [(str(videos / 'v_aaaaaaaaaaa.mp4'), 1, (1.5, 7.25)), (str(videos / 'v_aaaaaaaaaaa.mp4'), 1,
                       (9, 12.0)), (str(videos / 'bbbbbbbbbbb.mkv'), 0, (0, 3))]
    assert capsys.readouterr().out.splitlines() == [f"{path}: 1 of 3 training videos missing on disk",
                                                    f"{path}: 3 training segments cut into 3 clips of <= 10 s"]
    assert readers.read_activitynet(tmp_path, 'val')[0] == [(str(videos / 'ddddddddddd.webm'), 0, (0.5, 1))]


def test_activitynet_segments_are_cut_into_clips_of_at_most_clip_len(tmp_path, capsys):
    """MultiTrain (arXiv:2209.12362, 4.1) cuts the annotated segments into 10-second clips, each one sample: a
    segment [t0, t1] gives ceil((t1 - t0) / clip_len) clips, consecutive, the last ending at t1. 10 s by default,
    through the dataset settings too (clip_len=None), and any other length when asked; the count is printed."""
    content = {'version': 'VERSION 1.3', 'taxonomy': [], 'database': {
        'aaaaaaaaaaa': {'subset': 'training', 'annotations': [{'label': 'Long jump', 'segment': [1.5, 26.5]},
                                                              {'label': 'Long jump', 'segment': [30, 40]}]},
        'bbbbbbbbbbb': {'subset': 'training', 'annotations': [{'label': 'Bathing dog', 'segment': [0.25, 20.25]},
                                                              {'label': 'Bathing dog', 'segment': [21, 21.5]}]},
        'ddddddddddd': {'subset': 'validation', 'annotations': [{'label': 'Bathing dog', 'segment': [5, 17]}]}}}
    path = write(tmp_path / 'activity_net.v1-3.min.json', json.dumps(content))
    for name in ('v_aaaaaaaaaaa.mp4', 'bbbbbbbbbbb.mp4', 'ddddddddddd.mp4'):
        touch(tmp_path / 'videos' / name)
    spec = config.dataset_spec('actnet', dict(format='activitynet', root=str(tmp_path)))
    assert spec['clip_len'] is None  # the format's default, 10 s
    samples, _ = readers.FORMATS['activitynet'](spec, 'train')
    a, b = (str(tmp_path / 'videos' / n) for n in ('v_aaaaaaaaaaa.mp4', 'bbbbbbbbbbb.mp4'))
    assert samples == [(a, 1, (1.5, 11.5)), (a, 1, (11.5, 21.5)), (a, 1, (21.5, 26.5)),  # 25 s: 3 clips
                       (a, 1, (30, 40)),                                                # exactly 10 s: 1 clip
                       (b, 0, (0.25, 10.25)), (b, 0, (10.25, 20.25)),                   # 20 s: 2 clips
                       (b, 0, (21, 21.5))]                                              # 0.5 s: 1 clip
    assert capsys.readouterr().out.strip() == f"{path}: 4 training segments cut into 7 clips of <= 10 s"
    val, _ = readers.FORMATS['activitynet'](spec, 'val')
    assert [t for _, _, t in val] == [(5, 15), (15, 17)]  # the test split is cut the same way
    samples, _ = readers.FORMATS['activitynet'](dict(spec, clip_len=4), 'train')
    assert len(samples) == 7 + 3 + 5 + 1 and all(t1 - t0 <= 4 for _, _, (t0, t1) in samples)
    assert capsys.readouterr().out.splitlines()[-1] == f"{path}: 4 training segments cut into 16 clips of <= 4 s"


def test_activitynet_skips_and_names_zero_length_segments(tmp_path, capsys):
    """The real v1.3 file holds segments such as [0, 0] (activitynet/ActivityNet issue 56): they are skipped, and
    the count with examples is printed; the video's other segments stay."""
    content = json.loads(json.dumps(ANET))
    content['database']['aaaaaaaaaaa']['annotations'].insert(1, {'label': 'Long jump', 'segment': [0, 0]})
    path = write(tmp_path / 'activity_net.v1-3.min.json', json.dumps(content))
    for name in ('v_aaaaaaaaaaa.mp4', 'bbbbbbbbbbb.mkv', 'ccccccccccc.mp4'):
        touch(tmp_path / 'videos' / name)
    samples, _ = readers.read_activitynet(tmp_path, 'train')
    assert [segment for _, _, segment in samples] == [(1.5, 7.25), (9, 12.0), (0, 3), (2, 4)]
    assert capsys.readouterr().out.splitlines()[0] == (f"{path}: skipped 1 training segment(s) of zero length, e.g. "
                                                       f"database/aaaaaaaaaaa/annotations/1")


@pytest.mark.parametrize('change, words', [
    (lambda d: d['database']['ddddddddddd']['annotations'][0].update(label='Flying'),
     ["database/ddddddddddd/annotations/0: label 'Flying' has no training segment"]),
    (lambda d: d['database']['aaaaaaaaaaa']['annotations'][1].update(segment=[12, 9]),
     ['database/aaaaaaaaaaa/annotations/1', '0 <= t0 <= t1']),
    (lambda d: d['database']['bbbbbbbbbbb']['annotations'][0].update(segment=[-1, 2]),
     ['database/bbbbbbbbbbb/annotations/0', '0 <= t0 <= t1']),
    (lambda d: d['database']['bbbbbbbbbbb']['annotations'][0].pop('label'), ['database/bbbbbbbbbbb/annotations/0']),
    (lambda d: d.pop('database'), ["expected an object with a 'database' object"]),
])
def test_activitynet_bad_annotations(tmp_path, change, words):
    content = json.loads(json.dumps(ANET))
    change(content)
    path = write(tmp_path / 'activity_net.v1-3.min.json', json.dumps(content))
    for name in ('v_aaaaaaaaaaa.mp4', 'bbbbbbbbbbb.mkv', 'ddddddddddd.webm'):
        touch(tmp_path / 'videos' / name)
    with pytest.raises(ValueError) as e:
        readers.read_activitynet(tmp_path, 'val')
    assert str(e.value).startswith(f"{path}: ") and all(w in str(e.value) for w in words), str(e.value)


# -----------------------------------------------------------------------------
# frame folders instead of videos


def test_frame_folders_replace_the_videos(roots, tmp_path):
    """With frames=True the readers look for frame folders, not videos: a dataset whose videos are gone (only
    frames kept, as on many clusters) reads and loads the same samples."""
    for name in ('minikinetics', 'activitynet'):
        shutil.copytree(roots / name, tmp_path / name)
        decode.write_frame_folders(tmp_path / name)
        expected = {split: readers.FORMATS[name](config.dataset_spec(name, dict(format=name, root=str(tmp_path / name))),
                                                 split) for split in ('train', 'val')}
        for video in list((tmp_path / name).rglob('*.mp4')):
            video.unlink()
        spec = config.dataset_spec(name, dict(format=name, root=str(tmp_path / name), frames=True, frames_fps=25,
                                            batch_size=2, num_frames=4, clip_seconds=0.5))
        for split in ('train', 'val'):
            samples, classes = readers.FORMATS[name](spec, split)
            assert classes == expected[split][1]
            assert [(str(Path(p).with_suffix('')), y, *t) for p, y, *t in samples] == \
                   [(str(Path(p).with_suffix('')), y, *t) for p, y, *t in expected[split][0]]
        x, y = next(iter(data.make_loader(spec, 'train', make_cfg(img_size=16))))
        assert x.shape == (2, 3, 4, 16, 16)
        with pytest.raises(FileNotFoundError, match='none of its'):
            readers.FORMATS[name]({**spec, 'frames': False}, 'train')

"""Bad samples never stop a run: each kind of broken file is planted in a small synthetic dataset, and the
loaders must replace it (deterministically), name it once, count it across worker processes, stop when too
many are bad, and never hang."""

import contextlib
import re
import shutil
import signal
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
from tools import synthetic


def make_cfg(**kw):
    cfg = dict(img_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_workers=0, seed=0,
               num_temporal_clips=1, num_spatial_crops=1, device='cpu', grad_accum=1, sampling='round_robin')
    return SimpleNamespace(**{**cfg, **kw})


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging: SIGALRM interrupts the main process even while it waits on its workers."""
    def fail(*_):
        raise TimeoutError(f"the loader did not finish in {seconds} s")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
    """Small synthetic datasets, copied by each test before it breaks files in them."""
    base = tmp_path_factory.mktemp('clean')
    # split 1 tests on groups 1-7: 2 classes x 7 groups x 2 clips = 28 validation videos of 0.6 s
    synthetic.write_synthetic_ucf101(base / 'ucf', classes=('MoveLeft', 'Grow'), groups=8, clips=2, seconds=0.6)
    synthetic.write_synthetic_moments(base / 'moments', classes=('MoveLeft', 'Grow'), train_per_class=4,
                                 val_per_class=1, seconds=0.6)
    synthetic.write_synthetic_tinyimagenet(base / 'tiny', num_classes=2, train_per_class=4, val_per_class=4)
    return base


def copy(clean, tmp_path, name):
    shutil.copytree(clean / name, tmp_path / name)
    return tmp_path / name


def write_audio_only(path):
    """A valid AVI holding one PCM audio track and no video stream."""
    with av.open(str(path), 'w', format='avi') as container:
        stream = container.add_stream('pcm_s16le', rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format='s16', layout='mono')
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


def truncate(path):
    """Keep the first half of the file: an MP4 written front to back loses its index (the moov box at the end)."""
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


BREAK = {
    'missing': lambda path: path.unlink(),
    'zero bytes': lambda path: path.write_bytes(b''),
    'text named .avi': lambda path: path.write_text("this is not a video\n" * 50),
    'audio only': write_audio_only,
}


def plant_ucf(clean, tmp_path, max_bad_fraction=0.2):
    """The 28 validation videos of a UCF101 copy, with one file of each kind in BREAK broken."""
    root = copy(clean, tmp_path, 'ucf')
    samples, _ = readers.read_ucf101(root, 'val')
    broken = {}
    for (kind, damage), index in zip(BREAK.items(), (0, 9, 13, 22)):
        damage(data.Path(samples[index][0]))
        broken[index] = samples[index][0]
    spec = config.dataset_spec('ucf', dict(format='ucf101', root=str(root), batch_size=4, num_frames=2,
                                         clip_seconds=0.3, max_bad_fraction=max_bad_fraction))
    return spec, broken


def run(loader, seconds=120):
    """Every batch of a loader, within a deadline: (x, y) over the whole split."""
    with deadline(seconds):
        batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_readers_name_the_file(tmp_path):
    """The readers themselves raise UnreadableSample naming the file, chained to the cause."""
    path = tmp_path / 'text.avi'
    path.write_text('not a video')
    spec = dict(sampler='window', num_frames=2, clip_seconds=0.3)
    for read in (lambda: decode.read_clips(path, spec, decode.eval_positions('window', 1, 2)),
                 lambda: decode.read_image(path), lambda: decode.read_video_frames(tmp_path / 'nope.avi', [0])):
        with pytest.raises(decode.UnreadableSample, match='cannot read ' + re.escape(str(tmp_path))) as e:
            read()
        assert e.value.__cause__ is not None


@pytest.mark.parametrize('num_workers', [0, 2])
def test_bad_videos_are_replaced_named_once_and_counted(clean, tmp_path, capfd, num_workers):
    spec, broken = plant_ucf(clean, tmp_path)
    loader = data.make_loader(spec, 'val', make_cfg(num_workers=num_workers))
    dataset = loader.dataset
    x, y = run(loader)
    assert len(x) == len(dataset) == 28 and torch.isfinite(x).all()  # nothing lost, nothing garbage
    assert dataset.num_bad() == 4 and dataset.bad.nonzero().flatten().tolist() == sorted(broken)  # seen by main
    run(loader)  # a second epoch: known bad files are skipped without a word
    err = capfd.readouterr().err
    for path in broken.values():
        assert err.count(f"cannot read {path}") == 1, err
    # a bad sample's place holds a real sample of the dataset, with that sample's label
    good = [i for i in range(len(dataset)) if i not in broken]
    for i in broken:
        same = [j for j in good if torch.equal(x[i], x[j])]
        assert same and all(y[i] == dataset.samples[j][1] for j in same)


def test_replacement_does_not_depend_on_the_worker(clean, tmp_path, capfd):
    """The replacement follows from (index, seed): the same batches with 0 or 2 workers, in training too (random
    clips), and the same whether the bad file was already known (flagged) or is found now."""
    spec, broken = plant_ucf(clean, tmp_path)
    samples, classes = readers.read_ucf101(spec['root'], 'val')

    def training_set():  # random clips, crops and flips, over the 28 samples with the 4 bad ones
        return data.VideoDataset(samples, classes, True, spec, make_cfg())

    order = [[(i, 1000 + i), (27 - i, 2000 + i)] for i in range(14)]  # (index, sample seed) batches
    batches = {n: run(torch.utils.data.DataLoader(training_set(), batch_sampler=order, num_workers=n))
               for n in (0, 2)}
    assert torch.equal(batches[0][0], batches[2][0]) and torch.equal(batches[0][1], batches[2][1])
    fresh, index = training_set(), next(iter(broken))
    first = fresh[(index, 77)][0]                     # finds the bad file now
    assert fresh.bad[index] == 1
    assert torch.equal(fresh[(index, 77)][0], first)  # skips it, known
    assert torch.equal(batches[0][0][2 * index], fresh[(index, 1000 + index)][0])
    capfd.readouterr()


@pytest.mark.parametrize('num_workers', [0, 2])
def test_too_many_bad_samples_stop_the_run(clean, tmp_path, num_workers):
    spec, broken = plant_ucf(clean, tmp_path, max_bad_fraction=0.1)  # 4 bad of 28 > 10 %
    loader = data.make_loader(spec, 'val', make_cfg(num_workers=num_workers))
    with pytest.raises(RuntimeError) as e:
        run(loader)
    message = str(e.value)
    assert spec['root'] in message and 'max_bad_fraction=10.00%' in message
    assert re.search(r"\b[34] of 28 samples \(1[0-4]\.\d\d%\) cannot be read", message), message
    assert any(path in message for path in broken.values())


def test_truncated_mp4_is_replaced(clean, tmp_path, capfd):
    root = copy(clean, tmp_path, 'moments')
    spec = config.dataset_spec('mit', dict(format='moments', root=str(root), batch_size=4, num_frames=2,
                                         clip_seconds=0.3, max_bad_fraction=0.2))
    loader = data.make_loader(spec, 'train', make_cfg())
    path = data.Path(loader.dataset.samples[3][0])
    truncate(path)
    x, _ = loader.dataset[(3, 5)]
    assert x.shape == (3, 2, 16, 16) and loader.dataset.num_bad() == 1
    assert f"cannot read {path}" in capfd.readouterr().err


def test_broken_jpeg_is_replaced_and_odd_modes_are_not_bad(clean, tmp_path, capfd):
    root = copy(clean, tmp_path, 'tiny')
    spec = config.dataset_spec('tiny', dict(format='tinyimagenet', root=str(root), batch_size=4,
                                          max_bad_fraction=0.2))
    loader = data.make_loader(spec, 'val', make_cfg())
    paths = [data.Path(p) for p, _ in loader.dataset.samples]
    rgb = Image.open(paths[0]).convert('RGB')
    rgb.convert('CMYK').save(paths[1], format='JPEG')        # CMYK JPEG
    rgb.convert('L').save(paths[2], format='JPEG')           # grayscale, as some real Tiny-ImageNet files
    rgb.convert('RGBA').save(paths[3], format='PNG')         # alpha (a PNG named .JPEG: PIL reads the content)
    rgb.convert('P').save(paths[4], format='PNG')            # palette
    truncate(paths[5])                                       # a broken JPEG
    x, y = run(loader)
    assert len(x) == len(paths) and loader.dataset.num_bad() == 1 and loader.dataset.bad[5] == 1
    err = capfd.readouterr().err
    assert f"cannot read {paths[5]}" in err and all(str(p) not in err for p in paths[1:5])
    assert (x[1] - x[0]).abs().mean() < 0.2                          # CMYK back to about the same RGB
    assert x[2, 0, 0].equal(x[2, 0, 1]) and x[2, 0, 1].equal(x[2, 0, 2])  # grey: three equal channels


def test_worker_crash_is_reported_not_waited_on(clean, tmp_path, monkeypatch):
    """A bug in a worker (not a bad file) surfaces in the main process at once."""
    spec, _ = plant_ucf(clean, tmp_path)

    def broken(self, index, seed):
        raise KeyError('a bug, not a bad file')
    monkeypatch.setattr(data.VideoDataset, '_item', broken)
    dataset = data.VideoDataset(*readers.read_ucf101(spec['root'], 'val'), False, spec, make_cfg())
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[[(i, 0)] for i in range(len(dataset))],
                                         num_workers=2)
    with pytest.raises(KeyError, match='a bug'):
        run(loader, seconds=60)

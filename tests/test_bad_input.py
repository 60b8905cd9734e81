"""Bad samples never stop a run: each kind of broken file is planted in a small synthetic dataset, and the
loaders must replace it (deterministically), name it once, count it across worker processes, stop when too
many are bad, and never hang."""

import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
from conftest import REPO, write_config
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


def flip_flags(flags, flips, stop):
    """Other DataLoader workers flagging samples: flip the shared flags of samples 1, 2, ... as fast as possible,
    counting the flips in `flips`, for at most 120 s (so that it ends even when the test's process dies without
    setting `stop`)."""
    step = 0
    end = time.monotonic() + 120
    while not stop.is_set() and time.monotonic() < end:
        index = 1 + step % (len(flags) - 1)
        flags[index] = 1 - flags[index]
        step += 7919
        flips.value += 1


def test_the_limit_message_agrees_with_itself_while_other_workers_flag(capfd):
    """The worker that meets the limit counts and names the flagged samples while the other workers keep setting
    flags in the same shared bytes: the count and the names come from one copy, so they agree (and nonzero() never
    runs on bytes that change under it, which corrupts the heap). The test counts calls, not seconds: it stops
    after 200 calls of which at least 50 overlapped a flip of the other process, however loaded the machine."""
    n = 100_000
    dataset = data._Samples.__new__(data._Samples)  # only what _flag reads: the samples, the spec, the flags
    dataset.samples = [(f'/videos/{i}.mp4', 0) for i in range(n)]
    dataset.spec = dict(root='/videos', max_bad_fraction=0.0)
    dataset.bad = torch.zeros(n, dtype=torch.uint8).share_memory_()
    context = multiprocessing.get_context('fork')
    stop = context.Event()
    flips = context.RawValue('q', 0)
    writer = context.Process(target=flip_flags, args=(dataset.bad, flips, stop))
    writer.start()
    try:
        calls = overlapped = 0
        while calls < 200 or overlapped < 50:
            assert writer.is_alive(), f'the flipping process ended after {calls} calls, {overlapped} overlapped'
            before = flips.value
            with pytest.raises(data.TooManyUnreadable) as e:
                dataset._flag(0, 'cannot read /videos/0.mp4')  # sample 0 stays flagged: always over the limit
            overlapped += flips.value != before
            calls += 1
            match = re.fullmatch(r"/videos: (\d+) of 100000 samples \(\d+\.\d\d%\) cannot be read, more than "
                                 r"max_bad_fraction=0\.00%, e\.g\. (.*): stopping .*", str(e.value))
            count, examples = int(match[1]), match[2].split(', ')
            assert examples[0] == '/videos/0.mp4' and len(examples) == min(count, 3), str(e.value)
    finally:
        stop.set()
        writer.join()
    assert capfd.readouterr().err.count('warning: cannot read /videos/0.mp4') == 1


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


# -----------------------------------------------------------------------------
# a user's mistakes in the layout: one line naming the path and the fix, and no traceback


def one_line_error(error, capsys):
    """The message of a readers.DataError, checked to be one line, and what data.excepthook (train.py's and eval.py's
    sys.excepthook) prints for it: that same line, and no traceback."""
    message = str(error)
    assert isinstance(error, readers.DataError) and '\n' not in message
    capsys.readouterr()
    data.excepthook(type(error), error, error.__traceback__)
    assert capsys.readouterr().err == f"data error: {message}\n"
    return message


def handwritten_kinetics(root):
    """A Kinetics root as CVDF's K400 extractor leaves it (flat clips, val.csv), with empty stand-ins for the clips."""
    header = 'label,youtube_id,time_start,time_end,split\n'
    for split, csv_name, youtube_id in (('train', 'train.csv', 'aaaaaaaaaaa'), ('val', 'val.csv', 'bbbbbbbbbbb')):
        (root / 'annotations').mkdir(parents=True, exist_ok=True)
        (root / 'annotations' / csv_name).write_text(f'{header}"tying bow tie",{youtube_id},3,13,{split}\n')
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / f'{youtube_id}_000003_000013.mp4').touch()
    return root


def test_root_one_level_too_high_or_too_low(tmp_path, capsys):
    root = handwritten_kinetics(tmp_path / 'kinetics400' / 'k400')
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_kinetics, root.parent, 'train').value,
                             capsys)
    assert message == (f"dataset root {root.parent} is not a kinetics root: expected annotations/train.csv in it, "
                       f"found {root / 'annotations' / 'train.csv'}: the root is one level too high, set root='{root}'")
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_kinetics, root / 'train', 'val').value,
                             capsys)
    assert message == (f"dataset root {root / 'train'} is not a kinetics root: expected annotations/train.csv in it, "
                       f"found {root / 'annotations' / 'train.csv'}: the root is one level too low, set root='{root}'")
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_ucf101, root, 'train').value, capsys)
    assert message.startswith(f"dataset root {root} is not a ucf101 root: expected ucfTrainTestlist in it, found "
                              f"annotations/, train/, val/")


def test_ucf101_without_its_split_lists(clean, tmp_path, capsys):
    root = copy(clean, tmp_path, 'ucf')
    shutil.rmtree(root / 'ucfTrainTestlist')  # UCF101.rar extracted, the splits' zip not
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_ucf101, root, 'train').value, capsys)
    assert message == (f"dataset root {root} is not a ucf101 root: expected ucfTrainTestlist in it, found UCF-101/; "
                       f"unzip UCF101TrainTestSplits-RecognitionTask.zip into it (it holds ucfTrainTestlist/) "
                       f"(see README.md#real-data for the layout)")


def test_videos_not_where_the_layout_puts_them(clean, tmp_path, capsys):
    """Every video of a split missing is a layout problem, said at start-up with where the files are, not 28
    unreadable samples found one by one during the run."""
    root = copy(clean, tmp_path, 'ucf')
    (root / 'UCF-101').rename(root / 'UCF101')
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_ucf101, root, 'val').value, capsys)
    first = readers._lines(root / 'ucfTrainTestlist' / 'testlist01.txt')[0][1]
    assert message == (f"{root / 'ucfTrainTestlist' / 'testlist01.txt'}: none of its 28 files is on disk, e.g. "
                       f"{root / 'UCF-101' / first}: a file of that name is at {root / 'UCF101' / first}: move the "
                       f"files to where the layout puts them, or fix the root")
    kinetics = handwritten_kinetics(tmp_path / 'k400')
    (kinetics / 'videos').mkdir()
    (kinetics / 'val').rename(kinetics / 'videos' / 'val')  # e.g. after CVDF's arrange_by_classes.py, moved
    message = one_line_error(pytest.raises(readers.DataNotFound, readers.read_kinetics, kinetics, 'val').value, capsys)
    assert message.startswith(f"{kinetics / 'annotations' / 'val.csv'}: none of its 1 clips is on disk directly in "
                              f"{kinetics / 'val'} or in its class folders, e.g. ")
    assert message.endswith(f"a file of that name is at {kinetics / 'videos' / 'val' / 'bbbbbbbbbbb_000003_000013.mp4'}"
                            f": move the files to where the layout puts them, or fix the root")


def train_fails(config_path):
    """Run train.py on a config that must fail; returns its stderr."""
    proc = subprocess.run([sys.executable, 'train.py', str(config_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr


def test_train_py_says_a_layout_mistake_in_one_line(tmp_path):
    root = handwritten_kinetics(tmp_path / 'data' / 'k400')
    spec = dict(format='kinetics', root=str(root.parent), num_frames=2, batch_size=1)
    err = train_fails(write_config(tmp_path / 'config.py', tmp_path, tmp_path / 'out', datasets={'k400': spec}))
    assert err.strip().splitlines()[-1] == (
        f"data error: dataset root {root.parent} is not a kinetics root: expected annotations/train.csv in it, found "
        f"{root / 'annotations' / 'train.csv'}: the root is one level too high, set root='{root}'")


def test_train_py_says_too_many_unreadable_samples_in_one_line(clean, tmp_path):
    """The limit is met in a DataLoader worker; the run still ends with the one line, no traceback."""
    root = copy(clean, tmp_path, 'moments')
    for path in (root / 'training').rglob('*.mp4'):
        path.write_text('not a video')
    spec = dict(format='moments', root=str(root), num_frames=2, clip_seconds=0.3, batch_size=2, max_bad_fraction=0.1)
    err = train_fails(write_config(tmp_path / 'config.py', tmp_path, tmp_path / 'out', datasets={'mit': spec},
                                   num_workers=2, img_size=16, patch_size=8, dim=16, depth=1))
    lines = [line for line in re.split(r'[\r\n]', err) if line.startswith('data error: ')]
    assert len(lines) == 1, err
    match = re.fullmatch(rf"data error: {re.escape(str(root))}: (\d) of 8 samples \((\d+\.\d\d)%\) cannot be read, "
                         rf"more than max_bad_fraction=10\.00%, e\.g\. (.*): stopping "
                         rf"rather than training on a shrinking dataset \(repair or re-download these files\)",
                         lines[0])
    assert match, err
    # The count is the number of samples flagged in any process when the error was raised. The worker that raises
    # stops at its first unreadable sample, but the two workers share the flags (data._Samples.bad), and the other
    # worker, running ahead on later batches, may have flagged some of its own by then: the count is 1 to 8,
    # whichever worker was faster, and each flagged sample was warned about once before it was counted.
    bad = int(match[1])
    assert 1 <= bad <= 8 and match[2] == f"{100 * bad / 8:.2f}", err
    warned = set(re.findall(r"warning: cannot read (\S+): ", err))
    assert bad <= len(warned), err
    examples = match[3].split(', ')
    assert len(examples) == min(bad, 3) and set(examples) <= warned, err
    assert all(Path(example).parent.parent == root / 'training' for example in examples), err

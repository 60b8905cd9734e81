"""Tests of tools/prepare.py: the mirror (layout, annotation files, frame counts and rates, key frames), resuming,
unreadable inputs, the frame-by-frame check, and a prepared copy that trains and evaluates with only root changed."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import decode
from conftest import REPO, read_log, run, write_config
from tools import encode, prepare, synthetic

CLASSES = ('MoveLeft', 'BounceBall')


def video_facts(path):
    """(frame rate, frame count, codec, key-frame packet numbers, number of audio streams) of a video."""
    with av.open(str(path)) as container:
        stream, fps, count, _ = decode._video_stream(container)
        codec = stream.codec_context.name
        audio = len(container.streams.audio)
    with av.open(str(path)) as container:
        keys = [n for n, packet in enumerate(decode._demux(container, decode._first_video_stream(container)[0]))
                if packet.is_keyframe]
    return fps, count, codec, keys, audio


def files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob('*') if p.is_file())


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    """Small synthetic Kinetics (H.264 MP4 with AAC), UCF101 (XviD AVI) and SSv2 (VP9 WebM) datasets."""
    root = tmp_path_factory.mktemp('sources')
    synthetic.write_synthetic_kinetics(root / 'kinetics', classes=CLASSES, train_per_class=2, val_per_class=1,
                                       seconds=1.2)
    synthetic.write_synthetic_ucf101(root / 'ucf101', classes=CLASSES, groups=10, clips=1, seconds=1.0)  # 6 train
    synthetic.write_synthetic_ssv2(root / 'ssv2', classes=CLASSES, train_per_class=2, val_per_class=1)
    return root


@pytest.mark.parametrize('fmt, gop, codec', [('kinetics', 16, 'h264'), ('ucf101', 8, 'h264'), ('ssv2', 8, 'vp9')])
def test_mirror_counts_key_frames_and_rerun(sources, tmp_path, fmt, gop, codec, capsys):
    """Every file is at its relative path; annotation files are byte-identical; every video has the original's
    frame rate and frame count, the new codec, key frames at most `gop` frames apart and no audio; the copy reads as the
    same dataset; a rerun skips every video and rewrites nothing. (UCF101's XviD has a key frame every 12 frames:
    --gop=8 makes it re-encode.)"""
    root = sources / fmt
    out = tmp_path / fmt
    results = prepare.prepare(root, out, fmt, gop=gop, workers=1)
    assert {r['outcome'] for r in results} == {'done'}
    assert files(out) == files(root)
    for name in files(root):
        if Path(name).suffix in prepare.VIDEO_SUFFIXES:
            fps, count, out_codec, keys, audio = video_facts(out / name)
            assert (fps, count) == video_facts(root / name)[:2]
            assert out_codec == codec and audio == 0
            assert keys[0] == 0 and max(b - a for a, b in zip(keys, keys[1:] + [count])) <= gop  # (and scene cuts)
        else:
            assert filecmp.cmp(root / name, out / name, shallow=False)
    assert f"reads as a {fmt} dataset" in capsys.readouterr().out
    stamps = {name: (out / name).stat().st_mtime_ns for name in files(out)}
    again = prepare.prepare(root, out, fmt, gop=gop, workers=1)
    assert {r['outcome'] for r in again} == {'skipped'}
    assert stamps == {name: (out / name).stat().st_mtime_ns for name in files(out)}


def test_dense_key_frames_are_copied_as_they_are(sources, tmp_path):
    """UCF101's XviD, a key frame every 12 frames, is copied as it is at the default --gop=16."""
    results = prepare.prepare(sources / 'ucf101', tmp_path / 'u', 'ucf101', workers=1)
    assert {r['outcome'] for r in results} == {'copied'}
    assert all(filecmp.cmp(r['src'], r['dst'], shallow=False) for r in results)


def test_command_line_lists_unreadable_input_in_parallel(sources, tmp_path):
    """With two processes: a file that is no video is listed as unreadable and not written, the others are
    prepared; the run ends with status 0 (the input's fault, not the copy's) and no temporary file is left."""
    root = tmp_path / 'kinetics'
    subprocess.run(['cp', '-r', str(sources / 'kinetics'), str(root)], check=True)
    bad = next(root.rglob('*.mp4'))
    bad.write_bytes(b'not a video at all')
    proc = subprocess.run([sys.executable, '-m', 'tools.prepare', str(root), str(tmp_path / 'out'),
                           '--format=kinetics', '--workers=2'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"unreadable, not written (as missing to the readers): {bad}" in proc.stdout
    assert '5 videos' in proc.stdout.splitlines()[-4] or 'prepared 5 videos' in proc.stdout
    assert '1 unreadable' in proc.stdout
    assert files(tmp_path / 'out') == [f for f in files(root) if root / f != bad]
    assert not list((tmp_path / 'out').rglob('*' + prepare.PARTIAL))


def test_failed_check_leaves_nothing_behind(sources, tmp_path, monkeypatch):
    """A copy that fails its check is listed as failed, and neither it nor its temporary file stays."""
    def shifted(*args):
        raise ValueError('frame 0 of the copy looks more like the original\'s frame 1')
    monkeypatch.setattr(prepare, 'verify', shifted)
    results = prepare.prepare(sources / 'kinetics', tmp_path / 'out', workers=1)
    assert {r['outcome'] for r in results} == {'failed'}
    assert not [f for f in files(tmp_path / 'out') if Path(f).suffix in prepare.VIDEO_SUFFIXES + (prepare.PARTIAL,)]


def test_verify_finds_shifted_frames(tmp_path):
    """verify() refuses a copy whose frame k is the original's k + 1, and accepts the right one."""
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(0), 64, 48, 20)  # (20, 48, 64, 3)
    encode.write_video(tmp_path / 'v.mp4', frames, 25, 'libx264')
    written = decode.read_video_frames(tmp_path / 'v.mp4', list(range(20))).permute(0, 2, 3, 1).numpy()
    check = {k: {i: written[i] for i in range(max(0, k - 1), min(20, k + 2))} for k in (0, 10, 19)}
    assert prepare.verify(tmp_path / 'v.mp4', 25.0, 20, check) == float('inf')
    shifted = {k: {i: written[min(19, i + 1)] for i in neighbours} for k, neighbours in check.items()}
    with pytest.raises(ValueError, match='shifted'):
        prepare.verify(tmp_path / 'v.mp4', 25.0, 20, shifted)
    with pytest.raises(ValueError, match='21 at'):
        prepare.verify(tmp_path / 'v.mp4', 25.0, 21, check)


def test_b_frames_in_an_avi_are_caught_shifted(tmp_path, monkeypatch):
    """Why an AVI copy has no B-frames: AVI has no presentation times, and with x264's B-frames the copy's frames
    come out one off; the check finds it and the copy is refused."""
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(0), 64, 48, 40)
    encode.write_video(tmp_path / 'v.avi', frames, 25, 'mpeg4', key_every=100, packed_b_frames=True)
    encoder = prepare._encoder

    def with_b_frames(*args):
        stream = encoder(*args)
        stream.options = {key: value for key, value in stream.options.items() if key != 'bf'}
        return stream
    monkeypatch.setattr(prepare, '_encoder', with_b_frames)
    with pytest.raises(ValueError, match='shifted'):
        prepare.encode_video(tmp_path / 'v.avi', tmp_path / 'copy.avi', gop=16, crf=10)


def test_variable_frame_rate_is_put_on_the_grid(tmp_path):
    """A video with a missing frame (timestamps 0, 1, 2, 4, 5, ...): frame i of the copy is what decode.py reads at
    index i of the original, the frame before the gap shown twice; the copy is constant-rate."""
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(1), 64, 48, 20)
    with av.open(str(tmp_path / 'vfr.mp4'), 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        for t, frame in zip([0, 1, 2, 4, *range(5, 21)], frames):
            picture = av.VideoFrame.from_ndarray(frame, format='rgb24')
            picture.pts = t
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    with av.open(str(tmp_path / 'vfr.mp4')) as container:
        count = decode._video_stream(container)[2]
    original = decode.read_video_frames(tmp_path / 'vfr.mp4', list(range(count))).numpy().astype(float)
    prepare.encode_video(tmp_path / 'vfr.mp4', tmp_path / 'copy.mp4', crf=10)
    copy = decode.read_video_frames(tmp_path / 'copy.mp4', list(range(count))).numpy().astype(float)
    assert copy.shape == original.shape
    errors = ((copy[:, None] - original[None]) ** 2).mean(axis=(2, 3, 4))  # (copy frame, original frame)
    assert all(errors[i, i] == errors[i].min() for i in range(count))  # nearest to its own (a tie at the gap)
    assert np.array_equal(original[3], original[2])  # the gap: the frame before it is on screen at index 3


@pytest.mark.parametrize('options', [dict(codec='mpeg4', packed_b_frames=True, audio=True), dict(codec='libx264')])
def test_copy_shows_the_original_frame_by_frame(tmp_path, options, monkeypatch):
    """Every frame of the copy (H.264 in AVI without B-frames; H.264 MP4) is nearest to the original's frame of the
    same index: also for packed B-frames (DivX-style AVI), whose frames decode.py reorders. Clips of the copy are
    read by seeking to a key frame, never by the fallback that decodes from the start."""
    suffix = '.avi' if options['codec'] == 'mpeg4' else '.mp4'
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(2), 64, 48, 40)
    encode.write_video(tmp_path / f'v{suffix}', frames, 25, options.pop('codec'), **options)
    prepare.encode_video(tmp_path / f'v{suffix}', tmp_path / f'copy{suffix}', gop=8, crf=10)  # noise << motion
    original, copy = (decode.read_video_frames(tmp_path / f'{name}{suffix}', list(range(40))).numpy().astype(float)
                      for name in ('v', 'copy'))
    errors = ((copy[:, None] - original[None]) ** 2).mean(axis=(2, 3, 4))  # (copy frame, original frame)
    assert [int(np.argmin(row)) for row in errors] == list(range(40))
    monkeypatch.setattr(decode, '_shown_frames_from_start', lambda *args: pytest.fail('decoded from the start'))
    for u in (0.1, 0.5, 0.9):
        clip = decode.read_clips(tmp_path / f'copy{suffix}', dict(sampler='stride', num_frames=4, frame_stride=4),
                                 torch.full((1, 4), u, dtype=torch.float64))
        assert clip.shape == (1, 4, 3, 48, 64)


def test_output_size():
    assert prepare.output_size(454, 256, 320) == (454, 256)   # never scaled up
    assert prepare.output_size(1280, 720, 320) == (568, 320)  # aspect kept, sides even
    assert prepare.output_size(341, 257, 0) == (340, 256)     # original size, even (ties to even)


@pytest.mark.slow  # two processes, train.py and eval.py: 15-45 s on 2 busy cores
def test_prepared_copy_trains_and_evaluates_with_only_root_changed(sources, tmp_path):
    """train.py and eval.py run on a prepared UCF101 copy with the config of the original but for its root."""
    out = tmp_path / 'ucf101'
    prepare.prepare(sources / 'ucf101', out, 'ucf101', gop=8, workers=1)
    datasets = {'motions': dict(format='ucf101', root=str(out), batch_size=2, num_frames=4, clip_seconds=0.6)}
    config = write_config(tmp_path / 'cfg.py', tmp_path, tmp_path / 'run', datasets=datasets, max_iters=4,
                          eval_interval=4, log_interval=2, warmup_iters=1)
    run('train.py', str(config))
    run('eval.py', str(config))
    assert any('motions/top1' in str(entry) for entry in read_log(tmp_path / 'run'))
    assert os.path.exists(tmp_path / 'run' / 'eval.json')

"""Tests of partial video decoding (seek, decode forward, skip what no shown frame needs), the clip samplers,
and frame folders: every partial read must equal plain full decoding of the same file."""

import io
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from PIL import Image

import config
import data
import decode
from tools import encode
import readers
from tools import synthetic

FPS = 25


def moving_video(num_frames, seed=0):
    """Frames (T, 48, 64, 3) that all differ: a shape crossing the frame, then another one growing."""
    rng = np.random.default_rng(seed)
    half = num_frames // 2
    return np.concatenate([synthetic.render_video('MoveLeft', rng, 64, 48, half),
                           synthetic.render_video('Grow', rng, 64, 48, num_frames - half)])


def mux_frames(container, stream, frames, times=None):
    """Mux frames (T, H, W, 3) into an opened stream; times (T,) in stream.time_base units set the pts (VFR)."""
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
    for n, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format='rgb24')
        if times is not None:
            frame.pts, frame.time_base = int(times[n]), stream.codec_context.time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_xvid_with_b_frames(path, frames):
    """MPEG-4 Part 2 in AVI with 2 B-frames between references and open GOPs, as many XviD files: the B-frames
    shown just before a key frame refer to the frames before it."""
    with av.open(str(path), 'w', format='avi') as container:
        stream = container.add_stream('mpeg4', rate=FPS)
        stream.codec_context.max_b_frames, stream.codec_context.gop_size = 2, 20
        stream.codec_context.codec_tag = 'XVID'
        mux_frames(container, stream, frames)


def write_vfr(path, frames):
    """H.264 MP4 at a variable frame rate: the first half at 10 fps, the second at 30 fps."""
    half = len(frames) // 2
    seconds = np.concatenate([np.arange(half) / 10, half / 10 + np.arange(len(frames) - half) / 30])
    with av.open(str(path), 'w', format='mp4') as container:
        stream = container.add_stream('libx264', rate=30)
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = 10
        mux_frames(container, stream, frames, np.round(seconds * 1000))


class Unseekable(io.RawIOBase):
    """A write-only pipe: a Matroska muxer writing to it can store neither the duration nor the index."""
    def __init__(self):
        self.buffer = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buffer += bytes(b)
        return len(b)


def write_headerless_mkv(path, frames):
    pipe = Unseekable()
    with av.open(pipe, 'w', format='matroska') as container:
        stream = container.add_stream('libx264', rate=FPS)
        stream.codec_context.gop_size = 20
        mux_frames(container, stream, frames)
    path.write_bytes(pipe.buffer)


def write_raw_h264(path, frames):
    """An H.264 elementary stream: no container, no timestamps, no index."""
    with av.open(str(path), 'w', format='h264') as container:
        stream = container.add_stream('libx264', rate=FPS)
        stream.codec_context.gop_size = 20
        mux_frames(container, stream, frames)


FRAMES = 100  # 4 s at 25 fps
WRITERS = {
    'h264_aac.mp4': lambda p, f: encode.write_video(p, f, FPS, 'libx264', audio=True, key_every=20),
    'xvid.avi': lambda p, f: encode.write_video(p, f, FPS, 'mpeg4', key_every=20),
    'xvid_b_frames.avi': write_xvid_with_b_frames,
    'xvid_packed.avi': lambda p, f: encode.write_video(p, f, FPS, 'mpeg4', audio=True, key_every=20,
                                                          packed_b_frames=True),
    'vp9.webm': lambda p, f: encode.write_video(p, f, 12, 'libvpx-vp9', key_every=20),
    'vfr.mp4': write_vfr,
    'no_duration.mkv': write_headerless_mkv,
    'raw.h264': write_raw_h264,
}


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('videos')
    frames = moving_video(FRAMES)
    for name, write in WRITERS.items():
        write(folder / name, frames)
    return folder


def decode_everything(path):
    """The reference: every frame, in order, with its time in stream.time_base (raw streams: by frame number)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps, base = float(stream.average_rate or stream.guessed_rate), float(stream.time_base)
        frames = [(f.pts if f.pts is not None else round(n / fps / base), f.to_ndarray(format='rgb24'))
                  for n, f in enumerate(container.decode(stream))]
    return frames, fps, frames[0][0], base  # the grid starts at the first frame


def on_screen(frames, time):
    """The frame on screen at `time`: the last to start at or before it (the first before the first)."""
    starts = np.array([t for t, _ in frames])
    return frames[max(0, int(np.searchsorted(starts, time, side='right')) - 1)][1]


def expected_frames(path, indices):
    """Grid index i reads the frame on screen at (i + 1/2) / fps (see decode._frame_times)."""
    frames, fps, start, base = decode_everything(path)
    images = [on_screen(frames, start + int(np.floor((i + 0.5) / fps / base))) for i in indices]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # (N, 3, H, W)


def index_sets(num_frames):
    rng = np.random.default_rng(1)
    sets = [[0], [num_frames - 1], [num_frames + 5],  # past the end: the last frame
            [37, 3, 37, 90, 12],                      # unsorted, repeated, windows far apart (several seeks)
            list(range(40, 48)), list(range(0, num_frames, 9))]
    return sets + [rng.integers(0, num_frames, rng.integers(1, 12)).tolist() for _ in range(8)]


def no_fallback(*args):
    raise AssertionError("decoded from the start: the seek-and-skip path failed")


@pytest.mark.parametrize('name', ['h264_aac.mp4', 'xvid.avi', 'xvid_b_frames.avi', 'vp9.webm', 'vfr.mp4',
                                  'no_duration.mkv'])
def test_partial_decoding_equals_full_decoding(videos, name, monkeypatch):
    path = videos / name
    monkeypatch.setattr(decode, '_shown_frames_from_start', no_fallback)  # the fast path must hold on its own
    with av.open(str(path)) as container:
        num_frames = decode._video_stream(container)[2]
    for indices in index_sets(num_frames):
        got = decode.read_video_frames(path, indices)
        assert got.shape == (len(indices), 3, 48, 64) and got.dtype == torch.uint8
        assert torch.equal(got, expected_frames(path, indices)), (name, indices)


@pytest.mark.parametrize('name', ['h264_aac.mp4', 'xvid.avi', 'xvid_b_frames.avi', 'vp9.webm', 'no_duration.mkv',
                                  'raw.h264'])
def test_constant_frame_rate_index_is_frame_number(videos, name):
    """In a constant-frame-rate video, grid index i is simply the i-th decoded frame (a check of the reference)."""
    everything = torch.from_numpy(np.stack([image for _, image in decode_everything(videos / name)[0]]))
    indices = [0, 1, 19, 20, 21, 50, 99]
    assert len(everything) == FRAMES
    assert torch.equal(decode.read_video_frames(videos / name, indices), everything[indices].permute(0, 3, 1, 2))


def sequential_frames(path):
    """Every frame of a plain decode from the start, in the order the decoder hands them out: (T, 3, H, W)."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format='rgb24') for frame in container.decode(video=0)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)


def test_packed_b_frames_file_is_packed(videos):
    """The synthetic file has the quirk of DivX 5 / XviD packed files: the header's user data says 'p'acked, a
    chunk holds a P-frame and the B-frame shown before it, a placeholder chunk of a few bytes follows, and the
    times derived from the chunks' order are out of order for the frames a plain decode hands out."""
    path = videos / 'xvid_packed.avi'
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert b'DivX503b1393p' in stream.codec_context.extradata and decode._packed(stream)
        assert [s.type for s in container.streams] == ['video', 'audio'] and stream.frames == FRAMES
        chunks = [bytes(packet) for packet in container.demux(stream) if packet.size]
    with av.open(str(path)) as container:
        pts = [frame.pts for frame in container.decode(video=0)]
    assert len(chunks) == FRAMES and len(pts) == FRAMES
    two = [k for k, chunk in enumerate(chunks) if chunk.count(decode.VOP_START) == 2]
    assert len(two) > FRAMES // 3 and all(len(chunks[k + 1]) < 20 for k in two)  # P+B, then a placeholder
    assert any(b < a for a, b in zip(pts, pts[1:]))
    for name in ('xvid.avi', 'xvid_b_frames.avi', 'h264_aac.mp4'):
        with av.open(str(videos / name)) as container:
            assert not decode._packed(container.streams.video[0])


def test_packed_b_frames_read_the_sequential_frames(videos, monkeypatch):
    """On a packed file, grid index i reads the i-th frame of a plain decode (as PyAV, decord and the ffmpeg
    command line decode it), for every index, on the seek path and on the path from the start alike."""
    path = videos / 'xvid_packed.avi'
    everything = sequential_frames(path)
    assert len(everything) == FRAMES
    monkeypatch.setattr(decode, '_shown_frames_from_start', no_fallback)
    for indices in [list(range(FRAMES))] + index_sets(FRAMES):
        expected = everything[torch.as_tensor(indices).clamp(max=FRAMES - 1)]
        assert torch.equal(decode.read_video_frames(path, indices), expected), indices
    spec = dict(sampler='window', num_frames=8, clip_seconds=1.0)
    for u in torch.linspace(0, 1, 9, dtype=torch.float64):  # windows everywhere, each read with its own seek
        indices = decode.clip_indices(spec, FRAMES, FPS, u.expand(1, 8))
        assert torch.equal(decode.read_clips(path, spec, u.expand(1, 8))[0], everything[indices[0]])
    monkeypatch.undo()
    monkeypatch.setattr(decode, '_shown_frames', lambda *args: None)  # decode from the start
    assert torch.equal(decode.read_video_frames(path, list(range(FRAMES))), everything)


def test_headers(videos):
    """The files cover what the brief asks for: an audio track, no frame count in the header, a variable rate,
    no duration at all (the length is counted from the packets), no timestamps at all."""
    def probe(name):
        with av.open(str(videos / name)) as container:
            stream = container.streams.video[0]
            return dict(types=[s.type for s in container.streams], frames=stream.frames, duration=stream.duration,
                        container=container.duration, pts=[f.pts for f in container.decode(stream)])
    assert probe('h264_aac.mp4')['types'] == ['video', 'audio']
    assert probe('vp9.webm')['frames'] == 0
    assert len(set(np.diff(probe('vfr.mp4')['pts']).tolist())) > 1
    headerless = probe('no_duration.mkv')
    assert headerless['frames'] == 0 and not headerless['duration'] and not headerless['container']
    with av.open(str(videos / 'no_duration.mkv')) as container:
        assert decode._video_stream(container)[2] == FRAMES
    assert set(probe('raw.h264')['pts']) == {None}
    assert probe('xvid_b_frames.avi')['pts'][0] == 1  # the first frame is shown at pts 1 (start_time says 0)


@pytest.mark.skipif(not hasattr(av.stream, 'Discard'), reason="this PyAV cannot tell the demuxer to skip a stream")
@pytest.mark.parametrize('name', ['h264_aac.mp4', 'xvid_packed.avi'])
def test_the_demuxer_skips_the_audio(videos, name):
    """Reading a video does not read its audio track: after _first_video_stream and a seek (reading seeks before it
    demuxes; the packets that opening the file buffered come out first otherwise), demuxing every stream yields
    video packets only: the audio is skipped, not read and dropped."""
    with av.open(str(videos / name)) as container:
        assert [s.type for s in container.streams] == ['video', 'audio']
        stream, _ = decode._first_video_stream(container)
        container.seek(stream.start_time or 0, stream=stream)
        types = [packet.stream.type for packet in container.demux() if packet.size]
    assert types.count('video') == FRAMES and set(types) == {'video'}


def test_vfr_reads_what_is_on_screen(videos):
    """In the VFR file frames 0-49 last 0.1 s and frames 50-99 1/30 s: a grid index reads the frame a viewer
    sees at its time, e.g. grid frames 0..3 at 15 fps (4 frames in 0.27 s) all lie within frames 0..2."""
    frames, fps, _, _ = decode_everything(videos / 'vfr.mp4')
    assert 10 < fps < 20  # the average rate: 100 frames in 6.67 s
    got = decode.read_video_frames(videos / 'vfr.mp4', [0, 1, 2, 3])
    first_three = torch.from_numpy(np.stack([image for _, image in frames[:3]])).permute(0, 3, 1, 2)
    assert all(any(torch.equal(g, f) for f in first_three) for g in got)


def test_fallback_from_the_start_is_exact(videos, monkeypatch):
    """When seeking cannot be trusted, decoding from the start gives the same frames; raw H.264 (no timestamps)
    always takes this path."""
    indices = [3, 47, 47, 90, 120]
    fast = {name: decode.read_video_frames(videos / name, indices) for name in ('h264_aac.mp4', 'xvid_b_frames.avi')}
    monkeypatch.setattr(decode, '_shown_frames', lambda *args: None)
    for name, frames in fast.items():
        assert torch.equal(decode.read_video_frames(videos / name, indices), frames)
    assert torch.equal(decode.read_video_frames(videos / 'raw.h264', indices), expected_frames(videos / 'raw.h264',
                                                                                             indices))


def test_one_seek_per_group_of_windows(videos, monkeypatch):
    """Windows within SEEK_GAP_SECONDS of each other share one seek and one forward pass; a window further away
    gets its own seek. Evaluation views that overlap therefore cost one pass."""
    seeks = []
    packets = decode._packets
    monkeypatch.setattr(decode, '_packets', lambda *args: seeks.append(args[2]) or packets(*args))
    spec = dict(sampler='window', num_frames=4, clip_seconds=1.0)
    decode.read_clips(videos / 'h264_aac.mp4', spec, decode.eval_positions('window', 5, 4))  # 5 windows over 4 s
    assert len(seeks) == 1
    seeks.clear()
    decode.read_video_frames(videos / 'h264_aac.mp4', [0, 1, 2, 90, 91])  # 0.08 s and 3.6 s: two groups
    assert len(seeks) == 2


# -----------------------------------------------------------------------------
# clip samplers


def spec(**kw):
    return config.dataset_spec('v', dict(format='ucf101', root='/x', **kw))


def test_window_covers_the_same_seconds_at_any_fps():
    """IV-ViT's window: the same duration whatever the frame rate (the DRL supplement's adaptive frame rate)."""
    s = spec(sampler='window', num_frames=8, clip_seconds=2.0)
    u = torch.full((1, 8), 0.5, dtype=torch.float64)
    for fps in (12, 25, 30, 60):
        indices = decode.clip_indices(s, 10 * fps, fps, u)[0]    # a 10 s video
        seconds = (indices + 0.5) / fps
        assert 1.6 < float(seconds[-1] - seconds[0]) < 2.0      # 7/8 of the window between first and last
        assert abs(float(seconds.mean()) - 5.0) < 1.5 / fps     # centred in the video


def test_stride_scales_with_fps():
    """MViT's 16x4: frames 4 apart at 30 fps, 8 apart at 60 fps, 2 apart at 15 fps: always 16 * 4 / 30 s."""
    s = spec(sampler='stride', num_frames=16, frame_stride=4)
    u = torch.zeros(1, 16, dtype=torch.float64)
    for fps, step in ((30, 4), (60, 8), (15, 2)):
        indices = decode.clip_indices(s, 10 * fps, fps, u)[0]
        assert indices.tolist() == list(range(0, 16 * step, step))
    end = decode.clip_indices(s, 300, 30, torch.ones(1, 16, dtype=torch.float64))[0]
    assert end.tolist() == list(range(300 - 64, 300, 4))  # the last window ends at the video's end


def test_short_video_repeats_its_last_frame():
    """A 20-frame video and a 2 s window at 30 fps (60 frames): the window starts at frame 0 whatever the start,
    keeps its speed, and the indices past the end read the last frame."""
    u = torch.full((1, 8), 0.7, dtype=torch.float64)
    window = decode.clip_indices(spec(sampler='window', num_frames=8, clip_seconds=2.0), 20, 30, u)
    assert window.tolist() == [[3, 11, 18, 19, 19, 19, 19, 19]]  # centres 3.75, 11.25, 18.75, 26.25, ...
    stride = decode.clip_indices(spec(sampler='stride', num_frames=8, frame_stride=8), 20, 30, u)
    assert stride.tolist() == [[0, 8, 16, 19, 19, 19, 19, 19]]


def test_segments_cover_the_whole_video():
    s = spec(sampler='segments', num_frames=4)
    centres = decode.clip_indices(s, 100, 25, decode.eval_positions('segments', 1, 4))
    assert centres.tolist() == [[12, 37, 62, 87]]
    torch.manual_seed(0)
    for _ in range(20):  # training: a random frame in each segment
        indices = decode.clip_indices(s, 100, 25, decode.train_positions('segments', 4))[0]
        assert all(25 * k <= i < 25 * (k + 1) for k, i in enumerate(indices.tolist()))
    views = decode.clip_indices(s, 100, 25, decode.eval_positions('segments', 2, 4))
    assert views.tolist() == [[6, 31, 56, 81], [18, 43, 68, 93]]  # 2 views: offsets 1/4 and 3/4 of each segment
    assert decode.clip_indices(s, 3, 25, decode.eval_positions('segments', 1, 4)).tolist() == [[0, 1, 1, 2]]


def test_eval_positions_and_train_positions():
    assert decode.eval_positions('window', 3, 2).tolist() == [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    assert decode.eval_positions('stride', 1, 2).tolist() == [[0.5, 0.5]]
    torch.manual_seed(3)
    u = decode.train_positions('window', 4)
    assert u.shape == (1, 4) and len(set(u[0].tolist())) == 1       # one start for the window
    u = decode.train_positions('segments', 4)
    assert u.shape == (1, 4) and len(set(u[0].tolist())) == 4       # one offset per segment


def test_segment_of_the_video():
    """A time segment (ActivityNet) restricts the clip to its frames, clamped to the video's end."""
    s = spec(sampler='segments', num_frames=4)
    first, count = decode._segment_frames((2.0, 3.0), 25, 100)
    assert (first, count) == (50, 25)
    indices = first + decode.clip_indices(s, count, 25, decode.eval_positions('segments', 1, 4))
    assert ((50 <= indices) & (indices < 75)).all()
    assert decode._segment_frames((3.5, 9.0), 25, 100) == (87, 13)   # past the end: cut at the last frame
    assert decode._segment_frames(None, 25, 100) == (0, 100)


@pytest.mark.parametrize('sampler', ['window', 'stride', 'segments'])
def test_video_dataset_samplers_and_views(sampler, tmp_path):
    root = tmp_path / 'ucf'
    synthetic.write_synthetic_ucf101(root, classes=('MoveLeft', 'Grow'), groups=8, clips=1, seconds=1.0)
    cfg = SimpleNamespace(img_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, num_workers=0, seed=0, device='cpu',
                          num_temporal_clips=3, num_spatial_crops=1, grad_accum=1, sampling='round_robin')
    s = config.dataset_spec('u', dict(format='ucf101', root=str(root), sampler=sampler, num_frames=4,
                                    clip_seconds=0.5, frame_stride=3))
    samples, classes = readers.read_ucf101(root, 'train')
    train = data.VideoDataset(samples, classes, True, s, cfg)
    x, y = train[(0, 5)]
    assert x.shape == (3, 4, 32, 32) and torch.equal(x, train[(0, 5)][0]) and not torch.equal(x, train[(0, 6)][0])
    views, _ = data.VideoDataset(samples, classes, False, s, cfg)[(0, 0)]
    assert views.shape == (3, 3, 4, 32, 32)
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])  # 3 different clips


def test_colour_jitter_is_drawn_from_the_sample_seed(tmp_path):
    root = tmp_path / 'tiny'
    synthetic.write_synthetic_tinyimagenet(root, num_classes=2, train_per_class=2, val_per_class=1)
    cfg = SimpleNamespace(img_size=64, mean=(0.5,) * 3, std=(0.25,) * 3, num_workers=0, seed=0, device='cpu',
                          num_temporal_clips=1, num_spatial_crops=1)
    samples, classes = readers.read_tinyimagenet(root, 'train')
    plain = dict(format='tinyimagenet', root=str(root), crop_scale=(1.0, 1.0), flip=False)
    off = data.ImageDataset(samples, classes, True, config.dataset_spec('t', plain), cfg)
    on = data.ImageDataset(samples, classes, True, config.dataset_spec('t', {**plain, 'color_jitter': 0.5}), cfg)
    a, b = on[(0, 11)][0], on[(0, 12)][0]
    assert torch.equal(a, on[(0, 11)][0])                                    # the seed fixes the jitter
    assert not torch.allclose(a, b) and not torch.allclose(a, off[(0, 11)][0])
    assert torch.allclose(off[(0, 11)][0], off[(0, 12)][0], atol=1e-5)      # no jitter, no flip, whole image
    with pytest.raises(ValueError, match='color_jitter'):
        config.dataset_spec('t', {**plain, 'color_jitter': 2.0})


def test_dataset_spec_checks_new_keys():
    with pytest.raises(ValueError, match="sampler must be one of window, stride, segments"):
        spec(sampler='uniform')
    with pytest.raises(ValueError, match="frames_fps"):
        spec(frames=True)
    with pytest.raises(ValueError, match="video format"):
        config.dataset_spec('t', dict(format='tinyimagenet', root='/x', frames=True, frames_fps=25))
    with pytest.raises(ValueError, match="max_bad_fraction"):
        spec(max_bad_fraction=1.5)


# -----------------------------------------------------------------------------
# frame folders


def test_frame_folder_path():
    assert decode.frame_folder('/d/ucf', '/d/ucf/UCF-101/Run/v_Run_g01_c01.avi') == \
        data.Path('/d/ucf/frames/UCF-101/Run/v_Run_g01_c01')


def test_frame_folders_pick_the_right_files(tmp_path):
    """Frame i of the grid is img_{i+1:05d}.jpg: frames painted with their own number tell which were read."""
    folder = tmp_path / 'frames' / 'v'
    folder.mkdir(parents=True)
    for n in range(1, 31):  # 30 frames, frame n painted grey level 8 n
        Image.new('RGB', (16, 12), (8 * n,) * 3).save(folder / decode.FRAME_NAME.format(n), quality=95)
    s = spec(sampler='stride', num_frames=4, frame_stride=2, frames=True, frames_fps=15)
    clips = decode.read_frame_clips(folder, s, torch.zeros(1, 4, dtype=torch.float64))  # stride 1 at 15 fps
    assert clips.shape == (1, 4, 3, 12, 16)
    numbers = (clips[0, :, 0].float().mean((1, 2)) / 8).round().long()
    assert numbers.tolist() == [1, 2, 3, 4]
    end = decode.read_frame_clips(folder, s, torch.ones(1, 4, dtype=torch.float64), segment=(0.0, 1.0))
    assert ((end[0, :, 0].float().mean((1, 2)) / 8).round().long()).tolist() == [12, 13, 14, 15]  # within 1 s
    with pytest.raises(decode.UnreadableSample, match=str(tmp_path / 'frames' / 'absent')):
        decode.read_frame_clips(tmp_path / 'frames' / 'absent', s, torch.zeros(1, 4, dtype=torch.float64))


def test_frame_folders_match_the_videos(tmp_path):
    """A dataset read from its extracted frames (frames=True) gives the clips of the videos, up to JPEG."""
    root = tmp_path / 'hmdb'
    synthetic.write_synthetic_hmdb51(root, classes=('MoveLeft', 'Grow'), videos_per_class=4, seconds=1.0)
    decode.write_frame_folders(root)
    cfg = SimpleNamespace(img_size=48, mean=(0.0,) * 3, std=(1.0,) * 3, num_workers=0, seed=0, device='cpu',
                          num_temporal_clips=2, num_spatial_crops=1)
    samples, classes = readers.read_hmdb51(root, 'train')
    assert len(list(decode.frame_folder(root, samples[0][0]).glob('img_*.jpg'))) == 25
    common = dict(format='hmdb51', root=str(root), num_frames=4, clip_seconds=0.6)
    videos = data.VideoDataset(samples, classes, False, config.dataset_spec('h', common), cfg)
    frames = data.VideoDataset(samples, classes, False, config.dataset_spec('h', {**common, 'frames': True,
                                                                                'frames_fps': 25}), cfg)
    for index in range(len(samples)):
        a, b = videos[(index, 0)][0], frames[(index, 0)][0]
        other = frames[((index + 1) % len(samples), 0)][0]
        assert a.shape == b.shape and (a - b).abs().mean() < 0.04  # on a 0..1 scale; JPEG blurs the noise
        assert (a - other).abs().mean() > 2 * (a - b).abs().mean()

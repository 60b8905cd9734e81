"""
From files to pixels: images with PIL, videos with PyAV, folders of extracted frames, and the clip samplers that
choose which frames of a video a clip holds.

A video is decoded from the key frame before a clip up to the clip's last frame only, skipping the frames that no
other frame refers to unless they are shown (see _shown_frames); several clips of one video less than a second
apart are read in one pass. Three samplers map positions in [0, 1) to frame indices (see clip_indices): a fixed
duration ('window', IV-ViT and the DRL supplement), a fixed stride ('stride', MViT's 16x4) and TSN-style segments.

A file that cannot be read raises UnreadableSample naming it; data.py's datasets replace such a sample by another
(see the bad-input policy in data.py).
"""

import bisect
import contextlib
import itertools
import math
import os
import re
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext
from av.video.reformatter import VideoReformatter
import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF


class UnreadableSample(RuntimeError):
    """A sample that cannot be read (missing, empty, truncated, undecodable, no video stream). Datasets replace
    such a sample by another (see the bad-input policy in data.py); any other exception is a bug and stops the run."""


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
    """The first video stream and its average frame rate; the demuxer is told to skip the other streams. Its
    decoder gets one thread: PyAV's default starts a thread per core to decode the slices of a frame, and most
    H.264 videos (x264's) have one slice a frame, so that the threads only pass the work around (two context
    switches a frame); data loader workers use the cores."""
    if not container.streams.video:
        raise ValueError("no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    if hasattr(av.stream, 'Discard'):  # PyAV 18 has it; older releases read the other streams' packets and drop them
        for other in container.streams:
            if other.index != stream.index:
                other.discard = av.stream.Discard.all  # the demuxer skips their packets (an AVI's audio chunks)
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise ValueError("unknown frame rate")
    return stream, float(fps)


# Packed B-frames. DivX 5 and XviD's "packed bitstream" write MPEG-4 Part 2 AVIs with one chunk per frame shown,
# for decoders that return one frame per chunk at once: a chunk holds a reference picture and the B-frame shown
# before it, and a placeholder (an N-VOP, a picture "not coded") follows where the reference is shown. The user
# data in the stream's header says so: 'DivX503b1393p', p for packed. AVI has no presentation times; FFmpeg derives
# them from the chunks' order, which puts the B-frame's time on its reference (and the other way round), so
# reading by time would swap them. FFmpeg's bitstream filter mpeg4_unpack_bframes gives each picture its own
# packet (the B-frame in the placeholder's); _unpacked then times them as FFmpeg times an unpacked file.
PACKED = re.compile(rb'DivX\d+(?:Build|b)\d+p')  # as FFmpeg's decoder reads the user data
VOP_START = b'\x00\x00\x01\xb6'                  # a picture starts with this code, then 2 bits of its type


def _packed(stream):
    """Whether the stream holds packed B-frames. FFmpeg gives an AVI without a stream header in its index (the
    usual case) the one of the first key frame, where DivX and XviD write the user data."""
    return stream.codec_context.name == 'mpeg4' and bool(PACKED.search(stream.codec_context.extradata or b''))


def _unpacked(packets, stream):
    """
    The packets of a packed stream (see above), in decoding order, one picture each, each with the time it is
    shown: a B-frame is shown when decoded (pts = dts), a reference picture when the next reference is decoded
    (pts = that one's dts; the last one, after its B-frames). A reference is held back until the next one arrives.
    """
    unpack = BitStreamFilterContext('mpeg4_unpack_bframes', stream)
    reference = None
    b_frames = []
    for packet in itertools.chain.from_iterable(map(unpack.filter, packets)):
        data = bytes(packet)
        if data[data.find(VOP_START) + 4] >> 6 == 2:  # coding type 2: a B-frame
            packet.pts = packet.dts
            b_frames.append(packet)
            continue
        if reference is not None:
            reference.pts = packet.dts
        yield from [reference, *b_frames] if reference is not None else b_frames
        reference = packet
        b_frames = []
    if reference is not None:
        reference.pts = (b_frames[-1] if b_frames else reference).dts + 1
    yield from [reference, *b_frames] if reference is not None else b_frames


def _demux(container, stream):
    """The video packets from where the demuxer stands, in decoding order, without the empty one that ends the
    stream; in a stream of packed B-frames, one picture each and timed (see _unpacked)."""
    packets = (packet for packet in container.demux(stream) if packet.size)
    return _unpacked(packets, stream) if _packed(stream) else packets


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
    packets = _demux(container, stream)
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
    """Timestamps in stream.time_base of grid indices (a list of N ints each): the middles of their intervals after the
    first frame's pts `origin`. In a constant-frame-rate video the frame on screen there is frame i, half a frame
    away from rounding trouble; in a variable-frame-rate video it is the frame a viewer sees at that moment."""
    time_base = float(stream.time_base)
    return [origin + math.floor((i + 0.5) / fps / time_base) for i in indices]


def _packets(container, stream, seek_to, last):
    """The video packets from the key frame at or before seek_to up to the first one decoded after `last`: as no
    frame is shown before it is decoded (pts >= dts), no later packet can be on screen at or before `last`."""
    container.seek(seek_to, stream=stream, backward=True)
    packets = []
    for packet in _demux(container, stream):
        packets.append(packet)
        if packet.dts is not None and packet.dts > last:
            break
    return packets


def _shown_frames(container, stream, times, keep):
    """
    For sorted distinct timestamps `times` (a list of ints), hands the frame on screen at each (the one with
    the largest pts <= time) to keep(frame, [the times it is on screen at]) as soon as it is decoded, so that the
    decoder can reuse its buffer. It decodes as little as it can:
      1. seek to the key frame at or before times[0] (decoding has to start at a key frame), or one further
         back when times[0] is before that key frame's pts: the B-frames shown just before a key frame may
         refer to the frames before it (open GOPs, XviD);
      2. demux (cheap: nothing is decoded) up to the first packet decoded after times[-1] (see _packets);
      3. the packets' pts tell which frames are shown. Each needs the packets from the last key frame shown at
         or before it up to its own; where the next shown frame's key frame comes after that, the packets in
         between are not decoded at all: the decoder restarts at the key frame, as after a seek (videos with
         a key frame every few frames, such as XviD's 12, save most of their frames this way);
      4. the packets in between that no shown frame needs are decoded with skip_frame='NONREF', so that the
         frames no other frame refers to (most B-frames) are skipped: the reference frames, hence the shown
         ones, come out bit-exact, at about half the work.
    Returns False when the packets cannot show every time (the file cannot seek, no key frame where the demuxer
    landed, or the decoder dropped a frame it was asked for): the caller then decodes from the start.
    """
    seek_to = times[0]
    landed = None
    for _ in range(4):
        try:
            packets = _packets(container, stream, seek_to, times[-1])
        except av.error.FFmpegError:  # a file without an index may not seek at all
            return False
        if not packets or not packets[0].is_keyframe or packets[0].pts is None:
            return False
        key = packets[0]
        if times[0] >= key.pts or key.pts == landed:  # at the stream's first key frame nothing is shown before it
            break
        landed = key.pts
        seek_to = min(key.pts, key.pts if key.dts is None else key.dts) - 1
    else:
        return False
    # Plain ints and lists: a clip's few numbers cost less this way than as arrays (docs/speed.md, Decoding).
    packet_pts = [p.pts for p in packets]  # decoding order; None where unknown
    pts = sorted(t for t in packet_pts if t is not None)
    at = {}  # {pts shown: the times it is on screen at}; the last packet to start at or before a time is shown
    for t in times:                        # then, and times before the first frame show it
        at.setdefault(pts[max(0, bisect.bisect_right(pts, t) - 1)], []).append(t)
    wanted = set(at)
    keys = [k for k, p in enumerate(packets) if p.is_keyframe and packet_pts[k] is not None]  # decoding order
    key_pts = [packet_pts[k] for k in keys]                                                    # increasing
    position = {t: k for k, t in enumerate(packet_pts) if t in wanted}
    runs = []  # [first, last] positions of the packets decoded in one go
    for s in sorted(wanted):
        first = keys[max(0, bisect.bisect_right(key_pts, s) - 1)]  # the last key frame shown at or before s
        if runs and first <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], position[s])
        else:
            runs.append([first, position[s]])
    codec = stream.codec_context
    skip = 'DEFAULT'
    for first, last in runs:
        for packet, t in itertools.chain(zip(packets[first:last + 1], packet_pts[first:last + 1]), [(None, None)]):
            mode = 'DEFAULT' if t is None or t in wanted else 'NONREF'  # None: hand out what the decoder holds
            if mode != skip:  # set only when it changes
                codec.skip_frame = skip = mode
            for frame in codec.decode(packet):
                if frame.pts in at:
                    keep(frame, at.pop(frame.pts))
        codec.flush_buffers()  # the next run starts at a key frame, as after a seek
    return not at


def _shown_frames_from_start(path, times, origin):
    """The sure way, for files whose seeking or timestamps cannot be trusted: decode every frame from the start.
    A frame without a pts is placed on the frame-rate grid from `origin` by its number; times before the first
    frame show it, times past the end the last frame."""
    with av.open(str(path)) as container:
        stream, fps = _first_video_stream(container)
        frames = {}
        previous = None
        i = 0
        packets = itertools.chain(_demux(container, stream), [None])  # None: the decoder hands out what it holds
        for n, frame in enumerate(f for packet in packets for f in stream.codec_context.decode(packet)):
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
    """Frames at grid indices (a list of N ints) as a uint8 array (N, H, W, 3): the sorted distinct timestamps, in
    groups no more than SEEK_GAP_SECONDS apart, each read by one seek and one forward pass (see _shown_frames).
    Only the frames returned are converted to RGB, each once, as soon as decoded."""
    times = _frame_times(stream, fps, origin, indices)                                  # N ints
    distinct = sorted(set(times))
    gap = SEEK_GAP_SECONDS / float(stream.time_base)
    groups = []
    for t in distinct:
        if not groups or t - groups[-1][-1] > gap:
            groups.append([])
        groups[-1].append(t)
    rows = {}  # {time: the output rows that show it}
    for n, t in enumerate(times):
        rows.setdefault(t, []).append(n)
    rgb = VideoReformatter()  # one converter for the clip (frame.to_ndarray builds one per frame)
    video = []

    def keep(frame, shown_at):
        """Convert a frame once (one thread: the work is too small to share, and loader workers use the cores),
        straight into the rows of the times it is on screen at, and let it go."""
        plane = rgb.reformat(frame, format='rgb24', threads=1).planes[0]  # rows of line_size >= 3 W bytes
        if not video:
            video.append(np.empty((len(times), frame.height, 3 * frame.width), np.uint8))  # (N, H, 3 W)
        image = np.frombuffer(plane, np.uint8).reshape(frame.height, -1)[:, :3 * frame.width]  # (H, 3 W)
        for t in shown_at:
            for n in rows[t]:
                video[0][n] = image

    for group in groups:
        if not _shown_frames(container, stream, group, keep):
            for t, frame in _shown_frames_from_start(path, distinct, origin).items():
                keep(frame, [t])
            break
    frames, height, width3 = video[0].shape
    return video[0].reshape(frames, height, width3 // 3, 3)  # (N, H, W, 3)


def read_video_frames(path, indices):
    """Frames of a video at grid indices (N,) (index i: the frame on screen at (i + 1/2) / fps), uint8 (N, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, fps, _, origin = _video_stream(container)
        video = _decode(path, container, stream, fps, origin, torch.as_tensor(indices).tolist())  # (N, H, W, 3)
    return torch.from_numpy(video).permute(0, 3, 1, 2)                                             # (N, 3, H, W)


def read_clips(path, spec, u, segment=None):
    """K clips of spec's sampler at positions u (K, T) (see clip_indices), inside the time segment (t0, t1) in
    seconds when given (ActivityNet), decoded together: uint8 (K, T, 3, H, W)."""
    with _reading(path), av.open(str(path)) as container:
        stream, fps, count, origin = _video_stream(container)
        first, frames = _segment_frames(segment, fps, count)
        indices = clip_indices(spec, frames, fps, u)                                               # (K, T)
        video = _decode(path, container, stream, fps, origin, [first + i for i in indices.view(-1).tolist()])
    video = video.reshape(*indices.shape, *video.shape[1:])                                        # (K, T, H, W, 3)
    return torch.from_numpy(video).permute(0, 1, 4, 2, 3)                                          # (K, T, 3, H, W)


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

"""
Prepare a video dataset once, read it many times faster: a mirror of the dataset with every video re-encoded with
a key frame every few frames, at most the short side training needs, no audio.

    python -m tools.prepare data/k400 data/k400_prepared --format=kinetics --workers=16
    python -m tools.prepare data/moments data/moments_prepared --format=moments --short_side=0 --gop=16 --crf=23

A config then changes only the dataset's `root` (to data/k400_prepared). Why it pays: videos downloaded from
YouTube are encoded for streaming, with a key frame every few seconds or only one (a Kinetics-400 clip of 250
frames often has a single one), and decoding has to start at a key frame, so a training clip near the end of a
video means decoding almost all of it. With a key frame every --gop frames, a clip costs its own frames and at most
--gop more (see decode._shown_frames); x264's tune fastdecode makes each frame cheaper to decode. docs/prepare.md
has the measurements, why the defaults are what they are, and the cores per GPU it saves.

What is written, at the same relative path and under the same name, so that the annotation files still point at it:
  - every video (a file whose suffix is one of VIDEO_SUFFIXES, in any folder: any layout works) re-encoded with
    PyAV: H.264 (libx264, --crf, preset veryfast, tune fastdecode unless --fastdecode=0) in its own container
    (.mp4, .mkv, .mov, and .avi, which holds H.264 without B-frames, as AVI has no presentation times), VP9 in
    .webm (WebM holds no H.264); a key frame every --gop frames (x264 adds one at a scene cut); the short side
    scaled down to --short_side when it is longer (aspect kept, even sides), else the original size; the frame
    rate and the number of frames of the original, frame i of the copy being the frame decode.py reads at index i
    of the original (a variable-frame-rate video is resampled to that grid), so that the clip samplers' indices
    mean the same frames; the original's colour tags; no audio track;
  - a video whose key frames are at most --gop frames apart already, at most --short_side high and wide, is copied
    as it is (UCF101's and HMDB51's XviD AVIs: re-encoding them to H.264 would make them slower to read);
  - every other file (annotations, split lists, class lists, a frames/ folder) copied as it is.

Every video is checked as it is written: written to a temporary name, then read back with decode.py's own frame
counting (frame count and frame rate equal to the original's, every frame in the file) and five of its frames, from
the first to the last, read with decode.read_video_frames, each of which must be the frame written at that index
and not a neighbour where the two can be told apart (see verify); then renamed to its name. A rerun skips every finished output (delete the copy to prepare
it again with other settings). A video that cannot be read is not written, and is listed in the summary (the
readers then treat it as missing: Kinetics and ActivityNet skip it, the others replace it at training time, as
they would have the unreadable original); it never stops the run. With --format, the dataset's reader reads the
original before anything is written (a wrong root stops here, not hours later) and the copy at the end: the same
samples with the same labels.
"""

import argparse
import itertools
import multiprocessing
import os
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, when run as a file

import config
import decode

CONTAINERS = {'.avi': 'avi', '.mp4': 'mp4', '.mkv': 'matroska', '.webm': 'webm', '.mov': 'mov'}  # suffix: muxer
VIDEO_SUFFIXES = tuple(CONTAINERS)  # the files re-encoded, suffixes compared lower-cased
PARTIAL = '.prepare-partial'  # the suffix of an output being written: renamed to its name once verified
CHECKED = (0, 0.25, 0.5, 0.75, 1)  # where in a copy the frames checked against those written are (see verify)
PRESET = 'veryfast'           # libx264's speed preset: a 10-s 454x256 clip in under a second of one core


def output_size(width, height, short_side):
    """(width, height) of the copy: the short side scaled down to short_side when it is longer (0: never), the
    aspect kept, both sides even (4:2:0 chroma needs them even: an odd side is rounded to the nearest even one)."""
    scale = min(1.0, short_side / min(width, height)) if short_side else 1.0
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _grid_frames(path, fps, count, origin):
    """
    The frames of a video on decode.py's grid, in order: frame i is the one on screen at index i (the middle of
    [i / fps, (i + 1) / fps) after the first frame's pts `origin`, see decode._frame_times), count frames in all,
    times past the last frame showing the last one, as decode.read_video_frames reads them. Every frame is decoded
    once, from the start (packed B-frames unpacked, see decode._demux); a frame without a pts is placed on the grid
    by its number. In a constant-frame-rate video this is every frame once.
    """
    with av.open(str(path)) as container:  # opened anew: reading the frame count may have demuxed every packet
        stream, _ = decode._first_video_stream(container)
        times = decode._frame_times(stream, fps, origin, range(count))
        previous = None  # the last frame decoded
        i = 0            # the next grid index to hand out
        n = 0            # frames decoded
        for packet in itertools.chain(decode._demux(container, stream), [None]):  # None: the decoder's last frames
            for frame in stream.codec_context.decode(packet):
                pts = frame.pts if frame.pts is not None else origin + int(n / fps / stream.time_base)
                n += 1
                while i < count and times[i] < pts:
                    yield frame if previous is None else previous
                    i += 1
                previous = frame
    if previous is None:
        raise ValueError("no frame could be decoded")
    for _ in range(i, count):
        yield previous


def _encoder(container, suffix, fps, width, height, gop, crf, fastdecode, like):
    """The output stream: H.264 (VP9 in WebM) at fps, one thread (the workers use the cores), a key frame every gop
    frames, quality crf, x264's tune fastdecode when asked (CAVLC in place of CABAC, no deblocking filter: simpler
    to decode), the colour tags of the original's first frame `like`."""
    if suffix == '.webm':
        stream = container.add_stream('libvpx-vp9', rate=fps)
        stream.options = {'crf': str(crf), 'b': '0', 'deadline': 'good', 'cpu-used': '4', 'row-mt': '0'}
    else:
        stream = container.add_stream('libx264', rate=fps)
        stream.options = {'crf': str(crf), 'preset': PRESET, **({'tune': 'fastdecode'} if fastdecode else {}),
                          **({'bf': '0'} if suffix == '.avi' else {})}
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    codec = stream.codec_context
    codec.time_base = Fraction(1) / fps
    codec.thread_count = 1
    codec.gop_size = gop
    for tag in ('colorspace', 'color_range', 'color_primaries', 'color_trc'):  # so that RGB comes out the same
        setattr(codec, tag, getattr(like, tag))
    return stream


def _rgb(frame):
    """A frame as decode.py converts it: (H, W, 3) uint8."""
    return frame.reformat(format='rgb24', threads=1).to_ndarray()


def psnr(a, b):
    """Peak signal-to-noise ratio in dB of two uint8 arrays of one shape (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def encode_video(src, dst, short_side=320, gop=16, crf=23, fastdecode=True):
    """
    Write the prepared copy of video src to dst (a new file; its suffix names the container; dst's name may end
    with PARTIAL), and check it (see verify). Returns the PSNR in dB of the checked frames of the copy against the
    frames written (the original's, resized when it was). A failure to read src raises decode.UnreadableSample.
    """
    suffix = Path(str(dst).removesuffix(PARTIAL)).suffix.lower()
    with decode._reading(src):
        with av.open(str(src)) as source:
            stream, fps, count, origin = decode._video_stream(source)
            rate = stream.average_rate or stream.guessed_rate  # fps as an exact fraction: the copy's time base
        check = {i: {} for i in sorted({round(q * (count - 1)) for q in CHECKED})}  # {index: {neighbour: RGB}}
        with av.open(str(dst), 'w', format=CONTAINERS[suffix]) as out:
            encoder = None
            for i, frame in enumerate(_grid_frames(src, fps, count, origin)):
                if encoder is None:
                    width, height = output_size(frame.width, frame.height, short_side)
                    encoder = _encoder(out, suffix, rate, width, height, gop, crf, fastdecode, frame)
                picture = frame.reformat(width, height, 'yuv420p', interpolation='AREA', threads=1)
                for k in check:
                    if abs(i - k) <= 1:
                        check[k][i] = _rgb(picture)
                picture.pts = i
                picture.time_base = encoder.codec_context.time_base
                picture.pict_type = av.video.frame.PictureType.NONE  # else the encoder keeps the original's key frames
                out.mux(encoder.encode(picture))
            out.mux(encoder.encode())  # flush
    return verify(dst, fps, count, check)


def _mse(a, b):
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def verify(path, fps, count, check):
    """
    Check a written copy: decode.py's frame counting gives the original's frame rate fps and count, the file
    holds that many frames, and each checked index k of `check` ({k: {i: RGB frame written at index i}} for i in
    k-1..k+1) reads back (decode.read_video_frames) as frame k, not as a neighbour j: it is not nearer to frame j
    than to frame k by more than half the distance between the two (mean squared errors), where frame j can be told
    apart from frame k (they differ by more than twice the copy's error against j; neighbours that look alike, such
    as the top of a bounce, cannot be told apart). Returns the lowest PSNR of the checked frames against those
    written. Raises ValueError saying what differs.
    """
    with av.open(str(path)) as container:
        _, out_fps, out_count, _ = decode._video_stream(container)
    with av.open(str(path)) as container:
        packets = sum(1 for _ in decode._demux(container, decode._first_video_stream(container)[0]))
    if (out_fps, out_count, packets) != (fps, count, count):
        raise ValueError(f"the copy has {out_count} frames ({packets} in the file) at {out_fps} fps, the original "
                         f"{count} at {fps} fps")
    read = decode.read_video_frames(path, list(check)).permute(0, 2, 3, 1).numpy()  # (len(check), H, W, 3)
    lowest = float('inf')
    for back, (k, written) in zip(read, check.items()):
        errors = {i: _mse(back, frame) for i, frame in written.items()}
        for j, frame in written.items():
            apart = _mse(written[k], frame)
            if apart > 2 * errors[j] and errors[k] > errors[j] + apart / 2:
                raise ValueError(f"frame {k} of the copy looks like the original's frame {j}: the copy's frames are "
                                 f"shifted")
        lowest = min(lowest, psnr(back, written[k]))
    return lowest


def already_dense(path, short_side, gop):
    """Whether a video has its key frames at most gop frames apart already and its short side at most short_side
    (UCF101's and HMDB51's XviD AVIs have one every 12 frames): re-encoding it would lose quality and gain nothing
    (XviD decodes faster than H.264 at these sizes, see docs/prepare.md), so it is copied as it is."""
    with av.open(str(path)) as container:
        stream, _ = decode._first_video_stream(container)
        if short_side and min(stream.codec_context.width, stream.codec_context.height) > short_side:
            return False
        keys = []  # the numbers of the key-frame packets
        count = 0  # packets
        for packet in decode._demux(container, stream):
            if packet.is_keyframe:
                keys.append(count)
            count += 1
    return bool(keys) and keys[0] == 0 and max(b - a for a, b in zip(keys, keys[1:] + [count])) <= gop


def prepare_one(task):
    """Prepare one video (src, dst, options) in a worker: write to dst + PARTIAL, verify, rename; a video whose
    key frames are dense already is copied (see already_dense). Returns a dict with the outcome ('done', 'copied',
    'unreadable' or 'failed'), the sizes in bytes, the PSNR and what went wrong."""
    src, dst, options = task
    partial = Path(str(dst) + PARTIAL)
    result = dict(src=src, dst=dst, size_in=os.path.getsize(src), size_out=0, psnr=None, error=None)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        with decode._reading(src):
            dense = already_dense(src, options['short_side'], options['gop'])
        if dense:
            shutil.copy2(src, partial)
        else:
            result['psnr'] = encode_video(src, partial, **options)
        os.replace(partial, dst)
        result.update(outcome='copied' if dense else 'done', size_out=os.path.getsize(dst))
    except decode.UnreadableSample as e:
        result.update(outcome='unreadable', error=str(e))
    except (ValueError, OSError, av.error.FFmpegError) as e:  # the encoder refused, or the check failed
        result.update(outcome='failed', error=f"{type(e).__name__}: {e}")
    finally:
        partial.unlink(missing_ok=True)
    return result


def _walk(root):
    """Every file under root (following linked folders), as paths relative to root, sorted."""
    files = []
    for folder, _, names in os.walk(root, followlinks=True):
        files += [Path(folder, name).relative_to(root) for name in names]
    return sorted(files)


def copy_file(src, dst):
    """Copy a file that is not a video as it is (time stamps too), by a temporary name; a rerun skips it when the
    copy has its size and modification time."""
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime == src.stat().st_mtime:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(str(dst) + PARTIAL)
    shutil.copy2(src, partial)
    os.replace(partial, dst)
    return True


def read_layout(fmt, root):
    """{split: [(path relative to root, label, ...)]} read by the format's reader (readers.py), or None when this
    version has no reader for it."""
    import readers
    if fmt not in readers.FORMATS:
        return None
    spec = config.dataset_spec('prepare', dict(format=fmt, root=str(root)))
    layout = {}
    for split in ('train', 'val'):
        samples, _ = readers.FORMATS[fmt](spec, split)
        layout[split] = [(str(Path(path).relative_to(root)), *rest) for path, *rest in samples]
    return layout


def _gb(size):
    """A size in bytes as GB, or MB below 1 GB."""
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def prepare(root, out_root, fmt=None, short_side=320, gop=16, crf=23, fastdecode=True, workers=None):
    """Write the prepared mirror of the dataset at root to out_root (see the module docstring) and print the
    summary. Returns the list of per-video results (see prepare_one), those skipped as done included."""
    from tqdm import tqdm
    root = Path(root).resolve()
    out_root = Path(out_root).resolve()
    if not root.is_dir():
        raise SystemExit(f"prepare: the dataset root {root} is not a folder")
    if out_root == root or root in out_root.parents:
        raise SystemExit(f"prepare: the copy {out_root} must be outside the dataset root {root} (e.g. {root}_prepared)")
    layout = None
    if fmt:
        try:
            layout = read_layout(fmt, root)
        except (OSError, ValueError) as e:
            raise SystemExit(f"prepare: {root} does not read as a {fmt} dataset: {e}")
        if layout is not None:
            print(f"{root}: a {fmt} dataset of {len(layout['train'])} training and {len(layout['val'])} "
                  f"validation samples")
    for stale in out_root.rglob('*' + PARTIAL) if out_root.is_dir() else []:
        stale.unlink()  # left by a run that was killed
    files = _walk(root)
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    others = [f for f in files if f.suffix.lower() not in VIDEO_SUFFIXES]
    copied = sum(copy_file(root / f, out_root / f) for f in others)
    options = dict(short_side=short_side, gop=gop, crf=crf, fastdecode=fastdecode)
    results = []  # one dict per video (see prepare_one)
    todo = []     # (src, dst, options) of the videos to prepare
    for f in videos:
        if (out_root / f).exists():
            results.append(dict(src=root / f, dst=out_root / f, outcome='skipped', psnr=None, error=None,
                                size_in=(root / f).stat().st_size, size_out=(out_root / f).stat().st_size))
        else:
            todo.append((root / f, out_root / f, options))
    workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count())
    print(f"{len(videos)} videos ({len(results)} already prepared, {len(todo)} to do) and {len(others)} other files "
          f"({copied} copied) from {root} to {out_root}; H.264{' (tune fastdecode)' * fastdecode} (VP9 in WebM), "
          f"a key frame every {gop} frames, crf {crf}, short side at most {short_side or 'the original'}; "
          f"{workers} processes")
    t0 = time.time()
    saved = 0  # bytes
    with tqdm(total=len(todo), unit='file', desc='prepare', dynamic_ncols=True) as bar:
        pool = multiprocessing.Pool(workers) if workers > 1 and len(todo) > 1 else None
        try:
            for result in (pool.imap_unordered(prepare_one, todo) if pool else map(prepare_one, todo)):
                results.append(result)
                if result['outcome'] in ('done', 'copied'):
                    saved += result['size_in'] - result['size_out']
                bar.set_postfix_str(f"saved {_gb(saved)}", refresh=False)
                bar.update()
        finally:
            if pool:
                pool.terminate()
    summarise(results, time.time() - t0, len(todo), workers)
    if layout is not None:
        check_copy(fmt, layout, out_root, results)
    return results


def summarise(results, seconds, attempted, workers):
    """Print what was done: counts, sizes, time, quality, and every video that was not written, with the reason."""
    by = {}
    for r in results:
        by.setdefault(r['outcome'], []).append(r)
    done = by.get('done', []) + by.get('copied', []) + by.get('skipped', [])
    size_in = sum(r['size_in'] for r in done)
    size_out = sum(r['size_out'] for r in done)
    print(f"prepared {len(by.get('done', []))} videos in {seconds:.0f} s ({attempted / max(seconds, 1e-9):.2f} files/s "
          f"on {workers} processes), {len(by.get('copied', []))} copied as they were (key frames dense already), "
          f"{len(by.get('skipped', []))} skipped as already prepared, {len(by.get('unreadable', []))} unreadable, "
          f"{len(by.get('failed', []))} failed")
    if done:
        print(f"size of the prepared videos: {_gb(size_in)} -> {_gb(size_out)} ({size_out / max(size_in, 1):.0%})")
    psnrs = sorted(r['psnr'] for r in by.get('done', []))
    if psnrs:
        print(f"quality of the frames checked (PSNR against the frames written): median {psnrs[len(psnrs) // 2]:.1f} "
              f"dB, lowest {psnrs[0]:.1f} dB")
    for outcome, what in (('unreadable', 'unreadable, not written (as missing to the readers)'),
                          ('failed', 'failed, not written: please report it with the file')):
        for r in by.get(outcome, []):
            print(f"  {what}: {r['src']}: {r['error']}")


def check_copy(fmt, layout, out_root, results):
    """The copy must read as the original: the same samples and labels, but for videos not written (Kinetics and
    ActivityNet's readers skip missing files)."""
    try:
        copy = read_layout(fmt, out_root)
    except (OSError, ValueError) as e:
        raise SystemExit(f"prepare: the copy {out_root} does not read as a {fmt} dataset: {e}")
    missing = {str(Path(r['dst']).relative_to(out_root)) for r in results if r['outcome'] in ('unreadable', 'failed')}
    for split in ('train', 'val'):
        written, expected = ([s for s in samples[split] if s[0] not in missing] for samples in (copy, layout))
        if written != expected:
            raise SystemExit(f"prepare: the copy's {split} split reads {len(written)} samples of written videos, the "
                             f"original {len(expected)}: the copy at {out_root} does not mirror the dataset")
    print(f"{out_root}: reads as a {fmt} dataset of {len(copy['train'])} training and {len(copy['val'])} validation "
          f"samples")


# -----------------------------------------------------------------------------

if __name__ == '__main__':
    video_formats = [name for name, kind in config.FORMATS.items() if kind == 'video']
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip(),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('root', help="the dataset's root folder")
    parser.add_argument('out_root', help="where the prepared copy is written (a config then points root here)")
    parser.add_argument('--format', choices=video_formats + ['list'] * ('list' not in video_formats),
                        help="the dataset's layout: its reader checks the original first and the copy at the end "
                        "(None: no check)")
    parser.add_argument('--short_side', type=int, default=320,
                        help="scale videos whose short side is longer down to this (0: keep every size)")
    parser.add_argument('--gop', type=int, default=16, help="frames from one key frame to the next")
    parser.add_argument('--crf', type=int, default=23, help="quality: lower is better and larger (x264: 18-28)")
    parser.add_argument('--fastdecode', type=int, default=1, choices=[0, 1],
                        help="x264's tune fastdecode (1: on): 1.2-1.5x faster to decode, 1.2x larger")
    parser.add_argument('--workers', type=int, default=None, help="processes (None: one per core)")
    args = parser.parse_args()
    results = prepare(args.root, args.out_root, args.format, args.short_side, args.gop, args.crf,
                      bool(args.fastdecode), args.workers)
    sys.exit(1 if any(r['outcome'] == 'failed' for r in results) else 0)

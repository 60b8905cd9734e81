"""
From pixels to files: frames (T, H, W, 3) written as videos with PyAV in the codecs of the real datasets, audio
tracks, and the packed B-frames of DivX-era AVI files. decode.py reads them back; synthetic.py writes whole
datasets with them.
"""

from pathlib import Path

import av
import numpy as np

from decode import VOP_START  # an MPEG-4 Part 2 picture (VOP) starts with this code, then 2 bits of its type


def write_video(path, frames, fps, codec, audio=False, key_every=None, packed_b_frames=False):
    """
    Write frames (T, H, W, 3) uint8 in the container named by the suffix: .avi with codec 'mpeg4' (MPEG-4 Part 2
    with the XVID tag, like UCF101 and HMDB51), .mp4 with 'libx264' (H.264), .webm with 'libvpx-vp9' (VP9);
    audio=True adds a track holding a sine (AAC, in an AVI MP3), like most Kinetics clips; key_every: frames from
    one key frame to the next (None: the encoder's default, 250 for H.264). packed_b_frames (mpeg4 AVI only): one
    B-frame between references, stored the DivX 5 way (see pack_b_frames). One thread and bitexact muxing: the
    same seed writes the same bytes.
    """
    container_format = {'.avi': 'avi', '.mp4': 'mp4', '.webm': 'webm'}[Path(path).suffix]
    # an AVI has no timestamps to shift: the audio encoder's priming samples would otherwise delay the video
    options = {'fflags': '+bitexact', **({'avoid_negative_ts': 'disabled'} if container_format == 'avi' else {})}
    with av.open(str(path), 'w', format=container_format, options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        stream.codec_context.thread_count = 1
        if key_every:
            stream.codec_context.gop_size = key_every
        if codec == 'mpeg4':
            stream.bit_rate = 1_000_000
            stream.codec_context.codec_tag = 'XVID'
            stream.codec_context.max_b_frames = 1 if packed_b_frames else 0
        if codec == 'libvpx-vp9':
            stream.options = {'deadline': 'realtime', 'cpu-used': '8'}  # fast enough for tests
        if audio:
            write_sine(container, seconds=len(frames) / fps, hz=220 + 20 * (int(frames[0, 0, 0, 0]) % 32),
                       codec='libmp3lame' if container_format == 'avi' else 'aac')
        packets = [stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')) for frame in frames]
        packets = [p for some in packets + [stream.encode()] for p in some]  # the encoder flushed
        if packed_b_frames:
            packets = pack_b_frames(packets, stream)
        container.mux(packets)


def vop_type(data):
    """'I', 'P', 'B' or 'S': the coding type of the first picture in MPEG-4 Part 2 data (bytes)."""
    return 'IPBS'[data[data.index(VOP_START) + 4] >> 6]


def pack_b_frames(packets, stream):
    """
    Store MPEG-4 Part 2 packets (in decoding order) the way DivX 5 and XviD's "packed bitstream" mode do, one AVI
    chunk per displayed frame: a reference frame and the first B-frame after it (shown before it) in one chunk,
    the other B-frames in their own, then a placeholder chunk (an N-VOP: a picture marked not coded) where the
    reference is shown. A decoder that returns one frame per chunk without delay shows chunk k at time k; FFmpeg
    decodes the two pictures in one chunk in turn. The first picture's user data says so ('DivX503b1393p', the p
    for packed), in place of the encoder's own. Returns the packets of the chunks, timed by their order.
    """
    data = [bytes(p) for p in packets]
    vol = data[0][:data[0].index(VOP_START)]          # the stream headers before the first picture
    user = vol.find(b'\x00\x00\x01\xb2')              # the encoder's user data ('Lavc...') runs to the picture
    data[0] = vol[:user if user >= 0 else len(vol)] + b'\x00\x00\x01\xb2DivX503b1393p' + data[0][len(vol):]
    # the N-VOP: type P (01), no second elapsed (0), marker, time increment (as many bits as the encoder's time
    # base needs; no decoder reads it here: FFmpeg shows the stored B-frame instead), marker, not coded (0), stuffing
    bits = '0101' + '0' * (stream.codec_context.time_base.denominator - 1).bit_length() + '10'
    n_vop = VOP_START + int(bits + '0' + '1' * (-(len(bits) + 1) % 8), 2).to_bytes((len(bits) + 8) // 8, 'big')
    chunks, n = [], 0  # (bytes, is key frame)
    while n < len(data):
        end = n + 1
        while end < len(data) and vop_type(data[end]) == 'B':
            end += 1
        b_frames = data[n + 1:end]
        if b_frames:
            chunks += [(data[n] + b_frames[0], packets[n].is_keyframe), *((b, False) for b in b_frames[1:]),
                       (n_vop, False)]
        else:
            chunks.append((data[n], packets[n].is_keyframe))
        n = end
    out = []
    for k, (chunk, key) in enumerate(chunks):
        packet = av.Packet(chunk)
        packet.stream, packet.time_base, packet.pts, packet.dts = stream, packets[0].time_base, k, k  # 1 / fps
        packet.is_keyframe = key
        out.append(packet)
    return out


def write_sine(container, seconds, hz, rate=16000, codec='aac'):
    """A mono track holding a sine (AAC or MP3); PyAV cuts the one long frame into the encoder's frames."""
    stream = container.add_stream(codec, rate=rate)
    stream.layout = 'mono'
    stream.codec_context.thread_count = 1
    t = np.arange(round(seconds * rate)) / rate
    sine = 0.2 * np.sin(2 * np.pi * hz * t)
    if codec == 'aac':
        frame = av.AudioFrame.from_ndarray(sine.astype(np.float32)[None], format='fltp', layout='mono')
    else:
        frame = av.AudioFrame.from_ndarray((sine * 32767).astype(np.int16)[None], format='s16p', layout='mono')
    frame.sample_rate, frame.pts = rate, 0  # (1, samples), planar
    container.mux(stream.encode(frame))
    container.mux(stream.encode())  # flush

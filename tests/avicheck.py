"""Checks of the board's AVI clips with Debian's ffprobe/ffmpeg, and a small
RIFF reader of our own (not the firmware's) that takes the frames out, so
tests can compare them with the camera frames that were replayed."""
import json
import os
import struct
import subprocess
from fractions import Fraction

from tools.sim.harness import FRAMES, card_paths


def probe(path):
    """ffprobe's view: format, codec, size, frames counted, rate, duration."""
    out = subprocess.run(['ffprobe', '-v', 'error', '-count_frames', '-select_streams', 'v:0',
                          '-show_entries', 'format=format_name,duration:stream=codec_name,'
                          'width,height,nb_read_frames,r_frame_rate', '-of', 'json', path],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    stream = info['streams'][0]
    return {'format': info['format']['format_name'], 'codec': stream['codec_name'],
            'size': (stream['width'], stream['height']),
            'frames': int(stream['nb_read_frames']),
            'rate': Fraction(stream['r_frame_rate']),
            'duration': float(info['format']['duration'])}


def riff_frames(data):
    """The JPEG frames of an AVI, through its idx1 index."""
    assert data[:4] == b'RIFF' and data[8:12] == b'AVI ', 'not an AVI'
    riff_end = 8 + struct.unpack_from('<I', data, 4)[0]
    assert riff_end <= len(data), 'RIFF size beyond the file'
    pos = 12
    movi = index = None
    while pos + 8 <= riff_end:
        fourcc, size = data[pos:pos + 4], struct.unpack_from('<I', data, pos + 4)[0]
        if fourcc == b'LIST' and data[pos + 8:pos + 12] == b'movi':
            movi = pos + 8
        elif fourcc == b'idx1':
            index = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    assert movi is not None and index is not None, 'no movi list or no idx1'
    frames = []
    for i in range(0, len(index), 16):
        fourcc, flags, offset, size = struct.unpack_from('<4sIII', index, i)
        assert fourcc == b'00dc'
        chunk = movi + offset
        assert data[chunk:chunk + 4] == b'00dc'
        assert struct.unpack_from('<I', data, chunk + 4)[0] == size
        frames.append(data[chunk + 8:chunk + 8 + size])
    return frames


def check_clip(data, tmp_path, name='clip.avi', size=(320, 240)):
    """Every check of a clip: ffprobe (AVI, MJPEG, size, frame count,
    duration = count / rate), ffmpeg decoding it without a word, our idx1
    reader agreeing. Returns (frames, rate)."""
    path = str(tmp_path / name)
    with open(path, 'wb') as f:
        f.write(data)
    info = probe(path)
    assert info['format'] == 'avi', info
    assert info['codec'] == 'mjpeg', info
    assert info['size'] == size, info
    frames = riff_frames(data)
    assert info['frames'] == len(frames) > 0, (info, len(frames))
    assert abs(info['duration'] - len(frames) / info['rate']) <= 1 / info['rate'] + 0.01, info
    errors = subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-i', path, '-f', 'null', '-'],
                            capture_output=True, text=True)
    assert errors.returncode == 0 and errors.stdout + errors.stderr == '', errors.stderr
    return frames, info['rate']


def camera_frames(folder=FRAMES):
    """The replayed frames in order, and {bytes: position}."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(('.jpg', '.jpeg')))
    frames = [open(os.path.join(folder, n), 'rb').read() for n in names]
    return frames, {data: i for i, data in enumerate(frames)}


def positions(frames, folder=FRAMES):
    """Each frame's place in the camera's sequence; every frame must be one
    the camera replayed, and they must come in the camera's order (each a
    later one than the last, never the same twice; the writer may skip)."""
    order, where = camera_frames(folder)
    places = []
    for i, frame in enumerate(frames):
        assert frame in where, 'frame %d is not a camera frame' % i
        places.append(where[frame])
    n = len(order)
    steps = [(b - a) % n for a, b in zip(places, places[1:])]
    assert all(1 <= step <= n // 4 for step in steps), ('out of order', places)
    return places


def card_clips(board):
    """{name: bytes} of /clips on the card image, as a card reader sees it."""
    paths = [p for p in card_paths(board.sdcard, '/clips') or []
             if not p.rsplit('/', 1)[1].startswith('.')]
    return {p.rsplit('/', 1)[1]: board.card_read(p) for p in paths}

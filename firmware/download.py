"""File responses from the card: snapshots, clips, clip playback.

Every file response carries Content-Length, so a transfer cut short (a card
error, a dropped connection) is a clear failure to the client, never a
short file that looks whole. Reads go in chunks that yield to the loop.
Open readers are counted per path in a small table: a DELETE of a file
being read is refused (409) instead of removing it under the reader, and
when the table is full a new download waits its turn (503).
"""
import asyncio
import os
import time
from micropython import const

from firmware import avi

_CHUNK = const(4096)
MAX_READERS = const(4)      # files open for clients at once (each holds a socket too)
_readers = {}               # path -> open readers; at most MAX_READERS in all


def busy(path):
    """True while a client reads path."""
    return path in _readers


def _take(path):
    if sum(_readers.values()) >= MAX_READERS:
        return False
    _readers[path] = _readers.get(path, 0) + 1
    return True


def _give(path):
    left = _readers.get(path, 1) - 1
    if left > 0:
        _readers[path] = left
    else:
        _readers.pop(path, None)


def _open(path):
    # (the file, None) with a reader slot taken, or (None, the refusal)
    if not _take(path):
        return None, ('Busy', 503, {'Retry-After': '2'})
    try:
        return open(path, 'rb'), None
    except OSError:
        _give(path)
        return None, ('Not found', 404)


def _drop(f, path):
    # a file opened for a response that will not be sent
    try:
        f.close()
    except OSError:
        pass
    _give(path)


def parse_range(value, size):
    """(start, end) inclusive for one `bytes=` range of a file of `size`
    bytes; None without a Range; 'bad' if it cannot be satisfied."""
    if value is None:
        return None
    value = value.strip()
    if not value.startswith('bytes='):
        return None                 # another unit: ignored, the whole file
    spec = value[6:].strip()
    if ',' in spec or '-' not in spec:
        return 'bad'                # one range only
    first, last = spec.split('-', 1)
    first = first.strip()
    last = last.strip()
    try:
        if not first:
            n = int(last)           # the last n bytes
            if n <= 0:
                return 'bad'
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return 'bad'
    if start < 0 or end < start or start >= size:
        return 'bad'
    return start, min(end, size - 1)


class _OpenFile:
    """A body that holds a file of the card open: release() (on connection
    close, or at its end) closes it once and lets DELETE at it again."""

    def __init__(self, path, f):
        self.path = path
        self.file = f

    def __aiter__(self):
        return self

    async def aclose(self):
        self.release()

    def release(self):
        if self.file is not None:
            f, self.file = self.file, None
            _drop(f, self.path)


class FileBody(_OpenFile):
    """A response body (async iterator) that reads [start, end] of a file
    in chunks; release() (on connection close) closes it."""

    def __init__(self, path, f, start, end):
        super().__init__(path, f)
        self.left = end - start + 1
        self.buf = bytearray(min(_CHUNK, max(1, self.left)))
        f.seek(start)

    async def __anext__(self):
        if self.left <= 0 or self.file is None:
            self.release()
            raise StopAsyncIteration
        await asyncio.sleep_ms(0)
        n = self.file.readinto(self.buf)
        if not n:
            self.release()
            raise OSError(5)        # the file got shorter: fail, not end short
        n = min(n, self.left)
        self.left -= n
        return memoryview(self.buf)[:n]     # written out before the next read


def respond(request, path, content_type, max_age=None, on_close=None):
    """The response to a GET of a file on the card: 200 with the whole
    file, 206 for a Range, 416 for a range it cannot satisfy, 503 when too
    many files are being read, 404 if it went meanwhile."""
    try:
        size = os.stat(path)[6]
    except OSError:
        return 'Not found', 404
    headers = {'Content-Type': content_type, 'Accept-Ranges': 'bytes'}
    if max_age is not None:
        headers['Cache-Control'] = 'max-age=%d' % max_age
    span = parse_range(request.headers.get('Range'), size)
    if span == 'bad':
        headers['Content-Range'] = 'bytes */%d' % size
        headers['Content-Length'] = '0'
        return '', 416, headers
    f, refusal = _open(path)
    if f is None:
        return refusal
    start, end = span if span else (0, size - 1)
    try:
        body = FileBody(path, f, start, end)
    except OSError:
        _drop(f, path)              # the card went meanwhile: no reader slot kept
        return 'Not found', 404
    if on_close is not None:
        on_close(request, body.release)
    headers['Content-Length'] = str(end - start + 1)
    if span:
        headers['Content-Range'] = 'bytes %d-%d/%d' % (start, end, size)
        return body, 206, headers
    return body, 200, headers


def refuse_if_busy(path):
    """A DELETE's answer when path is being read: a 409 reply tuple, or None
    when it may go."""
    if busy(path):
        return {'ok': False, 'error': 'being downloaded, try again later'}, 409
    return None


class ClipPlayer(_OpenFile):
    """A clip (firmware/avi.py) replayed as an MJPEG stream at its recorded
    rate: one frame read in chunks at a time, never the whole file."""

    def __init__(self, path, f, us_per_frame):
        super().__init__(path, f)
        self.us_per_frame = max(1000, us_per_frame)
        self.pos = avi.HEADER
        self.left = 0           # bytes of the current frame still to send
        self.frames = 0
        self.started = None
        self.buf = bytearray(_CHUNK)

    async def __anext__(self):
        f = self.file
        if f is None:
            raise StopAsyncIteration
        if self.left > 0:
            await asyncio.sleep_ms(0)
            n = f.readinto(memoryview(self.buf)[:min(_CHUNK, self.left)])
            if not n:
                raise OSError(5)
            self.left -= n
            return memoryview(self.buf)[:n]
        if self.left == 0 and self.frames:
            self.left = -1
            return b'\r\n'
        f.seek(self.pos)
        head = f.read(8)
        n = int.from_bytes(head[4:8], 'little') if len(head) == 8 else 0
        if head[:4] != b'00dc' or not n:
            self.release()
            raise StopAsyncIteration
        if self.started is None:
            self.started = time.ticks_ms()
        else:
            due = self.frames * self.us_per_frame // 1000
            wait = due - time.ticks_diff(time.ticks_ms(), self.started)
            if wait > 0:
                await asyncio.sleep_ms(wait)     # the recorded rate
        self.frames += 1
        self.pos += 8 + n + (n & 1)
        self.left = n
        return (b'--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n' % n)


def play(request, path, on_close):
    """The response that replays a clip: multipart/x-mixed-replace, like
    /stream; 404, 503 (too many readers) or 415 (not one of our clips)."""
    f, refusal = _open(path)
    if f is None:
        return refusal
    try:
        found = avi.read_header(f.read(avi.HEADER))
    except OSError:
        _drop(f, path)
        return 'Not found', 404
    if found is None:
        _drop(f, path)
        return 'Not a clip this board can play', 415
    player = ClipPlayer(path, f, found[1])
    on_close(request, player.release)
    return player, 200, {'Content-Type': 'multipart/x-mixed-replace; boundary=frame',
                         'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no'}

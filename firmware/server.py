"""The HTTP server around microdot: connection cap, deadlines, head limits.

microdot 2.x has no connection limit and no read or write timeouts, reads
lines without bound, and lets socket errors escape as tracebacks. Server
closes those gaps around microdot's own request handling:

- at most `max_connections` at once; one more is answered 503 at once;
- the request head must arrive within `head_timeout_s`, within size limits
  (414 for a long request line, 431 for big or many headers, 400 malformed);
  a TLS hello on the plain port is dropped; microdot's own limits
  (Request.max_content_length: 413) are set from the config;
- every read and write has a deadline; a reaper cancels the connection's
  task when one passes (a peer that vanished, or stopped reading);
- writes to one connection are serialised (asyncio asserts on two writers).
"""
import asyncio
import errno
import time
from micropython import const
from microdot import Microdot, Request
from microdot.microdot import MUTED_SOCKET_ERRORS
from microdot.websocket import WebSocket
from firmware import ticks
from firmware.text import utf8_valid
from firmware.wsock import StrictWebSocket

_REAP_MS = const(500)
_READ_CHUNK = const(512)
_WRITE_CHUNK = const(2048)
_MAX_REQUEST_LINE = const(1024)
_MAX_HEAD = const(4096)
_MAX_HEADERS = const(32)
_TLS_HANDSHAKE = const(0x16)
# peer errors are no news: the names, so each port gives its own numbers
for _name in ('EPIPE', 'ECONNRESET', 'ECONNABORTED', 'EBADF', 'ETIMEDOUT', 'ENOTCONN'):
    _number = getattr(errno, _name, None)
    if _number is not None and _number not in MUTED_SOCKET_ERRORS:
        MUTED_SOCKET_ERRORS.append(_number)

_REASONS = {400: 'Bad Request', 403: 'Forbidden', 413: 'Payload Too Large',
            414: 'URI Too Long', 421: 'Misdirected Request',
            431: 'Request Header Fields Too Large', 503: 'Service Unavailable'}


class HeadError(Exception):
    """The request head is refused with args[0] as HTTP status (0: drop)."""


def parse_head(head):
    """Check a request head (bytes up to the blank line); raise HeadError."""
    lines = head.split(b'\r\n')
    request_line = lines[0]
    if len(request_line) > _MAX_REQUEST_LINE:
        raise HeadError(414)
    parts = request_line.split(b' ')
    if (len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper()
            or not parts[1].startswith(b'/') or parts[2] not in (b'HTTP/1.0', b'HTTP/1.1')):
        raise HeadError(400)
    if not _target_ok(parts[1]):
        raise HeadError(400)
    headers = [line for line in lines[1:] if line]
    if len(headers) > _MAX_HEADERS:
        raise HeadError(431)
    for line in headers:
        name, sep, value = line.partition(b':')
        if not sep or not name or b' ' in name or b'\t' in name:
            raise HeadError(400)
        if name.lower() == b'content-length' and not value.strip().isdigit():
            raise HeadError(400)


def _target_ok(target):
    # microdot decodes the query without checking: %zz or invalid UTF-8 would
    # raise inside it, so such targets are refused here
    if b'%' not in target:
        return True
    parts = target.split(b'%')
    decoded = bytearray(parts[0])
    for part in parts[1:]:
        if len(part) < 2 or part[0] in b'+- ' or part[1] in b'+- ':
            return False
        try:
            decoded.append(int(part[:2], 16))
        except ValueError:
            return False
        decoded.extend(part[2:])
    return utf8_valid(decoded)


async def read_head(reader):
    """Read up to the blank line in bounded memory; return (head, rest)."""
    buf = b''
    while True:
        chunk = await reader.read(_READ_CHUNK)
        if not chunk:
            raise HeadError(0)            # closed before a whole head
        if not buf and chunk[0] == _TLS_HANDSHAKE:
            raise HeadError(0)            # TLS on the plain port: drop quietly
        buf += chunk
        end = buf.find(b'\r\n\r\n')
        if end >= 0:
            return buf[:end + 2], buf[end + 4:]
        if buf.find(b'\r\n') < 0 and len(buf) > _MAX_REQUEST_LINE:
            raise HeadError(414)
        if len(buf) > _MAX_HEAD:
            raise HeadError(431)


class Connection:
    """One client socket: deadlines for its I/O and serialised writes.

    microdot gets this object as both reader and writer (request.sock)."""

    def __init__(self, server, reader, writer, head):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.buffered = head
        self.task = asyncio.current_task()
        self.read_deadline = None
        self.write_deadline = None
        self.read_timeout_ms = server.head_timeout_ms
        self.write_lock = asyncio.Lock()
        self.ws = None         # the StrictWebSocket, once upgraded
        self.on_close = []     # functions called once when the socket closes

    def _arm_read(self, timeout_ms):
        self.read_deadline = time.ticks_add(time.ticks_ms(), timeout_ms)

    # --- reader side (what microdot calls) ---------------------------------
    def _take(self, n):
        data = self.buffered
        if n >= len(data):
            self.buffered = b''
            return data
        self.buffered = data[n:]
        return data[:n]

    async def readline(self):
        # the head is already buffered whole, so its lines come from there
        end = self.buffered.find(b'\n')
        if end >= 0:
            return self._take(end + 1)
        return self._take(len(self.buffered))

    async def read(self, n=-1):
        if self.buffered:
            return self._take(n if n > 0 else len(self.buffered))
        self._arm_read(self.read_timeout_ms)
        # a whole chunk at once: a WebSocket frame's head, mask and payload
        # then come from one socket read instead of three
        data = await self.reader.read(max(n, _READ_CHUNK) if n > 0 else n)
        self.read_deadline = None
        if 0 < n < len(data):
            self.buffered = data
            return self._take(n)
        return data

    async def readexactly(self, n):
        data = self._take(n)
        while len(data) < n:
            chunk = await self.read(n - len(data))
            if not chunk:
                raise EOFError
            data = data + chunk if data else chunk
        return data

    # --- writer side ----------------------------------------------------------
    async def awrite(self, data):
        lock = self.write_lock
        await lock.acquire()        # not `async with`: two coroutines fewer a write
        try:
            self.write_deadline = time.ticks_add(time.ticks_ms(),
                                                 self.server.write_timeout_ms)
            writer = self.writer
            if len(data) <= _WRITE_CHUNK:
                writer.write(data)
                await writer.drain()
            else:
                # in slices: asyncio copies whatever the socket did not take
                # at once, which for a whole frame is a 30 KB copy per viewer
                view = memoryview(data)
                for start in range(0, len(view), _WRITE_CHUNK):
                    writer.write(view[start:start + _WRITE_CHUNK])
                    await writer.drain()
            self.write_deadline = None
        finally:
            lock.release()

    async def aclose(self):
        await self.writer.aclose()

    def get_extra_info(self, name):
        return self.writer.get_extra_info(name)

    def expired(self, now):
        for deadline in (self.read_deadline, self.write_deadline):
            if deadline is not None and time.ticks_diff(now, deadline) > 0:
                return True
        return False


class Server(Microdot):
    """Microdot with the limits above; start the reaper with serve()."""

    def __init__(self, limits):
        super().__init__()
        self.max_connections = limits['max_connections']
        self.head_timeout_ms = limits['head_timeout_s'] * 1000
        self.write_timeout_ms = limits['write_timeout_s'] * 1000
        self.connections = []      # at most max_connections long
        Request.max_content_length = Request.max_body_length = limits['max_body']
        WebSocket.max_message_length = limits['max_ws_message']
        StrictWebSocket.ping_ms = limits['ws_ping_s'] * 1000
        StrictWebSocket.dead_peer_ms = limits['dead_peer_s'] * 1000

    async def handle_request(self, reader, writer):
        if len(self.connections) >= self.max_connections:
            await _refuse(reader, writer, 503)
            return
        conn = Connection(self, reader, writer, b'')
        self.connections.append(conn)
        try:
            conn._arm_read(self.head_timeout_ms)
            head, rest = await read_head(reader)
            parse_head(head)
            conn.read_deadline = None
            conn.buffered = head + b'\r\n' + rest
            await super().handle_request(conn, conn)
        except HeadError as exc:
            if exc.args[0]:
                await _refuse(reader, writer, exc.args[0])
        except asyncio.CancelledError:
            pass                            # the reaper: a deadline passed
        except OSError as exc:
            if exc.errno not in MUTED_SOCKET_ERRORS:
                print('server: socket error', exc)
        except Exception as exc:
            print('server: request failed:', repr(exc))
        finally:
            for release in conn.on_close:
                release()
            self.connections.remove(conn)
            await _close(writer)

    async def reap(self):
        """Cancel connections whose read or write deadline has passed."""
        while True:
            await asyncio.sleep_ms(_REAP_MS)
            now = time.ticks_ms()
            for conn in self.connections:
                if conn.ws is not None:
                    conn.ws.keepalive(ticks.now_ms())
                if conn.expired(now) and conn.task is not None:
                    conn.task.cancel()
                    conn.task = None        # cancel once


def on_close(request, release):
    """Call release() once when the request's connection closes, however it
    ends (finished, peer gone, deadline passed)."""
    request.sock[0].on_close.append(release)


async def _refuse(reader, writer, status):
    try:
        writer.write(('HTTP/1.0 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n%s\r\n'
                      % (status, _REASONS.get(status, 'Error'),
                         'Retry-After: 2\r\n' if status == 503 else '')).encode())
        await asyncio.wait_for_ms(writer.drain(), 2000)
        # read what the client sent, or closing would reset the connection
        # before it reads the answer
        await asyncio.wait_for_ms(reader.read(_MAX_HEAD), 200)
    except Exception:
        pass
    await _close(writer)


async def _close(writer):
    try:
        await writer.aclose()
    except Exception:
        pass

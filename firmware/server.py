"""The HTTP server around microdot: connection cap, deadlines, strict heads.

microdot 2.x has no connection limit and no read or write timeouts, reads
lines without bound, reads the whole body before routing and before the
before-request handlers, and lets socket and parse errors escape as
tracebacks. Server closes those gaps around microdot's request handling:

- at most `max_connections` at once; when all are taken, a new one evicts
  the oldest connection still reading its request, or past its head but
  not one `keep` keeps (the guard's say: a refused or unauthenticated
  request, never one served with a credential: a stream, events, a
  WebSocket); with none to evict, 503 and a small "board busy" page that
  reloads itself;
- one deadline, `head_timeout_s`, for the request head and body together,
  never re-armed by a read (a byte every few seconds gains nothing);
- strict heads: 414 for a long request line, 431 for a big head, a long
  header line or many headers, 400 for anything malformed (bare LF or CR,
  folded or duplicate Content-Length/Host/Transfer-Encoding, a bad Host),
  411 for a chunked body, 501 for other transfer codings, 413 for a body on
  GET/HEAD/DELETE/OPTIONS or over `max_body`; a TLS hello on the plain port
  is dropped;
- the before-request handlers (the guard) and the route lookup run before
  the body is read: a refused request's body is never read;
- every response has its reason phrase; peer errors print no traceback;
- after the request, every read and write has a deadline; a reaper cancels
  the connection's task when one passes (a peer that vanished, or stopped
  reading);
- writes to one connection are serialised (asyncio asserts on two writers).
"""
import asyncio
import errno
import time
from micropython import const
from microdot import Microdot, Request, Response
from microdot.microdot import MUTED_SOCKET_ERRORS, NoCaseDict, invoke_handler
from microdot.websocket import WebSocket
from firmware import ticks
from firmware.text import utf8_valid
from firmware.wsock import StrictWebSocket

_REAP_MS = const(500)
_READ_CHUNK = const(512)
_WRITE_CHUNK = const(5744)     # lwIP's TCP_SND_BUF: the most a board's socket takes at once
_WRITES_A_TURN = const(8)      # writes the socket took whole before the loop gets a turn
_MAX_REQUEST_LINE = const(1024)
_MAX_HEAD = const(4096)
_MAX_HEADER_LINE = const(2048)
_DRAIN_MS = const(200)
_MAX_HEADERS = const(32)
_TLS_HANDSHAKE = const(0x16)
# peer errors are no news: the names, so each port gives its own numbers
for _name in ('EPIPE', 'ECONNRESET', 'ECONNABORTED', 'EBADF', 'ETIMEDOUT', 'ENOTCONN'):
    _number = getattr(errno, _name, None)
    if _number is not None and _number not in MUTED_SOCKET_ERRORS:
        MUTED_SOCKET_ERRORS.append(_number)

# what every status we or microdot send is called (microdot says "N/A")
REASONS = {200: 'OK', 101: 'Switching Protocols', 204: 'No Content',
           206: 'Partial Content', 301: 'Moved Permanently', 302: 'Found',
           303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect',
           400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
           405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict',
           411: 'Length Required', 413: 'Payload Too Large', 414: 'URI Too Long',
           416: 'Range Not Satisfiable', 421: 'Misdirected Request', 423: 'Locked',
           429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
           500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
           507: 'Insufficient Storage'}
_CLASS_REASONS = ('Informational', 'Success', 'Redirection', 'Client Error', 'Server Error')
# methods whose requests carry no body here: one with a body is refused unread
_BODILESS = ('GET', 'HEAD', 'DELETE', 'OPTIONS')
_TOKEN_EXTRA = b"!#$%&'*+-.^_`|~"


def reason(status):
    """The reason phrase of an HTTP status."""
    phrase = REASONS.get(status)
    if phrase is None:
        phrase = _CLASS_REASONS[min(4, max(0, status // 100 - 1))]
    return phrase


class HeadError(Exception):
    """The request head is refused with args[0] as HTTP status (0: drop)."""


class PeerGone(BaseException):
    """The client closed mid-body: nothing to answer. A BaseException, so
    microdot's handler error path (a traceback and a 500) never sees it."""


def parse_head(head):
    """Check a request head (bytes up to and with the CRLF of its last line);
    return (method, target, version, headers) or raise HeadError."""
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
    lines = [line for line in lines[1:] if line]
    if len(lines) > _MAX_HEADERS:
        raise HeadError(431)
    headers = NoCaseDict()
    for line in lines:
        if len(line) > _MAX_HEADER_LINE:
            raise HeadError(431)
        name, sep, value = line.partition(b':')
        if not sep or not _token(name) or not _value_ok(value):
            raise HeadError(400)        # also a folded line: it starts with a space
        try:
            name = name.decode()
            value = value.decode().strip()
        except UnicodeError:
            raise HeadError(400)
        lower = name.lower()
        if name in headers:
            if lower in ('content-length', 'host', 'transfer-encoding'):
                raise HeadError(400)    # which one counts is how requests get smuggled
            value = headers[name] + ', ' + value
        headers[name] = value
    method = parts[0].decode()
    version = parts[2].decode()
    length = headers.get('Content-Length')
    coding = headers.get('Transfer-Encoding')
    if coding is not None:
        # no transfer codings here; chunked is the one a client can replace
        # with Content-Length (411), any other coding is not implemented
        if length is not None or version == 'HTTP/1.0':
            raise HeadError(400)
        raise HeadError(411 if coding.lower().split(',')[-1].strip() == 'chunked' else 501)
    if length is not None:
        if not length.isdigit():
            raise HeadError(400)
        if int(length) and method in _BODILESS:
            raise HeadError(413)        # these take no body: refused before it is read
    host = headers.get('Host')
    if host is not None and not _host_ok(host):
        raise HeadError(400)
    return method, parts[1].decode(), version[5:], headers


def _token(name):
    if not name:
        return False
    for c in name:
        if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in _TOKEN_EXTRA):
            return False
    return True


def _value_ok(value):
    for c in value:
        if (c < 32 and c != 9) or c == 127:
            return False
    return True


def _host_ok(host):
    """A Host value as RFC 3986 allows it here: a name or IPv4 address, or
    an IPv6 address in brackets, with an optional numeric port."""
    if host.startswith('['):
        end = host.find(']')
        if end < 3:
            return False
        for c in host[1:end]:
            if not (c in '0123456789abcdefABCDEF:.'):
                return False
        rest = host[end + 1:]
        if rest and not rest.startswith(':'):
            return False                # [::1]evil.com
        return _port_ok(rest[1:]) if rest else True
    name, sep, port = host.partition(':')
    if not name or (sep and not _port_ok(port)):
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in '-._'):
            return False
    return True


def _port_ok(port):
    return port == '' or (len(port) <= 5 and port.isdigit() and int(port) <= 65535)


def _target_ok(target):
    # microdot decodes the query without checking: %zz or invalid UTF-8 would
    # raise inside it, so such targets are refused here
    if b'%' not in target:
        return utf8_valid(target)
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


def _line_ends_ok(buf):
    """No bare LF, and no bare CR but perhaps the last byte (its LF may come)."""
    crlf = buf.count(b'\r\n')
    return buf.count(b'\n') == crlf and \
        buf.count(b'\r') == crlf + (1 if buf[-1:] == b'\r' else 0)


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
        if not _line_ends_ok(buf if end < 0 else buf[:end + 4]):
            # a bare LF or CR: answered now, not when the deadline passes
            if buf.find(b'\r\n') < 0 and buf.find(b'\n') > _MAX_REQUEST_LINE:
                raise HeadError(414)
            raise HeadError(400)
        if end >= 0:
            return buf[:end + 2], buf[end + 4:]
        if buf.find(b'\r\n') < 0 and len(buf) > _MAX_REQUEST_LINE:
            raise HeadError(414)
        if len(buf) > _MAX_HEAD:
            raise HeadError(431)


def _urlencoded_ok(body):
    """A form body microdot can decode: valid percent escapes, UTF-8."""
    return utf8_valid(body) and _target_ok(body)


class Connection:
    """One client socket: deadlines for its I/O and serialised writes.

    microdot gets this object as both reader and writer (request.sock)."""

    def __init__(self, server, reader, writer, head):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.buffered = head
        self.task = asyncio.current_task()
        self.started = time.ticks_ms()
        # reading: the head or body is still coming, under one deadline for
        # both that no read re-arms; such a connection may be evicted
        self.reading = True
        self.read_deadline = time.ticks_add(self.started, server.head_timeout_ms)
        self.write_deadline = None
        self.read_timeout_ms = server.head_timeout_ms
        self.write_lock = asyncio.Lock()
        self.writes = 0        # writes since this connection's last turn
        self.ws = None         # the StrictWebSocket, once upgraded
        self.request = None    # once its head is parsed
        self.on_close = []     # functions called once when the socket closes

    def parsed(self, request):
        """Its head is in: the request it carries (Server.keep judges it)."""
        self.request = request

    def _arm_read(self, timeout_ms):
        self.read_deadline = time.ticks_add(time.ticks_ms(), timeout_ms)

    def request_read(self):
        """The whole request is in: from now on each read has its own deadline."""
        self.reading = False
        self.read_deadline = None

    def cancel(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None        # cancel once

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
        reading = self.reading
        if not reading:
            self._arm_read(self.read_timeout_ms)
        # a whole chunk at once: a WebSocket frame's head, mask and payload
        # then come from one socket read instead of three
        data = await self.reader.read(max(n, _READ_CHUNK) if n > 0 else n)
        if not reading:
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
                await self._after_write(writer)
            else:
                # in slices: asyncio copies whatever the socket did not take
                # at once, which for a whole frame is a 30 KB copy per viewer;
                # the next slice goes at once while the socket takes them all
                view = memoryview(data)
                for start in range(0, len(view), _WRITE_CHUNK):
                    writer.write(view[start:start + _WRITE_CHUNK])
                    await self._after_write(writer)
            self.write_deadline = None
        finally:
            lock.release()

    async def _after_write(self, writer):
        # a write the socket took whole needs no turn: each turn waits a round
        # of every ready task (a response's head is six writes, a frame three),
        # so the loop gets one at every _WRITES_A_TURN-th write, or when the
        # socket is full (drain() waits for room)
        self.writes += 1
        if getattr(writer, 'out_buf', True) or self.writes >= _WRITES_A_TURN:
            self.writes = 0
            await writer.drain()

    async def aclose(self):
        await self.writer.aclose()

    def get_extra_info(self, name):
        return self.writer.get_extra_info(name)

    def expired(self, now):
        for deadline in (self.read_deadline, self.write_deadline):
            if deadline is not None and time.ticks_diff(now, deadline) > 0:
                return True
        return False


class HeadFirstRequest(Request):
    """A request made from its head alone; Server reads the body later, once
    the guard and the route have let it through."""

    def __init__(self, conn, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn = conn


class Server(Microdot):
    """Microdot with the limits above; start the reaper with serve().

    The request is built from the checked head without its body; the
    before-request handlers (the guard) and the route lookup run first, and
    only a request they let through to a route has its body read, within the
    same deadline as its head."""

    def __init__(self, limits, keep=None):
        super().__init__()
        # keep(request): may a connection past its head keep its slot when
        # all are taken? None: always (only slow heads and bodies are evicted)
        self.keep = keep
        self.max_connections = limits['max_connections']
        self.head_timeout_ms = limits['head_timeout_s'] * 1000
        self.write_timeout_ms = limits['write_timeout_s'] * 1000
        self.connections = []      # at most max_connections live ones
        Request.max_content_length = Request.max_body_length = limits['max_body']
        WebSocket.max_message_length = limits['max_ws_message']
        StrictWebSocket.ping_ms = limits['ws_ping_s'] * 1000
        StrictWebSocket.dead_peer_ms = limits['dead_peer_s'] * 1000

    def _make_room(self):
        """True if a new connection may have a slot. When all are taken, the
        oldest one that may go is dropped: one still on its head and body (an
        honest client sends its request in milliseconds, so it is the newest
        reader, never the oldest), or one past its head that `keep` does not
        keep (a guess, a refusal: guessers never crowd out the owner);
        streams, events and WebSockets served with a credential never go."""
        live = 0
        oldest = None
        keep = self.keep
        for conn in self.connections:
            if conn.task is None:
                continue                    # cancelled: its slot is being freed
            live += 1
            may_go = conn.reading or (keep is not None and conn.request is not None
                                      and not keep(conn.request))
            if may_go and (oldest is None or
                           time.ticks_diff(conn.started, oldest.started) < 0):
                oldest = conn
        if live < self.max_connections:
            return True
        if oldest is None:
            return False
        oldest.cancel()
        return True

    async def handle_request(self, reader, writer):
        if not self._make_room():
            await _refuse(reader, writer, 503)
            return
        conn = Connection(self, reader, writer, b'')
        self.connections.append(conn)
        req = None
        try:
            head, rest = await read_head(reader)
            method, url, version, headers = parse_head(head)
            conn.buffered = rest
            req = HeadFirstRequest(conn, self, writer.get_extra_info('peername'), method,
                                   url, version, headers, body=b'', sock=(conn, conn))
            conn.parsed(req)
            if not req.content_length:
                conn.request_read()
            res = await self.dispatch_request(req)
            if res is not Response.already_handled:
                if res.reason is None:
                    res.reason = reason(res.status_code)
                await res.write(conn)
            if conn.reading:
                # refused before its body was read: take some of it, or
                # closing resets the connection before the client reads the answer
                await _drain(reader)
        except HeadError as exc:
            if exc.args[0]:
                await _refuse(reader, writer, exc.args[0])
        except (asyncio.CancelledError, PeerGone):
            pass                            # the reaper, an eviction, or the peer left
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

    def find_route(self, req):
        f, prefix, subapp = super().find_route(req)
        if callable(f) and isinstance(req, HeadFirstRequest) and req.conn.reading \
                and req.content_length:
            conn = req.conn
            # microdot runs the before-request handlers, then this: the body
            # is read only for a request they let through
            route = f

            async def with_body(request, **kwargs):
                if request.content_length > Request.max_body_length:
                    # too big to hold (an update): the route reads it as a
                    # stream, each read under its own deadline
                    conn.request_read()
                    request._stream = conn
                else:
                    refusal = await self._read_body(request, conn)
                    if refusal is not None:
                        return refusal
                return await invoke_handler(route, request, **kwargs)
            f = with_body
        return f, prefix, subapp

    async def _read_body(self, req, conn):
        try:
            body = await conn.readexactly(req.content_length)
        except EOFError:
            raise PeerGone()
        conn.request_read()
        req._body = body
        mime = (req.content_type or '').split(';')[0].strip().lower()
        if mime == 'application/x-www-form-urlencoded' and not _urlencoded_ok(body):
            return 'Bad form encoding', 400     # microdot's decoder would raise
        return None

    async def reap(self):
        """Cancel connections whose read or write deadline has passed."""
        last = time.ticks_ms()
        while True:
            await asyncio.sleep_ms(_REAP_MS)
            now = time.ticks_ms()
            # woken late, the board itself stood still: what the peers sent
            # meanwhile is read first, and their deadlines looked at next round
            held = time.ticks_diff(now, last) > 2 * _REAP_MS
            last = now
            for conn in self.connections:
                if conn.ws is not None:
                    conn.ws.keepalive(ticks.now_ms())
                if not held and conn.expired(now):
                    conn.cancel()


def on_close(request, release):
    """Call release() once when the request's connection closes, however it
    ends (finished, peer gone, deadline passed)."""
    request.sock[0].on_close.append(release)


# what a refused page load shows: a person is told why, and the page asks
# again by itself (the dashboard's own requests see the 503 and retry)
_BUSY_HEAD = (b'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html; charset=UTF-8\r\n'
              b'Cache-Control: no-store\r\nRetry-After: 2\r\nConnection: close\r\n'
              b'Content-Length: %d\r\n\r\n')
_BUSY_PAGE = (b'<!doctype html><meta charset="utf-8"><meta name="viewport" '
              b'content="width=device-width, initial-scale=1"><meta http-equiv="refresh" '
              b'content="3"><link rel="icon" href="data:,"><title>Board busy</title><body '
              b'style="font:16px system-ui,sans-serif;background:#101418;color:#e8eef2;'
              b'margin:2rem"><h1>Board busy</h1>'
              b'<p>The camera has no connection free right now (too many pages or apps '
              b'open). This page tries again by itself.</p>')
_BUSY = _BUSY_HEAD % len(_BUSY_PAGE) + _BUSY_PAGE


async def _refuse(reader, writer, status):
    try:
        if status == 503:
            writer.write(_BUSY)
        else:
            writer.write(('HTTP/1.0 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
                          % (status, reason(status))).encode())
        await asyncio.wait_for_ms(writer.drain(), 2000)
    except Exception:
        pass
    await _drain(reader)
    await _close(writer)


async def _drain(reader):
    # read what the client sent, or closing would reset the connection
    # before it reads the answer
    try:
        await asyncio.wait_for_ms(reader.read(_MAX_HEAD), _DRAIN_MS)
    except Exception:
        pass


async def _close(writer):
    try:
        await writer.aclose()
    except Exception:
        pass

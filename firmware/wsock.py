"""A strict WebSocket on top of microdot's: what a browser or the
`websockets` library expects of a server (RFC 6455).

microdot's WebSocket accepts unmasked frames, reserved bits and opcodes,
drops fragmented messages, and lets invalid UTF-8 through. StrictWebSocket
fails the connection with the right close code instead (1002 protocol
error, 1007 invalid UTF-8, 1009 too big), reassembles fragments up to the
size cap, answers pings and echoes the peer's close code.
"""
import asyncio
from micropython import const
from microdot.websocket import WebSocket, WebSocketError, websocket_wrapper
from firmware import ticks
from firmware.text import utf8_valid

_CONT = const(0)
_TEXT = const(1)
_BINARY = const(2)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)
PROTOCOL_ERROR = const(1002)
INVALID_DATA = const(1007)
TOO_BIG = const(1009)


def _close_code_ok(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1011 or 3000 <= code <= 4999


class StrictWebSocket(WebSocket):
    """microdot's WebSocket, strict about what it receives; it pings an idle
    peer, and one that answers nothing hits its read deadline and is dropped.
    The limits are class attributes, like microdot's max_message_length,
    set by firmware.server.Server from the config."""

    ping_ms = 10000
    dead_peer_ms = 30000

    def __init__(self, request):
        super().__init__(request)
        # ticks.now_ms(): a chatty peer leaves last_ping unchanged for days
        self.last_rx = self.last_ping = ticks.now_ms()
        self.pinging = False

    async def _fail(self, code):
        if not self.closed:
            self.closed = True
            try:
                await self.send(code.to_bytes(2, 'big'), _CLOSE)
            except Exception:
                pass
        raise WebSocketError('closed with %d' % code)

    async def _read_strict_frame(self):
        read = self.request.sock[0].readexactly
        try:
            head = await read(2)
            fin = head[0] & 0x80
            opcode = head[0] & 0x0F
            length = head[1] & 0x7F
            if head[0] & 0x70 or opcode not in (_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG):
                await self._fail(PROTOCOL_ERROR)      # reserved bits or opcode
            if not head[1] & 0x80:
                await self._fail(PROTOCOL_ERROR)      # clients must mask
            if opcode >= _CLOSE and (not fin or length > 125):
                await self._fail(PROTOCOL_ERROR)
            if length == 126:
                length = int.from_bytes(await read(2), 'big')
            elif length == 127:
                length = int.from_bytes(await read(8), 'big')
            if length > self.max_message_length:
                await self._fail(TOO_BIG)
            masked = await read(4 + length)   # the mask and payload in one read
            self.last_rx = ticks.now_ms()
        except EOFError:
            # the peer closed mid-frame: the end of this connection, no error
            raise WebSocketError('connection closed')
        payload = bytearray(length)
        for i in range(length):
            payload[i] = masked[4 + i] ^ masked[i & 3]
        return fin, opcode, payload

    async def _answer_close(self, payload):
        code = 1000
        if len(payload) == 1:
            await self._fail(PROTOCOL_ERROR)
        if len(payload) >= 2:
            code = int.from_bytes(payload[:2], 'big')
            if not _close_code_ok(code):
                await self._fail(PROTOCOL_ERROR)
            if not utf8_valid(payload[2:]):
                await self._fail(INVALID_DATA)
        await self._fail(code)

    async def receive(self):
        """The next whole message: str for text, bytes for binary."""
        message = None
        message_opcode = None
        while True:
            fin, opcode, payload = await self._read_strict_frame()
            if opcode == _PING:
                await self.send(bytes(payload), _PONG)
                continue
            if opcode == _PONG:
                continue
            if opcode == _CLOSE:
                await self._answer_close(payload)
            if opcode == _CONT:
                if message is None:
                    await self._fail(PROTOCOL_ERROR)   # nothing to continue
                if len(message) + len(payload) > self.max_message_length:
                    await self._fail(TOO_BIG)
                message.extend(payload)
            else:
                if message is not None:
                    await self._fail(PROTOCOL_ERROR)   # new message mid-fragment
                message = payload
                message_opcode = opcode
            if fin:
                if message_opcode == _BINARY:
                    return bytes(message)
                if not utf8_valid(message):
                    await self._fail(INVALID_DATA)
                return str(message, 'utf-8')

    async def ping(self):
        await self.send(b'', _PING)

    def keepalive(self, now):
        """Called by the server's reaper (now: ticks.now_ms()): ping when
        the peer has been quiet."""
        if self.pinging or now - self.last_rx < self.ping_ms or \
                now - self.last_ping < self.ping_ms:
            return
        self.last_ping = now
        self.pinging = True
        asyncio.create_task(self._ping())

    async def _ping(self):
        try:
            await self.ping()
        except Exception:
            pass            # a dead peer: the read deadline will drop it
        self.pinging = False


async def strict_upgrade(request):
    """Like microdot's websocket_upgrade, with a StrictWebSocket."""
    from microdot import Response
    ws = StrictWebSocket(request)
    await ws.handshake()
    conn = request.sock[0]      # the server's Connection: its reaper pings
    conn.ws = ws
    conn.read_timeout_ms = ws.dead_peer_ms

    @request.after_request
    async def after_request(request, response):
        return Response.already_handled

    return ws


def with_strict_websocket(f):
    """Decorator: a WebSocket route with a StrictWebSocket; a peer that
    resets during the handshake is let go quietly, as one that resets later."""
    from microdot import Response
    from microdot.microdot import MUTED_SOCKET_ERRORS
    route = websocket_wrapper(f, strict_upgrade)

    async def wrapper(request, *args, **kwargs):
        try:
            return await route(request, *args, **kwargs)
        except OSError as exc:
            if exc.errno not in MUTED_SOCKET_ERRORS:
                raise
            return Response.already_handled
    return wrapper

"""A small MQTT 3.1.1 client on asyncio streams: it never blocks the loop.

umqtt.simple/robust (micropython-lib) block on their socket, and the
asyncio clients on PyPI are old forks or untested against this asyncio,
so this is our own: CONNECT with user/password (TLS when configured) and a
last will, keepalive pings, QoS 0 and 1 publish (QoS 1 retransmitted with
DUP until acknowledged), subscribe, and reconnect with backoff. One
connection at a time; every write goes through one lock (two tasks writing
one socket trip an assertion in MicroPython's asyncio).
"""
import asyncio
from micropython import const
from firmware import ticks

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_MAX_INCOMING = const(4096)     # larger messages to us are read and dropped
_CONNECT_TIMEOUT_S = const(10)
_RETRY_S = const(5)             # QoS 1: resend after this long without PUBACK
_TRIES = const(3)
_CHUNK = const(1024)

REFUSED = {1: 'unacceptable protocol version', 2: 'client id rejected',
           3: 'server unavailable', 4: 'bad user name or password',
           5: 'not authorized'}


class MQTTError(OSError):
    pass


def _length(n):
    """The remaining-length varint."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return out


def _str(text):
    data = text.encode() if isinstance(text, str) else text
    return len(data).to_bytes(2, 'big') + data


class Client:
    """Owns one broker connection and the task that keeps it up.

    on_connect(): awaited after every CONNACK (subscribe, announce);
    on_message(topic, payload): called from the reader, must not block;
    report(text): the connection state ('connecting', 'connected', 'error: …').
    """

    def __init__(self, host, port, client_id, user=None, password=None, ssl=None,
                 keepalive_s=30, will=None, backoff_max_s=60,
                 on_connect=None, on_message=None, report=print):
        self.host = host
        self.port = port
        self.client_id = client_id
        self.user = user
        self.password = password
        self.ssl = ssl                  # an SSLContext, or None
        self.keepalive_s = keepalive_s
        self.will = will                # (topic, payload, retain) or None
        self.backoff_max_s = backoff_max_s
        self.on_connect = on_connect
        self.on_message = on_message
        self.report = report
        self.connected = False
        self.attempts = 0
        self._stream = None             # reader and writer: one Stream in MicroPython
        self._writer = None
        self._lock = asyncio.Lock()
        self._pid = 0
        self._acked = {}                # packet id awaiting PUBACK -> acknowledged yet
        self._ack = asyncio.Event()
        self._heard_ms = 0
        self.task = None

    def start(self):
        self.task = asyncio.create_task(self._run())

    def deinit(self):
        if self.task:
            self.task.cancel()
        self._close()

    # --- the connection ------------------------------------------------
    async def _run(self):
        backoff = 1
        self.report('connecting')
        while True:
            try:
                self.attempts += 1
                await asyncio.wait_for(self._connect(), _CONNECT_TIMEOUT_S)
                backoff = 1
                await self._session()
            except asyncio.CancelledError:
                self._close()
                raise
            except Exception as exc:
                self.report('error: ' + (str(exc) or repr(exc)))
            self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    async def _connect(self):
        self._stream, self._writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl)
        flags = 0x02                    # clean session
        body = _str('MQTT') + b'\x04'
        payload = _str(self.client_id)
        if self.will:
            topic, message, retain = self.will
            flags |= 0x04 | (0x20 if retain else 0)
            payload += _str(topic) + _str(message)
        if self.user is not None:
            flags |= 0x80
            payload += _str(self.user)
            if self.password is not None:
                flags |= 0x40
                payload += _str(self.password)
        body += bytes((flags,)) + self.keepalive_s.to_bytes(2, 'big') + payload
        await self._send(_CONNECT, body)
        head = await self._stream.readexactly(4)
        if head[0] != _CONNACK:
            raise MQTTError('no CONNACK')
        if head[3]:
            raise MQTTError(REFUSED.get(head[3], 'refused (%d)' % head[3]))
        self._heard_ms = ticks.now_ms()

    async def _session(self):
        reader = asyncio.create_task(self._read_loop())
        try:
            self.connected = True
            if self.on_connect:
                await self.on_connect()
            self.report('connected')    # subscribed by now: no command sent on this news is lost
            while True:
                await asyncio.sleep_ms(self.keepalive_s * 500)
                if reader.done():
                    break
                if ticks.now_ms() - self._heard_ms > self.keepalive_s * 1500:
                    raise MQTTError('broker silent')
                await self._send(_PINGREQ, b'')
            raise MQTTError('connection lost')
        finally:
            self.connected = False
            self._close()
            reader.cancel()

    def _close(self):
        self.connected = False
        writer = self._writer
        self._stream = self._writer = None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass

    async def _read_loop(self):
        stream = self._stream
        try:
            while True:
                first = (await stream.readexactly(1))[0]
                n = shift = 0
                while True:
                    byte = (await stream.readexactly(1))[0]
                    n |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                self._heard_ms = ticks.now_ms()
                kind = first & 0xF0
                if kind == _PUBLISH and n <= _MAX_INCOMING:
                    await self._incoming(first, await stream.readexactly(n))
                    continue
                if n > _MAX_INCOMING:
                    while n:                # not for us to hold: drop it
                        n -= len(await stream.readexactly(min(n, _CHUNK)))
                    continue
                body = await stream.readexactly(n) if n else b''
                if kind == _PUBACK:
                    # only for a publish still waiting: the second PUBACK of a
                    # retransmitted one, or one after giving up, is dropped
                    pid = int.from_bytes(body[:2], 'big')
                    if pid in self._acked:
                        self._acked[pid] = True
                        self._ack.set()
        except Exception:
            pass
        finally:
            self._close()
            self._ack.set()         # a publisher waiting for PUBACK gives up

    async def _incoming(self, first, body):
        size = int.from_bytes(body[:2], 'big')
        topic = bytes(body[2:2 + size]).decode()
        at = 2 + size
        qos = (first >> 1) & 3
        if qos:
            pid = body[at:at + 2]
            at += 2
            await self._send(_PUBACK, bytes(pid))
        if self.on_message:
            self.on_message(topic, bytes(body[at:]))

    # --- sending -------------------------------------------------------
    async def _send(self, kind, body, tail=None, tail_size=0):
        """Write one packet: header, body, then `tail`: bytes, or a function
        chunk(buf) -> n that fills buf (a payload of tail_size bytes read
        piecewise, e.g. from the card)."""
        async with self._lock:
            stream = self._writer
            if stream is None:
                raise MQTTError('not connected')
            size = len(body)
            if isinstance(tail, (bytes, bytearray, memoryview)):
                size += len(tail)
            elif tail is not None:
                size += tail_size
            try:
                stream.write(bytes((kind,)) + _length(size) + body)
                if isinstance(tail, (bytes, bytearray, memoryview)):
                    view = memoryview(tail)
                    for at in range(0, len(view), _CHUNK * 4):
                        stream.write(view[at:at + _CHUNK * 4])
                        await self._drain(stream)
                elif tail is not None:
                    buf = bytearray(_CHUNK)
                    left = tail_size
                    while left:
                        n = tail(memoryview(buf)[:min(left, _CHUNK)])
                        if not n:
                            raise MQTTError('payload ended early')
                        stream.write(memoryview(buf)[:n])
                        left -= n
                        await self._drain(stream)
                await self._drain(stream)
            except BaseException:
                self._close()       # half a packet went out: the session is lost
                raise

    async def _drain(self, stream):
        # a broker that stops reading must not hold the lock (and a held
        # camera buffer) for ever: the session is dropped and made again
        try:
            await asyncio.wait_for_ms(stream.drain(), self.keepalive_s * 1000)
        except asyncio.TimeoutError:
            raise MQTTError('the broker took nothing for %d s' % self.keepalive_s)

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def publish(self, topic, payload, retain=False, qos=0, size=0):
        """Publish; payload is bytes/str, or a function (see _send) with its
        total `size` given. QoS 1 waits for PUBACK, resending with DUP;
        MQTTError when not connected or never acknowledged."""
        if isinstance(payload, str):
            payload = payload.encode()
        flags = (0x01 if retain else 0) | (qos << 1)
        if qos == 0:
            await self._send(_PUBLISH | flags, _str(topic), payload, size)
            return
        pid = self._next_pid()
        body = _str(topic) + pid.to_bytes(2, 'big')
        self._acked[pid] = False
        try:
            for attempt in range(_TRIES):
                await self._send(_PUBLISH | flags | (0x08 if attempt else 0), body, payload,
                                 size)
                deadline = ticks.now_ms() + _RETRY_S * 1000
                while not self._acked[pid] and self._stream is not None:
                    left = deadline - ticks.now_ms()
                    if left <= 0:
                        break
                    self._ack.clear()
                    try:
                        await asyncio.wait_for_ms(self._ack.wait(), left)
                    except asyncio.TimeoutError:
                        pass
                if self._acked[pid]:
                    return
                if self._stream is None:
                    break
        finally:
            del self._acked[pid]
        raise MQTTError('not acknowledged')

    async def subscribe(self, topic, qos=0):
        """Subscribe (the SUBACK is read and ignored by the reader)."""
        await self._send(_SUBSCRIBE, self._next_pid().to_bytes(2, 'big') +
                         _str(topic) + bytes((qos,)))

    async def disconnect(self):
        try:
            await self._send(_DISCONNECT, b'')
        except Exception:
            pass
        self._close()

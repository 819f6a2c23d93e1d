"""RTSP (RFC 2326) for recorders: the camera's frames as RTP/JPEG.

One URL, rtsp://<board>:<port>/stream, one video track; RTP interleaved on
the RTSP connection (TCP) or to the client's UDP ports. Sockets are
counted: RTSP may hold `rtsp.sockets` of lwIP's ten (a TCP viewer costs
one, a UDP viewer three: its RTSP connection, RTP and RTCP); a viewer
beyond that gets 453 Not Enough Bandwidth and the dashboard keeps its own.

Credentials as on HTTP: the API token in the URL (?token=...), or Digest
(user "admin", the API token as password; README.md says why not the
dashboard password), or Digest as the view-only "recorder" (firmware/nvr.py).
A connection that proved itself once stays proven.
Each viewer sends the newest frame when it is ready for one (a slow viewer
skips frames, holds one frame at most); a viewer whose socket takes no data
for `write_timeout_s` is dropped.
"""
import asyncio
import binascii
from errno import ECONNRESET
import hashlib
import os
import select
import socket
import struct
import time
from micropython import const
from firmware import auth, digest, nvr, rtpjpeg

_MTU = const(1400)              # an RTP packet: 1400 + IP and UDP heads < 1500
_MAX_HEAD = const(2048)
_MAX_BODY = const(512)
_SESSION_S = const(60)          # a UDP viewer's keep-alive period (Session: timeout)
_REFUSE_MS = const(2000)
_DRAIN_BYTES = const(4096)      # written between two drains (lwIP's send buffer ~5.7 KB)
_UDP_BURST = const(8)           # UDP packets between two yields to the loop
_INTERLEAVED = const(0x24)      # '$'
_SOCKETS_UDP = const(2)

REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found',
           413: 'Request Entity Too Large', 453: 'Not Enough Bandwidth',
           454: 'Session Not Found', 455: 'Method Not Valid in This State',
           461: 'Unsupported Transport', 500: 'Internal Server Error',
           501: 'Not Implemented', 503: 'Service Unavailable',
           505: 'RTSP Version Not Supported'}
_PUBLIC = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER'
PATHS = ('/stream', '/')


class BadRequest(Exception):
    """args[0]: the status to answer before the connection closes."""


def _split_url(url):
    """(path, query) of rtsp://host[:port]/path?query (or of /path?query)."""
    start = url.find('://')
    if start >= 0:
        slash = url.find('/', start + 3)
        url = '/' if slash < 0 else url[slash:]
    path, _, query = url.partition('?')
    return path, query


def _query_token(query):
    for pair in query.split('&'):
        name, _, value = pair.partition('=')
        if name == 'token':
            # a client may append "/track1" to the URL, query and all
            return value.split('/')[0]
    return None


def _transport(value):
    """('tcp', (rtp channel, rtcp channel)) or ('udp', (rtp port, rtcp port)) for
    the first offered transport that is served here, or None."""
    for offer in value.split(','):
        parts = [p.strip() for p in offer.split(';')]
        spec = parts[0].upper()
        params = {}
        for p in parts[1:]:
            name, _, v = p.partition('=')
            params[name.lower()] = v
        if 'multicast' in params:
            continue
        pair = None
        key = 'interleaved' if spec == 'RTP/AVP/TCP' else 'client_port' \
            if spec in ('RTP/AVP', 'RTP/AVP/UDP') else None
        if key is None or key not in params:
            continue
        low, _, high = params[key].partition('-')
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        low = int(low)
        high = int(high) if high else low + 1
        limit = 255 if key == 'interleaved' else 65535
        if not (0 <= low <= limit and 0 <= high <= limit) or (key == 'client_port' and not low):
            continue
        pair = (low, high)
        return ('tcp' if key == 'interleaved' else 'udp'), pair
    return None


class RtspServer:
    """The RTSP listener and its viewers; serve() runs it."""

    def __init__(self, rtsp_config, camera, guard, ip, max_fps, limits, recorder=None):
        self.port = rtsp_config['port']
        self.rtp_port = rtsp_config['rtp_port']
        self.sockets = rtsp_config['sockets']
        self.camera = camera
        self.guard = guard
        self.recorder = recorder                # nvr.RecorderLogin, or None
        self.ip = ip
        self.interval_ms = 1000 // max(1, max_fps)
        self.write_ms = limits['write_timeout_s'] * 1000
        self.head_ms = limits['head_timeout_s'] * 1000
        self.used = 0                           # sockets held by viewers
        self.refusing = False                   # one refusal at a time waits for its request
        self.udp_slots = [False] * (self.sockets // (1 + _SOCKETS_UDP) + 1)
        self.fps = max_fps
        self.server = None

    async def serve(self):
        """Listen until cancelled."""
        self.server = await asyncio.start_server(self._client, '0.0.0.0', self.port, 2)
        print('rtsp: serving on rtsp://%s:%d/stream' % (self.ip, self.port))

    async def _client(self, reader, writer):
        viewer = Viewer(self, reader, writer)
        if self.used + 1 > self.sockets:
            if self.refusing:                   # a retry storm or a scan: no socket waits
                await viewer.refuse(None)
                return
            self.refusing = True
            try:
                await viewer.refuse(453)
            finally:
                self.refusing = False
            return
        self.used += 1
        try:
            await viewer.run()
        except (asyncio.CancelledError, OSError, BadRequest, asyncio.TimeoutError):
            pass
        except Exception as exc:
            print('rtsp: viewer failed:', repr(exc))
        finally:
            viewer.close()
            self.used -= 1
            try:
                await writer.aclose()
            except Exception:
                pass

    def take_udp(self):
        """A free UDP slot index (its ports: rtp_port + 2 * slot), or None."""
        if self.used + _SOCKETS_UDP > self.sockets:
            return None
        for i in range(len(self.udp_slots)):
            if not self.udp_slots[i]:
                self.udp_slots[i] = True
                self.used += _SOCKETS_UDP
                return i
        return None

    def give_udp(self, slot):
        self.udp_slots[slot] = False
        self.used -= _SOCKETS_UDP


def _udp_socket(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(socket.getaddrinfo('0.0.0.0', port)[0][-1])
        sock.setblocking(False)
    except Exception:
        sock.close()
        raise
    return sock


class Viewer:
    """One RTSP connection: its requests, its session and the frames it is sent."""

    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.buffered = b''
        self.task = asyncio.current_task()
        self.lock = asyncio.Lock()          # replies and packets, one writer at a time
        self.authed = not server.guard.auth_on
        self.nonce = binascii.hexlify(os.urandom(12)).decode()
        peer = writer.get_extra_info('peername')
        self.address = peer[0] if isinstance(peer, (tuple, list)) and peer else '?'
        self.session = None
        self.transport = None               # 'tcp' or 'udp' once set up
        self.channel = 0
        self.slot = None
        self.rtp = self.rtcp = None
        self.reports = None                 # select.poll of rtcp: recv only what is there
        self.dest = None
        self.packetiser = None
        self.sender = None
        self.heard_ms = time.ticks_ms()     # the last sign of life of a UDP viewer
        self.born_ms = self.heard_ms        # until authed: the whole unauthenticated phase
        self.base = ''

    # --- reading ----------------------------------------------------------
    async def _fill(self, started):
        """Read more, or raise TimeoutError once the request's time is up;
        a read never buys more time (a byte every few seconds must not hold
        a slot)."""
        left = self._left_ms(started)
        if left is None:
            # playing over TCP: its writes judge it. A read timeout here would
            # unregister the socket, and with it the sender waiting in drain()
            data = await self.reader.read(512)
        else:
            try:
                data = await asyncio.wait_for_ms(self.reader.read(512), left)
            except asyncio.TimeoutError:
                return                      # the caller asks again; _left_ms decides
        if not data:
            raise OSError(ECONNRESET)
        self.buffered += data

    def _left_ms(self, started):
        """ms left to read the request begun at `started`, None for no limit."""
        now = time.ticks_ms()
        if self.session is None:
            # set-up: one head timeout per request, never re-armed by a read
            left = self.server.head_ms - time.ticks_diff(now, started)
        elif self.transport == 'tcp' and self.sender is not None:
            return None
        else:
            # UDP, or paused: keep-alives (or RTCP reports) within the session timeout
            left = _SESSION_S * 1000 - time.ticks_diff(now, self.heard_ms)
        if not self.authed:
            left = min(left, self.server.head_ms - time.ticks_diff(now, self.born_ms))
        if left <= 0:
            raise asyncio.TimeoutError
        return left

    async def _next_request(self):
        """(method, url, headers, body) of the next request; interleaved
        data from the client (RTCP reports) is skipped."""
        started = time.ticks_ms()
        while True:
            buf = self.buffered
            if buf[:1] == b'$':
                if len(buf) < 4:
                    await self._fill(started)
                    continue
                skip = 4 + (buf[2] << 8 | buf[3])
                while len(self.buffered) < skip:
                    skip -= len(self.buffered)
                    self.buffered = b''
                    await self._fill(started)
                self.buffered = self.buffered[skip:]
                self.heard_ms = time.ticks_ms()
                continue
            end = buf.find(b'\r\n\r\n')
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise BadRequest(400)
                await self._fill(started)
                continue
            head = buf[:end]
            self.buffered = buf[end + 4:]
            method, url, headers = _parse_head(head)
            length = headers.get('content-length', '0')
            if not length.isdigit() or int(length) > _MAX_BODY:
                raise BadRequest(413 if length.isdigit() else 400)
            while len(self.buffered) < int(length):
                await self._fill(started)
            body = self.buffered[:int(length)]
            self.buffered = self.buffered[int(length):]
            self.heard_ms = time.ticks_ms()
            return method, url, headers, body

    # --- the conversation ---------------------------------------------------
    async def run(self):
        while True:
            try:
                method, url, headers, body = await self._next_request()
            except BadRequest as exc:
                await self.reply(exc.args[0], None)
                return
            cseq = headers.get('cseq')
            if cseq is None or not cseq.isdigit():
                await self.reply(400, None)
                return
            status, extra, content = await self._answer(method, url, headers)
            await self.reply(status, cseq, extra, content)
            if status == 200 and method == 'PLAY' and self.sender is None:
                self.sender = asyncio.create_task(self._send_frames())

    async def _answer(self, method, url, headers):
        """(status, extra header lines, body) for one request."""
        if method == 'OPTIONS':
            return 200, 'Public: %s\r\n' % _PUBLIC, None
        if method not in ('DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN',
                          'GET_PARAMETER', 'SET_PARAMETER'):
            return 501, '', None
        refusal = self._authorise(method, url, headers)
        if refusal is not None:
            return refusal
        if method == 'DESCRIBE':
            return self._describe(url)
        if method == 'SETUP':
            return self._setup(headers)
        session = headers.get('session', '').split(';')[0].strip()
        if method in ('GET_PARAMETER', 'SET_PARAMETER'):
            return 200, self._session_line(), None
        if self.session is None or session != self.session:
            return 454, '', None
        if method == 'PLAY':
            return 200, self._session_line() + 'Range: npt=0.000-\r\nRTP-Info: url=%strack1;seq=%d\r\n' % (
                self.base, self.packetiser.seq), None
        if method == 'PAUSE':
            self._stop_sending()
            return 200, self._session_line(), None
        self._end_session()                     # TEARDOWN
        return 200, '', None

    def _authorise(self, method, url, headers):
        if self.authed:
            return None
        guard = self.server.guard
        locked = guard.backoff.locked_s(self.address)
        if locked:
            return 503, 'Retry-After: %d\r\n' % locked, None
        token = _query_token(_split_url(url)[1])
        fields = digest.fields(headers.get('authorization', ''))
        if token is None and fields is None:
            return self._challenge()
        if token is None and fields.get('nonce') != self.nonce:
            return self._challenge(True)        # an old connection's nonce: not a guess
        credentials = guard.credentials
        ok = False
        if token is not None:
            ok = credentials is not None and credentials.token_ok(token)
        elif fields.get('realm') == auth.RTSP_REALM:
            user = fields.get('username')
            ha1 = None
            if user == auth.RTSP_USER and credentials is not None:
                ha1 = credentials.rtsp_ha1
            elif user == nvr.USER and self.server.recorder is not None:
                ha1 = self.server.recorder.ha1      # the view-only recorder login
            ok = ha1 is not None and digest.answer_ok(fields, method, self.nonce, ha1)
        if ok:
            guard.backoff.succeeded(self.address)
            self.authed = True
            return None
        guard.backoff.failed(self.address)
        return self._challenge()

    def _challenge(self, stale=False):
        return 401, 'WWW-Authenticate: Digest realm="%s", nonce="%s"%s\r\n' % (
            auth.RTSP_REALM, self.nonce, ', stale=true' if stale else ''), None

    def _describe(self, url):
        path, _ = _split_url(url)
        if path.rstrip('/') not in ('/stream', ''):
            return 404, '', None
        start = url.find('://')
        slash = url.find('/', start + 3) if start >= 0 else -1
        self.base = (url[:slash] if slash > 0 else 'rtsp://%s:%d' % (
            self.server.ip, self.server.port)) + '/stream/'
        sdp = ('v=0\r\no=- %s 1 IN IP4 %s\r\ns=esp32cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n'
               'a=control:*\r\na=range:npt=0-\r\nm=video 0 RTP/AVP 26\r\n'
               'a=rtpmap:26 JPEG/90000\r\na=framerate:%d\r\na=control:track1\r\n'
               % (self.nonce[:8], self.server.ip, self.server.fps))
        return 200, ('Content-Base: %s\r\nContent-Type: application/sdp\r\n' % self.base), sdp

    def _setup(self, headers):
        if self.sender is not None:
            return 455, '', None
        offer = _transport(headers.get('transport', ''))
        if offer is None:
            return 461, '', None
        self._end_session()
        kind, pair = offer
        ssrc = struct.unpack('>I', os.urandom(4))[0]
        if kind == 'udp':
            slot = self.server.take_udp()
            if slot is None:
                return 453, '', None
            port = self.server.rtp_port + 2 * slot
            try:
                self.rtp = _udp_socket(port)
                self.rtcp = _udp_socket(port + 1)
                self.reports = select.poll()
                self.reports.register(self.rtcp, select.POLLIN)
            except OSError:
                self._close_udp()
                self.server.give_udp(slot)
                return 453, '', None        # lwIP had no socket left
            self.slot = slot
            self.dest = socket.getaddrinfo(self.address, pair[0])[0][-1]
            self.packetiser = rtpjpeg.Packetiser(ssrc, _MTU)
            line = 'RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d' % (
                pair[0], pair[1], port, port + 1)
        else:
            self.channel = pair[0]
            self.packetiser = rtpjpeg.Packetiser(ssrc, _MTU, 4)
            line = 'RTP/AVP/TCP;unicast;interleaved=%d-%d' % pair
        self.transport = kind
        self.session = binascii.hexlify(os.urandom(6)).decode()
        return 200, 'Transport: %s;ssrc=%08X\r\n%s' % (line, ssrc, self._session_line()), None

    def _session_line(self):
        if self.session is None:
            return ''
        return 'Session: %s;timeout=%d\r\n' % (self.session, _SESSION_S)

    async def reply(self, status, cseq, extra='', body=None):
        data = 'RTSP/1.0 %d %s\r\n%s%s' % (status, REASONS.get(status, 'Error'),
                                          '' if cseq is None else 'CSeq: %s\r\n' % cseq,
                                          extra or '')
        if body:
            data += 'Content-Length: %d\r\n\r\n%s' % (len(body), body)
        else:
            data += '\r\n'
        await self.lock.acquire()
        try:
            self.writer.write(data.encode())
            await asyncio.wait_for_ms(self.writer.drain(), self.server.write_ms)
        finally:
            self.lock.release()

    async def refuse(self, status):
        """Answer the first request with `status`, then close (no budget
        left); status None: close at once."""
        try:
            if status is not None:
                _, _, headers, _ = await asyncio.wait_for_ms(self._next_request(), _REFUSE_MS)
                await self.reply(status, headers.get('cseq'))
        except Exception:
            pass
        try:
            await self.writer.aclose()
        except Exception:
            pass

    # --- frames ---------------------------------------------------------------
    async def _send_frames(self):
        camera = self.server.camera
        interval = self.server.interval_ms
        seen = -1
        sent_ms = None
        timestamp = struct.unpack('>I', os.urandom(4))[0]
        try:
            while True:
                if sent_ms is not None:
                    wait = interval - time.ticks_diff(time.ticks_ms(), sent_ms)
                    if 0 < wait <= interval:
                        await asyncio.sleep_ms(wait)       # the frame-rate cap
                        continue
                if camera.latest_jpeg is None or camera.frame_count == seen:
                    await camera.wait_frame()
                    continue
                seen = camera.frame_count
                now = time.ticks_ms()
                if sent_ms is not None:
                    # the gap since the last frame: no stamp lives longer than a frame
                    timestamp += max(0, time.ticks_diff(now, sent_ms)) * (rtpjpeg.CLOCK_HZ // 1000)
                sent_ms = now
                jpeg, slot = camera.hold()
                try:
                    frame = rtpjpeg.parse(jpeg)
                    if frame is not None:
                        if self.transport == 'tcp':
                            await self._send_tcp(frame, timestamp)
                        else:
                            await self._send_udp(frame, timestamp)
                finally:
                    camera.release(slot)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            # a socket that takes nothing (TimeoutError) or failed: drop the viewer
            if not isinstance(exc, (OSError, asyncio.TimeoutError)):
                print('rtsp: sending failed:', repr(exc))
            self.sender = None
            if self.task is not None:
                self.task.cancel()

    async def _send_tcp(self, frame, timestamp):
        writer = self.writer
        channel = self.channel
        timeout = self.server.write_ms
        pending = 0
        await self.lock.acquire()
        try:
            for packet in self.packetiser.packets(frame, timestamp):
                struct.pack_into('>BBH', packet, 0, _INTERLEAVED, channel, len(packet) - 4)
                writer.write(packet)    # what the socket leaves is copied by the stream
                pending += len(packet)
                if pending >= _DRAIN_BYTES:
                    await asyncio.wait_for_ms(writer.drain(), timeout)
                    pending = 0
            await asyncio.wait_for_ms(writer.drain(), timeout)
        finally:
            self.lock.release()

    async def _send_udp(self, frame, timestamp):
        rtp = self.rtp
        dest = self.dest
        if rtp is None or dest is None:
            return
        count = 0
        for packet in self.packetiser.packets(frame, timestamp):
            try:
                rtp.sendto(packet, dest)
            except OSError:
                # out of buffers, or the viewer's port closed for now (an ICMP
                # error): the rest of this frame goes; keep-alives judge the viewer
                break
            count += 1
            if count % _UDP_BURST == 0:
                await asyncio.sleep_ms(0)
        try:
            # receiver reports: the viewer is alive. recv only when poll saw one:
            # a recv that fails still allocates its buffer on the ESP32
            for _ in self.reports.ipoll(0):
                self.rtcp.recv(512)
                self.heard_ms = time.ticks_ms()
        except OSError:
            pass

    # --- ending -----------------------------------------------------------------
    def _stop_sending(self):
        if self.sender is not None:
            self.sender.cancel()
            self.sender = None

    def _close_udp(self):
        if self.reports is not None and self.rtcp is not None:
            self.reports.unregister(self.rtcp)
        for sock in (self.rtp, self.rtcp):
            if sock is not None:
                sock.close()
        self.rtp = self.rtcp = self.reports = None

    def _end_session(self):
        self._stop_sending()
        self._close_udp()
        if self.slot is not None:
            self.server.give_udp(self.slot)
            self.slot = None
        self.session = None
        self.transport = None

    def close(self):
        self.task = None            # the sender must not cancel a finished connection
        self._end_session()


def _parse_head(head):
    """(method, url, headers with lower-case names) of a request head, or
    raise BadRequest."""
    try:
        text = head.decode()
    except UnicodeError:
        raise BadRequest(400)
    lines = text.split('\r\n')
    parts = lines[0].split(' ')
    method = parts[0].replace('_', '')         # GET_PARAMETER, SET_PARAMETER
    if len(parts) != 3 or not method.isalpha() or not method.isupper() or not parts[1]:
        raise BadRequest(400)
    if not parts[2].startswith('RTSP/'):
        raise BadRequest(400)
    if parts[2] != 'RTSP/1.0':
        raise BadRequest(505)
    if len(lines) > 32:
        raise BadRequest(400)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(':')
        if not sep or not name or name != name.strip() or '\r' in line or '\n' in line:
            raise BadRequest(400)
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], headers

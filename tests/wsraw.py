"""A raw-socket WebSocket client that can send any frame, valid or not."""
import base64
import os
import socket
import struct


def frame(opcode, payload=b'', fin=True, rsv=0, mask=True, length=None):
    """Encode one frame; every field can be set wrong on purpose."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head.append(mask_bit | n)
    elif n < 65536:
        head.append(mask_bit | 126)
        head += struct.pack('>H', n)
    else:
        head.append(mask_bit | 127)
        head += struct.pack('>Q', n)
    if mask:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + payload


class RawWebSocket:
    def __init__(self, port, path='/control', timeout=15, headers=''):
        """port: a port number (no credentials sent), or a harness Board,
        whose raw_auth() lines go into the head."""
        if not isinstance(port, int):
            headers = port.raw_auth() + headers
            port = port.port
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
                           'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                           'Sec-WebSocket-Version: 13\r\n%s\r\n' % (path, port, key, headers)).encode())
        self.buf = b''
        while b'\r\n\r\n' not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError('closed during handshake: %r' % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        self.status = int(head.split(b' ')[1])

    def send(self, data):
        self.sock.sendall(data)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('connection closed')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_frame(self):
        """(opcode, payload) of the next frame from the server."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack('>H', self._read(2))[0]
        elif n == 127:
            n = struct.unpack('>Q', self._read(8))[0]
        assert not b1 & 0x80, 'server frames must not be masked'
        return b0 & 0x0F, self._read(n)

    def recv_close_code(self):
        """Read frames until a close frame; return its code (None if empty)."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 8:
                return struct.unpack('>H', payload[:2])[0] if len(payload) >= 2 else None

    def closed_by_server(self):
        """True when the server closes the TCP connection (after a close frame).
        A reset counts: the server closed with bytes of a failed frame unread."""
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except (TimeoutError, socket.timeout):
            return False

    def close(self):
        self.sock.close()

"""The setup portal's DNS responder: every A query is answered with the
board's address, so a phone that joins the setup network finds the setup
page (captive portal). One UDP socket, closed by stop()."""
import asyncio
import socket
from micropython import const
from firmware.udpserve import answer_datagrams

_MAX_QUERY = const(512)
_TTL_S = const(10)


def answer(query, ip_bytes):
    """The reply to one DNS query (bytes), or None to ignore it."""
    if len(query) < 17 or query[2] & 0xF8 or query[4:6] != b'\x00\x01':
        return None                     # a reply, not a standard query, or not one question
    end = 12
    while end < len(query) and query[end]:
        if query[end] & 0xC0:
            return None                 # no compression in a question
        end += query[end] + 1
    end += 5                            # the root label, type, class
    if end > len(query):
        return None
    question = query[12:end]
    is_a = question[-4:] == b'\x00\x01\x00\x01'
    head = query[:2] + bytes([0x84 | (query[2] & 0x01), 0x80]) + b'\x00\x01'
    head += (b'\x00\x01' if is_a else b'\x00\x00') + b'\x00\x00\x00\x00'
    if not is_a:
        return head + question          # no record of that type: no answer
    record = b'\xc0\x0c\x00\x01\x00\x01' + _TTL_S.to_bytes(4, 'big') + b'\x00\x04' + ip_bytes
    return head + question + record


class DnsPortal:
    """Owns the socket and its task: start(), stop()."""

    def __init__(self, ip, port=53):
        self.ip_bytes = bytes(int(part) for part in ip.split('.'))
        self.port = port
        self.sock = None
        self.task = None

    def start(self):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            print('setup: no DNS responder:', exc)
            return
        try:
            sock.setblocking(False)
            sock.bind(socket.getaddrinfo('0.0.0.0', self.port)[0][-1])
        except OSError as exc:
            sock.close()
            print('setup: no DNS responder:', exc)
            return
        self.sock = sock
        self.task = asyncio.create_task(self._serve())

    async def _serve(self):
        await answer_datagrams(self.sock, _MAX_QUERY,
                               lambda query: answer(query, self.ip_bytes), 'setup dns')

    def stop(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

# Simulator only, never goes onto a board: the board's network as seen from
# this PC. A server the board opens on any port listens on 127.0.0.1:SIM_PORT
# with lwIP-sized socket buffers and lwIP's socket budget,
# and nothing else is reachable (the simulator has no network beyond loopback).
# Its sockets fail with the ESP32's errno numbers (newlib's, as lwIP raises
# them; tools/sim/errno.py has the names), not the host's Linux ones.
from usocket import *  # noqa: F401,F403
import io
import select
import usocket
import simctl


def getaddrinfo(host, port, *args):
    if host in ('0.0.0.0', '', '::') and port == 53 and simctl.env('SIM_DNS_PORT'):
        # the setup portal's DNS responder: a free loopback port instead
        return usocket.getaddrinfo('127.0.0.1', int(simctl.env('SIM_DNS_PORT')), *args)
    if host in ('0.0.0.0', '', '::'):
        mapped = _port_map().get(port)
        if mapped is not None:      # RTSP, RTP: a free loopback port the harness chose
            return usocket.getaddrinfo('127.0.0.1', mapped, *args)
        return usocket.getaddrinfo('127.0.0.1', int(simctl.env('SIM_PORT', '8080')), *args)
    if host in ('127.0.0.1', 'localhost'):
        return usocket.getaddrinfo(host, port, *args)
    import network              # names: the simulated DNS (pool.ntp.org only)
    addr = network.sim_resolve(host, port)
    return usocket.getaddrinfo(addr[0], addr[1], *args)


def _port_map():
    """SIM_PORT_MAP "554:41234,6970:41236": the board's port -> the loopback
    port it gets here (every other port the board listens on is SIM_PORT)."""
    ports = {}
    for pair in simctl.env('SIM_PORT_MAP', '').split(','):
        if pair:
            board, _, here = pair.partition(':')
            ports[int(board)] = int(here)
    return ports


_SO_SNDBUF = 7                  # Linux's numbers; MicroPython does not name them
_SO_RCVBUF = 8
_LWIP_BUFFER = 5744             # the board's TCP_SND_BUF and TCP_WND


# lwIP on the ESP32 has CONFIG_LWIP_MAX_SOCKETS (10) sockets in all: the
# listener, every accepted client, NTP, MQTT. SIM_SOCKETS=0 lifts the budget.
_BUDGET = int(simctl.env('SIM_SOCKETS', '10'))
_ENFILE = 23                    # lwIP's alloc_socket() failure, newlib's number
_EAGAIN = 11                    # the same on both
_ETIMEDOUT = 116                # newlib's; Linux's is 110
_GET_FILENO = 10                # MP_STREAM_GET_FILENO: select.poll uses the fd
_POLL = 3                       # MP_STREAM_POLL; its flags are poll()'s
_CLOSE = 4                      # MP_STREAM_CLOSE
_open = []                      # the native sockets that hold a slot
_LWIP_IPPROTO_IP = 0
_LWIP_IP_ADD_MEMBERSHIP = 3


# Linux's errno numbers (what the unix port's sockets raise) that newlib, and
# so lwIP on the ESP32, numbers otherwise; 1..34 (EAGAIN, ENOMEM, ENFILE, ...)
# and ECONNRESET, ENOBUFS, ECONNREFUSED, EOPNOTSUPP agree.
_BOARD_ERRNO = {
    32: 104,        # EPIPE: lwIP has none (err_to_errno); a reset peer is ECONNRESET
    88: 108,        # ENOTSOCK
    89: 121,        # EDESTADDRREQ
    90: 122,        # EMSGSIZE
    91: 107,        # EPROTOTYPE
    92: 109,        # ENOPROTOOPT
    93: 123,        # EPROTONOSUPPORT
    97: 106,        # EAFNOSUPPORT
    98: 112,        # EADDRINUSE
    99: 125,        # EADDRNOTAVAIL
    100: 115,       # ENETDOWN
    101: 114,       # ENETUNREACH
    102: 126,       # ENETRESET
    103: 113,       # ECONNABORTED
    106: 127,       # EISCONN
    107: 128,       # ENOTCONN
    110: 116,       # ETIMEDOUT
    112: 117,       # EHOSTDOWN
    113: 118,       # EHOSTUNREACH
    114: 120,       # EALREADY
    115: 119,       # EINPROGRESS
}


def _board_error(exc):
    """exc, an OSError from a host socket, as the board raises it. Only
    errors of the host's own calls come here, never one already translated
    (the two numberings overlap: Linux's EHOSTDOWN is the board's EADDRINUSE)."""
    number = _BOARD_ERRNO.get(exc.errno) if type(exc.errno) is int else None
    return exc if number is None else OSError(number, *exc.args[1:])


def _claim(sock):
    """Count sock against the budget, or close it and fail as lwIP does."""
    _open[:] = [s for s in _open if s.fileno() >= 0]     # closed: slot freed
    if _BUDGET and len(_open) >= _BUDGET:
        sock.close()
        raise OSError(_ENFILE)
    _open.append(sock)
    return sock


class _Socket(io.IOBase):
    """A board-made socket: accept() takes a slot for each client and, with
    none left, drops the connection (lwip_accept: netconn_delete, ENFILE).
    Its calls fail with the board's errno numbers; so do accepted clients',
    which asyncio's streams read and write. With a timeout set, a call that
    runs out of time raises ETIMEDOUT as the esp32 port does (the unix port
    raises EAGAIN, or returns None from read/write)."""

    def __init__(self, sock):
        self._sock = sock
        self._timed = False     # settimeout(t > 0): the esp32 port's retries

    def _error(self, exc):
        if self._timed and exc.errno == _EAGAIN:
            return OSError(_ETIMEDOUT)
        return _board_error(exc)

    def _stream(self, result):
        if result is None and self._timed:
            raise OSError(_ETIMEDOUT)
        return result

    def settimeout(self, seconds):
        self._sock.settimeout(seconds)
        self._timed = bool(seconds)

    def setblocking(self, flag):
        self._sock.setblocking(flag)
        self._timed = False

    def accept(self):
        try:
            sock, addr = self._sock.accept()
        except OSError as exc:
            raise self._error(exc)
        return _Socket(_claim(sock)), _peer(addr)

    # the calls asyncio's streams make for every read and write, spelt out
    # (no closure per call); __getattr__ wraps the rest
    def read(self, *args):
        try:
            return self._stream(self._sock.read(*args))
        except OSError as exc:
            raise self._error(exc)

    def readinto(self, *args):
        try:
            return self._stream(self._sock.readinto(*args))
        except OSError as exc:
            raise self._error(exc)

    def readline(self, *args):
        try:
            return self._stream(self._sock.readline(*args))
        except OSError as exc:
            raise self._error(exc)

    def write(self, *args):
        try:
            return self._stream(self._sock.write(*args))
        except OSError as exc:
            raise self._error(exc)

    def recv(self, *args):
        try:
            return self._sock.recv(*args)
        except OSError as exc:
            raise self._error(exc)

    def send(self, *args):
        try:
            return self._sock.send(*args)
        except OSError as exc:
            raise self._error(exc)

    def ioctl(self, request, arg):
        # TLS (ssl.wrap_socket) polls and closes its stream through here
        if request == _GET_FILENO:
            return self._sock.fileno()
        if request == _POLL:
            poller = select.poll()
            poller.register(self._sock, arg)
            ready = poller.poll(0)
            return ready[0][1] if ready else 0
        if request == _CLOSE:
            self._sock.close()
            return 0
        return -1

    def close(self):
        self._sock.close()

    def setsockopt(self, level, name, value):
        # lwIP's IPPROTO_IP / IP_ADD_MEMBERSHIP (0, 3; Linux's 3 is IP_HDRINCL):
        # checked as lwIP checks it, never joined: no test may reach a real
        # multicast group (directed probes reach the board instead)
        if level == _LWIP_IPPROTO_IP and name == _LWIP_IP_ADD_MEMBERSHIP:
            if not isinstance(value, (bytes, bytearray)) or len(value) != 8 or \
                    not 224 <= value[0] <= 239:
                raise OSError(22)       # EINVAL
            print('sim: multicast group %d.%d.%d.%d joined (in name only: not on this machine)'
                  % tuple(value[:4]))
            return
        try:
            return self._sock.setsockopt(level, name, value)
        except OSError as exc:
            raise self._error(exc)

    def __getattr__(self, name):
        attr = getattr(self._sock, name)
        return self._translating(attr) if callable(attr) else attr

    def _translating(self, method):
        def call(*args):
            try:
                return method(*args)
            except OSError as exc:
                raise self._error(exc)
        return call


def _peer(addr):
    """accept()'s address as the esp32 port gives it, ('a.b.c.d', port);
    the unix port gives the raw sockaddr_in."""
    if isinstance(addr, (bytes, bytearray)) and len(addr) >= 8 and addr[0] == 2:
        return ('%d.%d.%d.%d' % tuple(addr[4:8]), addr[2] << 8 | addr[3])
    return addr


def socket(*args):
    """A socket with the board's small lwIP buffers (accepted ones inherit
    them), so a peer that stops reading blocks the board as it would there;
    OSError(ENFILE) when the board's sockets are all taken."""
    sock = _claim(usocket.socket(*args))
    sock.setsockopt(usocket.SOL_SOCKET, _SO_SNDBUF, _LWIP_BUFFER)
    sock.setsockopt(usocket.SOL_SOCKET, _SO_RCVBUF, _LWIP_BUFFER)
    return _Socket(sock)

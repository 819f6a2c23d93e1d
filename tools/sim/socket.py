# Simulator only, never goes onto a board: the board's network as seen from
# this PC. A server the board opens on any port listens on 127.0.0.1:SIM_PORT
# with lwIP-sized socket buffers and lwIP's socket budget,
# and nothing else is reachable (the simulator has no network beyond loopback).
from usocket import *  # noqa: F401,F403
import io
import usocket
import simctl


def getaddrinfo(host, port, *args):
    if host in ('0.0.0.0', '', '::'):
        return usocket.getaddrinfo('127.0.0.1', int(simctl.env('SIM_PORT', '8080')), *args)
    if host in ('127.0.0.1', 'localhost'):
        return usocket.getaddrinfo(host, port, *args)
    import network              # names: the simulated DNS (pool.ntp.org only)
    addr = network.sim_resolve(host, port)
    return usocket.getaddrinfo(addr[0], addr[1], *args)


_SO_SNDBUF = 7                  # Linux's numbers; MicroPython does not name them
_SO_RCVBUF = 8
_LWIP_BUFFER = 5744             # the board's TCP_SND_BUF and TCP_WND


# lwIP on the ESP32 has CONFIG_LWIP_MAX_SOCKETS (10) sockets in all: the
# listener, every accepted client, NTP, MQTT. SIM_SOCKETS=0 lifts the budget.
_BUDGET = int(simctl.env('SIM_SOCKETS', '10'))
_ENFILE = 23                    # lwIP's alloc_socket() failure, newlib's number
_GET_FILENO = 10                # MP_STREAM_GET_FILENO: select.poll uses the fd
_open = []                      # the native sockets that hold a slot


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
    none left, drops the connection (lwip_accept: netconn_delete, ENFILE)."""

    def __init__(self, sock):
        self._sock = sock

    def accept(self):
        sock, addr = self._sock.accept()
        return _claim(sock), addr

    def ioctl(self, request, arg):
        return self._sock.fileno() if request == _GET_FILENO else -1

    def close(self):
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def socket(*args):
    """A socket with the board's small lwIP buffers (accepted ones inherit
    them), so a peer that stops reading blocks the board as it would there;
    OSError(ENFILE) when the board's sockets are all taken."""
    sock = _claim(usocket.socket(*args))
    sock.setsockopt(usocket.SOL_SOCKET, _SO_SNDBUF, _LWIP_BUFFER)
    sock.setsockopt(usocket.SOL_SOCKET, _SO_RCVBUF, _LWIP_BUFFER)
    return _Socket(sock)

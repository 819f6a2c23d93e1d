# Simulator only, never goes onto a board: the board's network as seen from
# this PC. A server the board opens on any port listens on 127.0.0.1:SIM_PORT
# with lwIP-sized socket buffers,
# and nothing else is reachable (the simulator has no network beyond loopback).
from usocket import *  # noqa: F401,F403
import usocket
import simctl


def getaddrinfo(host, port, *args):
    if host in ('0.0.0.0', '', '::'):
        return usocket.getaddrinfo('127.0.0.1', int(simctl.env('SIM_PORT', '8080')), *args)
    if host in ('127.0.0.1', 'localhost'):
        return usocket.getaddrinfo(host, port, *args)
    raise OSError(-2)           # no DNS on the simulated network


_SO_SNDBUF = 7                  # Linux's numbers; MicroPython does not name them
_SO_RCVBUF = 8
_LWIP_BUFFER = 5744             # the board's TCP_SND_BUF and TCP_WND


def socket(*args):
    """A socket with the board's small lwIP buffers (accepted ones inherit
    them), so a peer that stops reading blocks the board as it would there."""
    sock = usocket.socket(*args)
    sock.setsockopt(usocket.SOL_SOCKET, _SO_SNDBUF, _LWIP_BUFFER)
    sock.setsockopt(usocket.SOL_SOCKET, _SO_RCVBUF, _LWIP_BUFFER)
    return sock

# Simulator only, never goes onto a board: the board's network as seen from
# this PC. A server the board opens on any port listens on 127.0.0.1:SIM_PORT,
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

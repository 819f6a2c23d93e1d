# Simulator only, never goes onto a board: runs the firmware at the
# ESP32-CAM's speed (tools/simulate.py --board-speed sets SIM_BOARD_COST).
#
# Every step of every asyncio task (one coro.send) is timed on the host and
# then held until it has taken as long as the board would take for it:
#   host time of Python bytecode x the bytecode ratio (pystone here / ESP32),
#   host time inside viper functions x the viper ratio,
#   a GC collection as the board's PSRAM collect of the live heap,
#   the stand-ins for the board's C drivers (sockets, card, camera) as they
#   took (the card already spins for a card's time), and
#   the event loop's own work for each step x the bytecode ratio.
# The hold is a sleep: the whole board waits, as a slow CPU makes it wait,
# so the loop's stalls, the frames a second and every reply's latency are
# the board's, measured by the clock as they happen. The simulator runs
# under real-time priority so that this machine's load does not count as
# board time (tools/sim/calibrate.py).
import gc
import os
import sys
import utime

_cost = os.getenv('SIM_BOARD_COST')
enabled = bool(_cost)
if enabled:
    _values = [float(v) for v in _cost.split(',')]
    BYTECODE, VIPER, GC_US_PER_KB, STEP_US = _values[:4]
else:
    BYTECODE = VIPER = 1.0
    GC_US_PER_KB = STEP_US = 0.0

_depth = 0              # inside a timed step (nested sends are part of it)
_exempt_us = 0          # host time in a driver stand-in during this step
_viper_us = 0           # host time in viper code during this step
_inner = 0              # nesting of exempt/viper calls (only the outermost counts)
_gc_host_us = 0         # what one collect takes on the host (measured at install)
_last_alloc = 0         # gc.mem_alloc() at the last look
_machine = None         # its _freq: machine.freq() scales the CPU's time
_MHZ_CALIBRATED = 240
_ticks_us = utime.ticks_us
_diff = utime.ticks_diff
_sleep_us = utime.sleep_us

# what the simulator adds up, for the bench and the console
stats = {'steps': 0, 'board_us': 0, 'host_us': 0, 'gcs': 0, 'gc_board_us': 0,
         'worst_gc_us': 0, 'viper_host_us': 0, 'viper_board_us': 0}


def _off_heap():
    # the camera stand-in keeps its frame buffer on the heap; a board's
    # driver has it in its own PSRAM, which the GC never scans
    cam = sys.modules.get('camera')
    buf = getattr(cam, '_frame_buffer', None) if cam else None
    return len(buf) if buf else 0


def _collected(step_us):
    """Board time of a collection during this step, or 0: a step that took
    at least half a host collect and after which less is allocated than at
    the last look held one."""
    global _last_alloc
    if step_us < _gc_host_us // 2:
        return 0
    alloc = gc.mem_alloc()
    dropped = alloc < _last_alloc - 16384
    _last_alloc = alloc
    if not dropped:
        return 0
    live_kb = max(0, alloc - _off_heap()) // 1024
    board = int(live_kb * GC_US_PER_KB)
    stats['gcs'] += 1
    stats['gc_board_us'] += board
    if board > stats['worst_gc_us']:
        stats['worst_gc_us'] = board
    return board


def _settle(start):
    """Hold the board until this step has taken its board time."""
    global _exempt_us, _viper_us
    host = _diff(_ticks_us(), start)
    gc_board = _collected(host)
    python = host - _exempt_us - _viper_us
    if gc_board:
        python -= _gc_host_us
    clock = _MHZ_CALIBRATED * 1000000 / _machine._freq     # the ratios are for 240 MHz
    board = ((max(0, python) + STEP_US) * BYTECODE + _viper_us * VIPER) * clock \
        + _exempt_us + gc_board
    stats['steps'] += 1
    stats['host_us'] += host
    stats['board_us'] += int(board)
    stats['viper_host_us'] += _viper_us
    stats['viper_board_us'] += int(_viper_us * VIPER)
    _exempt_us = _viper_us = 0
    wait = int(board) - _diff(_ticks_us(), start)
    if wait > 0:
        _sleep_us(wait)


def _timed(call, arg):
    global _depth
    if _depth:
        return call(arg)
    _depth = 1
    start = _ticks_us()
    try:
        return call(arg)
    finally:
        _depth = 0
        _settle(start)


class _Step:
    """A task's coroutine as asyncio sees it: each send/throw is one step."""

    def __init__(self, coro):
        self.coro = coro

    def send(self, value):
        return _timed(self.coro.send, value)

    def throw(self, exc):
        return _timed(self.coro.throw, exc)

    def close(self):
        return self.coro.close()


def _accounted(fn, viper):
    def call(*args, **kwargs):
        global _inner, _exempt_us, _viper_us
        if _inner or not _depth:
            return fn(*args, **kwargs)
        _inner = 1
        start = _ticks_us()
        try:
            return fn(*args, **kwargs)
        finally:
            took = _diff(_ticks_us(), start)
            if viper:
                _viper_us += took
            else:
                _exempt_us += took
            _inner = 0
    return call


def exempt(owner, names):
    """owner.NAME (a class or module) runs as a board's C driver would: its
    host time is not scaled (the card's spin is already a card's time)."""
    for name in names:
        fn = getattr(owner, name, None)
        if fn is not None:
            setattr(owner, name, _accounted(fn, False))


def viper(module, names):
    """module.NAME is viper code: its host time is scaled by the viper ratio."""
    for name in names:
        fn = getattr(module, name, None)
        if fn is not None:
            setattr(module, name, _accounted(fn, True))


def install():
    """Time every task's steps from now on (before boot.py runs)."""
    global _gc_host_us, _last_alloc, _machine
    if not enabled:
        return
    import asyncio
    import asyncio.core as core
    create = core.create_task

    def create_task(coro):
        return create(coro if isinstance(coro, _Step) else _Step(coro))
    core.create_task = create_task
    asyncio.create_task = create_task
    for _ in range(3):
        start = _ticks_us()
        gc.collect()
        took = _diff(_ticks_us(), start)
        _gc_host_us = took if not _gc_host_us else min(_gc_host_us, took)
    _last_alloc = gc.mem_alloc()
    # the stand-ins for the board's C drivers, and the waits inside them
    import machine
    import socket
    import time
    _machine = machine
    exempt(machine.SDCard, ('readblocks', 'writeblocks', 'ioctl'))
    exempt(socket._Socket, ('accept', 'read', 'readinto', 'readline', 'write', 'recv',
                            'send', 'ioctl', 'close', 'settimeout', 'setblocking'))
    exempt(socket, ('getaddrinfo', 'socket'))
    exempt(time, ('sleep', 'sleep_ms', 'sleep_us'))
    import camera
    exempt(camera, ('capture', 'init', 'deinit'))
    if hasattr(camera, 'Camera'):
        exempt(camera.Camera, ('capture', 'init', 'deinit', 'frame_available',
                               'free_buffer', '_set', 'set_frame_size', 'set_quality'))
    # the motion decoder's viper functions
    try:
        from firmware import jpegluma
    except ImportError:
        return
    viper(jpegluma, ('_decode', '_same', '_fill16', '_store_words'))

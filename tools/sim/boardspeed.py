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
import _thread
import gc
import os
import sys
import utime

_cost = os.getenv('SIM_BOARD_COST')
enabled = bool(_cost)
# integers only (a float is a heap object here): ratios in thousandths,
# the event loop's step in ns
if enabled:
    _values = [float(v) for v in _cost.split(',')]
    BYTECODE_M, VIPER_M, GC_US_PER_KB = (int(v * 1000) for v in _values[:3])
    GC_US_PER_KB //= 1000
    STEP_NS = int(_values[3] * 1000)
else:
    BYTECODE_M = VIPER_M = 1000
    GC_US_PER_KB = STEP_NS = 0

_step_start = 0         # host ticks_us when this step began
_inner_start = 0        # ... and when the stand-in or viper call under way began
_inner_viper = False
_depth = 0              # inside a timed step (nested sends are part of it)
_exempt_us = 0          # host time in a driver stand-in during this step
_viper_us = 0           # host time in viper code during this step
_WRAP_NS = 0            # host cost of one wrapper around a call
_calls = 0              # wrapped calls during this step
_inner = 0              # nesting of exempt/viper calls (only the outermost counts)
_gc_host_us = 0         # what one collect takes on the host, the last one timed
_last_alloc = 0         # gc.mem_alloc() at the last look
_machine = None         # its _freq: machine.freq() scales the CPU's time
_MHZ_CALIBRATED = 240
_ticks_us = utime.ticks_us
_diff = utime.ticks_diff
_sleep_us = utime.sleep_us
_get_ident = _thread.get_ident
_main_thread = _get_ident()     # the VM's: the only one whose steps are timed

# what the simulator adds up, for the bench and the console
stats = {'steps': 0, 'board_us': 0, 'host_us': 0, 'gcs': 0, 'gc_board_us': 0,
         'worst_gc_us': 0, 'viper_host_us': 0, 'viper_board_us': 0, 'exempt_us': 0,
         'held_off': 0}


def _off_heap():
    # the camera stand-in keeps its frame buffer on the heap; a board's
    # driver has it in its own PSRAM, which the GC never scans
    cam = sys.modules.get('camera')
    buf = getattr(cam, '_frame_buffer', None) if cam else None
    return len(buf) if buf else 0


_step_gc_board = 0      # a collection seen during this step: the board's time for it
_step_sim_us = 0        # host time of this step that is not the board's: that
                        # collection as this PC took it, and the looks for one
_step_looked_us = 0     # host time into this step at the last look
_heap_total = 0         # the heap's size (at install)
_alloc_collected = 0    # gc.mem_alloc() right after the last collect seen
# The board's collect happens inside a step, at an allocation that finds no
# room; this PC's time for it can only be estimated there (a collect that
# sweeps garbage takes this PC 2-3x one more of the same heap, and the rest
# would be charged as bytecode). So the simulator collects between steps,
# where its host time is no step's, once 40 % of the heap left free by the
# last collect is used: in the unix port's fixed heap, fragmentation made
# the allocating step collect with 56-61 % of it used (busy VGA board), and
# with 25 % when many small holes are left. More collects than the board's
# (its heap grows into PSRAM); the check runs at a look (every 16 steps at
# least), so a burst of allocation can still collect inside a step.
_AHEAD_PERCENT = 40


def _timed_collect():
    """gc.collect() now, its host time kept as what one takes here (it grows
    with the live heap: 0.04 ms at boot, ~2 ms at 1.2 MB); returns it."""
    global _gc_host_us, _last_alloc, _alloc_collected
    start = _ticks_us()
    gc.collect()
    _gc_host_us = _diff(_ticks_us(), start)
    _last_alloc = _alloc_collected = gc.mem_alloc()
    return _gc_host_us


def _charged_collect(live):
    """The board's time for a collect of `live` bytes, counted and printed."""
    live_kb = max(0, live - _off_heap()) // 1024
    board = live_kb * GC_US_PER_KB
    stats['gcs'] += 1
    stats['gc_board_us'] += board
    if board > stats['worst_gc_us']:
        stats['worst_gc_us'] = board
    print('board speed: GC %.1f ms (%d KB live)' % (board / 1000, live_kb))
    return board


def _look_for_collect(host, due=False):
    """Note a collection held during this step, `host` us into it: less is
    allocated than at the last look (by 16 KB: the runtime frees some
    buffers itself; a collect that frees less, such as the status command's
    own, goes unseen and counts as bytecode). gc.mem_alloc() reads the
    whole allocation table (~0.3 ms of a 2 MB heap here), so it looks once
    per half a host collect of the step's time, not at every clock reading,
    unless `due`. One collect per step is seen. Returns what is allocated,
    or None without a look."""
    global _last_alloc, _step_gc_board, _step_sim_us, _step_looked_us, _inner_start
    if _step_gc_board or not due and host - _step_looked_us < _gc_host_us // 2:
        return None
    start = _ticks_us()
    alloc = gc.mem_alloc()
    dropped = alloc < _last_alloc - 16384
    _last_alloc = alloc
    if dropped:
        # what that collect took here: one more of the same heap says, so
        # that it is not charged again as bytecode (an underestimate, see
        # above; and one that began inside a stand-in is in its time already)
        _step_sim_us += _timed_collect()
        _step_gc_board = _charged_collect(alloc)
    now = _ticks_us()
    spent = _diff(now, start)
    _step_sim_us += spent       # the look itself
    _step_looked_us = _diff(now, _step_start)
    if _inner:                  # looked from inside a stand-in: not its time either
        _inner_start = utime.ticks_add(_inner_start, spent)
    return _last_alloc


# The longest a step's Python can have run on this PC's CPU: the firmware's
# longest steps take ~2.5 ms here. A step that took longer was held off the
# CPU (the host's disk, a page fault, a busy machine), which scaled by the
# bytecode ratio would freeze the board for a minute per second held.
_STEP_CPU_MAX_US = 20000
_held_off_ms = [None]   # when the last such step was reported


def _cpu_bound(python):
    if python <= _STEP_CPU_MAX_US:
        return python
    stats['held_off'] += 1
    now = utime.ticks_ms()
    last = _held_off_ms[0]
    if last is None or utime.ticks_diff(now, last) > 10000:
        _held_off_ms[0] = now
        print('board speed: a step took %d ms of this PC, longer than any of the firmware\'s '
              'CPU: the PC held it off; counted as %d ms (%d such steps)'
              % (python // 1000, _STEP_CPU_MAX_US // 1000, stats['held_off']))
    return _STEP_CPU_MAX_US


_LOOK_EVERY = 16        # steps: short ones allocate too
_unlooked = 0           # steps since the last look


def _settle(start, name):
    """Hold the board until this step has taken its board time."""
    global _exempt_us, _viper_us, _calls, _step_gc_board, _step_sim_us, _step_looked_us, \
        _unlooked
    _unlooked += 1
    alloc = _look_for_collect(_diff(_ticks_us(), start), _unlooked >= _LOOK_EVERY)
    host = _diff(_ticks_us(), start)
    gc_board = _step_gc_board
    if alloc is not None:
        _unlooked = 0
        if not gc_board and (alloc - _alloc_collected) * 100 \
                > (_heap_total - _alloc_collected) * _AHEAD_PERCENT:
            _timed_collect()    # the board's allocations would soon: between steps
            gc_board = _charged_collect(_last_alloc)
    exempt = _exempt_us + _calls * _WRAP_NS // 1000
    python = _cpu_bound(host - exempt - _viper_us - _step_sim_us)
    cpu = (max(0, python) * 1000 + STEP_NS) * BYTECODE_M // 1000000 \
        + _cpu_bound(_viper_us) * VIPER_M // 1000
    # the ratios are for 240 MHz; machine.freq() sets the clock
    board = cpu * _MHZ_CALIBRATED // (_machine._freq // 1000000) + exempt + gc_board
    stats['steps'] += 1
    stats['host_us'] += host
    stats['board_us'] += board
    stats['viper_host_us'] += _viper_us
    stats['viper_board_us'] += _viper_us * VIPER_M // 1000
    stats['exempt_us'] += exempt
    if _PROFILE:
        _account(name, host, board, exempt, _viper_us, gc_board)
        if _TRACE:      # each step: the ones between two of the monitor's wakes made its stall
            print('board speed step: %d %s %d %d' % (start, name, board, gc_board))
    _exempt_us = _viper_us = _calls = 0
    _step_gc_board = _step_sim_us = _step_looked_us = 0
    wait = board - _diff(_ticks_us(), start)
    if wait > 0:
        _sleep_us(wait)


def debt_us():
    """How far the board's clock is ahead of the host's inside this step:
    the board time it has cost so far, less the host time it took. The sim's
    ticks add it, so the firmware's own clock readings are board time
    within a step too (its sleep at the end pays the debt)."""
    if not _depth:
        return 0
    now = _ticks_us()
    if _look_for_collect(_diff(now, _step_start)) is not None:   # a read after a collect is late by it
        now = _ticks_us()
    host = _diff(now, _step_start)
    exempt = _exempt_us + _calls * _WRAP_NS // 1000
    viper_us = _viper_us
    if _inner:      # inside a stand-in or viper call: its time so far too
        if _inner_viper:
            viper_us += _diff(now, _inner_start)
        else:
            exempt += _diff(now, _inner_start)
    python = min(max(0, host - exempt - viper_us - _step_sim_us), _STEP_CPU_MAX_US)
    cpu = (python * 1000 + STEP_NS) * BYTECODE_M // 1000000 \
        + min(viper_us, _STEP_CPU_MAX_US) * VIPER_M // 1000
    return max(0, cpu * _MHZ_CALIBRATED // (_machine._freq // 1000000) + exempt
               + _step_gc_board - host)


def _timed(call, arg, name):
    global _depth, _step_start
    if _depth:
        return call(arg)
    _depth = 1
    if _PROFILE:
        _alloc_at[0] = gc.mem_alloc()
    start = _step_start = _ticks_us()
    try:
        return call(arg)
    finally:
        _depth = 0
        _settle(start, name)


_PROFILE = os.getenv('SIM_BOARD_PROFILE') == '1'
_TRACE = os.getenv('SIM_BOARD_TRACE') == '1'     # with the profile: every step
_alloc_at = [0]         # gc.mem_alloc() when the step began (profiling only)
_profile = {}           # coroutine name: [steps, host us, board us]
_profile_ms = [0]


def _account(name, host, board, exempt, viper_us, gc_us):
    entry = _profile.get(name)
    if entry is None:
        entry = _profile[name] = [0, 0, 0, 0, 0, 0, 0, 0, '']
    if board > entry[6]:
        # what the longest step was made of: host us, drivers, viper, GC (board)
        entry[8] = ' (host %d, drivers %d, viper %d, GC %d)' % (host, exempt, viper_us, gc_us)
        entry[6] = board
    grown = gc.mem_alloc() - _alloc_at[0]
    if grown > 0 and not gc_us:
        entry[7] += grown
    entry[0] += 1
    entry[1] += host
    entry[2] += board
    entry[3] += exempt
    entry[4] += viper_us
    entry[5] += gc_us
    now = utime.ticks_ms()
    if utime.ticks_diff(now, _profile_ms[0]) > 5000:
        _profile_ms[0] = now
        for key, (steps, host_us, board_us, ex, vi, gcs, worst, alloc, made) in sorted(
                _profile.items(), key=lambda kv: -kv[1][2]):
            print('board speed profile: %-22s %5d steps, host %7d us (drivers %7d, viper %6d);'
                  ' board %8d us (GC %7d), longest step %6d us%s, allocated %d KB'
                  % (key, steps, host_us, ex, vi, board_us, gcs, worst, made, alloc // 1024))
        _profile.clear()


class _Step:
    """A task's coroutine as asyncio sees it: each send/throw is one step."""

    def __init__(self, coro):
        self.coro = coro
        self.name = str(coro).split("'")[1] if _PROFILE and "'" in str(coro) else '?'

    def send(self, value):
        return _timed(self.coro.send, value, self.name)

    def throw(self, exc):
        return _timed(self.coro.throw, exc, self.name)

    def close(self):
        return self.coro.close()


def _accounted(fn, viper):
    # a stand-in's (or viper function's) host time, counted apart from the
    # bytecode around it; only the outermost call counts
    def call(*args, **kwargs):
        global _inner, _exempt_us, _viper_us, _calls, _inner_start, _inner_viper
        # only the VM's thread runs steps: the watchdog's (hardware on a board),
        # entering its endless stand-in mid-step, once froze the board for good
        if _inner or not _depth or _get_ident() != _main_thread:
            return fn(*args, **kwargs)
        _inner = 1
        _inner_viper = viper
        _calls += 1
        _inner_start = _ticks_us()
        try:
            return fn(*args, **kwargs)
        finally:
            took = _diff(_ticks_us(), _inner_start)     # a look for a collect moved it on
            if viper:
                _viper_us += took
            else:
                _exempt_us += took
            _inner = 0
    return call


def _wrap_cost():
    """What a wrapped call costs the host beyond the call it wraps, measured
    here: it is the simulator's, never the board's."""
    global _depth, _exempt_us, _WRAP_NS, _calls
    def noop(*args, **kwargs):
        pass
    wrapped = _accounted(noop, False)
    best = 1 << 30
    _depth = 1
    for _ in range(5):
        _exempt_us = 0
        start = _ticks_us()
        for _ in range(200):
            noop(1)
        direct = _diff(_ticks_us(), start)
        start = _ticks_us()
        for _ in range(200):
            wrapped(1)
        best = min(best, _diff(_ticks_us(), start) - direct - _exempt_us)
    _depth = 0
    _exempt_us = _calls = 0
    _WRAP_NS = max(0, best * 1000 // 200)


_STAND_INS = ('time', 'simctl', 'machine', 'network', 'socket', 'camera', 'ntptime')


_wrapped = {}           # id: wrapper (a function is wrapped once)


def exempt_module(module):
    """Every function of a simulator stand-in module, and every method of
    its classes, runs as C: not scaled."""
    for name in dir(module):
        if name.startswith('__'):
            continue
        value = getattr(module, name)
        if isinstance(value, type):
            try:
                exempt(value, [n for n in dir(value) if not n.startswith('__')
                               and _is_function(getattr(value, n))])
            except (AttributeError, TypeError):
                pass            # a built-in type: C already
        elif _is_function(value):
            exempt(module, (name,))


def _is_function(value):
    return type(value) in (type(_is_function), type(len), type(_accounted(len, False)))


def exempt(owner, names):
    """owner.NAME (a class or module) runs as a board's C driver would: its
    host time is not scaled (the card's spin is already a card's time)."""
    for name in names:
        fn = getattr(owner, name, None)
        if fn is not None and id(fn) not in _wrapped:
            call = _accounted(fn, False)
            _wrapped[id(call)] = call
            setattr(owner, name, call)


def compiled(module, names):
    """module.NAME is compiled code (viper, or a call that is all C such as
    gc.mem_free()): its host time is scaled by the viper ratio. Modules that
    imported it by name get the wrapped one too."""
    for name in names:
        fn = getattr(module, name, None)
        if fn is not None:
            call = _accounted(fn, True)
            for other in list(sys.modules.values()):
                if getattr(other, name, None) is fn:
                    setattr(other, name, call)


# firmware functions that are compiled code (every viper/native function of
# the sources, found by tools/simulate.py), wrapped once their module is
# imported (never imported here: boot.py may pick an OTA slot's copy)
_pending = {'firmware.state': ('free_heap',)}
for _entry in (os.getenv('SIM_BOARD_COMPILED') or '').split(';'):
    if _entry:
        _module, _names = _entry.split(':')
        _pending[_module] = tuple(_names.split('+'))


def _wrap_imported():
    for name in list(_pending):
        module = sys.modules.get(name)
        if module is not None:
            compiled(module, _pending.pop(name))


def install():
    """Time every task's steps from now on (before boot.py runs)."""
    global _gc_host_us, _last_alloc, _machine, _heap_total, _alloc_collected
    if not enabled:
        return
    import asyncio
    import asyncio.core as core
    create = core.create_task

    def create_task(coro):
        if _pending:
            _wrap_imported()
        return create(coro if isinstance(coro, _Step) else _Step(coro))
    core.create_task = create_task
    asyncio.create_task = create_task
    for _ in range(3):
        start = _ticks_us()
        gc.collect()
        took = _diff(_ticks_us(), start)
        _gc_host_us = took if not _gc_host_us else min(_gc_host_us, took)
    _last_alloc = _alloc_collected = gc.mem_alloc()
    _heap_total = _last_alloc + gc.mem_free()
    _wrap_cost()
    # the stand-ins for the board's C modules and drivers (and the waits
    # inside them) run as the C they stand for: not scaled
    import time
    for name in _STAND_INS:
        __import__(name)
        exempt_module(sys.modules[name])
    _machine = sys.modules['machine']
    core.ticks = time._loop_ms          # the loop's clock: C on the board
    time.sim_board_debt_us = debt_us
    core.ticks_diff = time._loop_diff

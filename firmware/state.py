"""The shared state dict and change notification.

Every change goes through update(), which bumps `version` and wakes every
listener at once; listeners read the newest state, so nothing queues up.
"""
import asyncio
import gc
from firmware import ticks

_RING = 16

state = {
    'trigger_count': 0,
    'snapshot_count': 0,
    'last_snapshot': None,
    'sd_free': None,
    'camera': 'starting',
    'motion': False,            # inside a motion episode (picture change)
    'motion_zones': [],         # the names of the zones with motion now
    'motion_error': None,       # why the last frame could not be analysed
    'last_motion': None,        # the last trigger: count, cause, box, area, frame
    'clients': 0,
    'clock_set': False,
    'settings': {},
    'mqtt': 'off',              # 'connecting', 'connected' or 'error: …' when configured
    'config_problems': [],      # what config.json got wrong: unknown keys, bad values
}
gauges = {}    # name -> function: read live by status(), never pushed
on_reset = []  # functions called when the counters are reset
recent_events = []   # (id, name, data), the last _RING of them
last_event_id = 0
boot_id = None       # event ids are "BOOT-N": an id from before a restart is told apart
version = 0   # bumped on every change
beat = 0      # bumped by the heartbeat ticker
_wake = asyncio.Event()
_HEAP_EVERY_MS = 1000
_heap_read_ms = None
_heap_free = 0


def _pulse():
    # set() schedules every waiter; clear() at once makes this a one-shot pulse
    _wake.set()
    _wake.clear()


def update(**changes):
    """Apply changes; wake the listeners only if something really changed."""
    global version
    changed = False
    for key, value in changes.items():
        if state.get(key) != value:
            state[key] = value
            changed = True
    if changed:
        version += 1
        _pulse()
    return changed


def add(key, delta):
    """Add delta to a counter and notify."""
    update(**{key: state[key] + delta})


def free_heap(fresh=False):
    """gc.mem_free(), read at most once a second unless `fresh`: it walks the
    whole heap's allocation table, which would slow every status push."""
    global _heap_read_ms, _heap_free
    now = ticks.now_ms()    # no status for days leaves an old stamp
    if fresh or _heap_read_ms is None or now - _heap_read_ms >= _HEAP_EVERY_MS:
        _heap_free = gc.mem_free() + _heap_growth()
        _heap_read_ms = now
    return _heap_free


def _heap_growth():
    # since MicroPython 1.21 the esp32 port's heap starts small and grows in
    # PSRAM on demand: what it can still add is free heap too, so free_heap
    # means the same on the board as on the simulator's fixed-size heap
    try:
        import esp32
    except ImportError:
        return 0
    try:
        return max(region[2] for region in esp32.idf_heap_info(esp32.HEAP_DATA))
    except Exception:
        return 0


def status(fresh=False):
    """The status object of the SSE stream and the `status` command."""
    out = dict(state)
    out['uptime_s'] = ticks.now_ms() // 1000
    out['free_heap'] = free_heap(fresh)
    for name, read in gauges.items():
        out[name] = read()
    return out


async def wait():
    """Return after the next change or heartbeat."""
    await _wake.wait()


async def heartbeat(interval_s):
    """Wake every listener every interval_s (config limits.heartbeat_s) so
    dead peers are found. It also reads ticks.now_ms(), which must be read
    more often than time.ticks_ms() wraps."""
    global beat
    while True:
        await asyncio.sleep(interval_s)
        ticks.now_ms()
        beat += 1
        _pulse()


def snapshot_saved(path, kind):
    """Count a snapshot that reached the card, and tell the listeners."""
    update(snapshot_count=state['snapshot_count'] + 1, last_snapshot=path)
    emit('snapshot', {'path': path, 'kind': kind})


def event_id(number):
    """The SSE id of event `number` of this boot."""
    global boot_id
    if boot_id is None:
        import binascii
        import os
        boot_id = binascii.hexlify(os.urandom(3)).decode()
    return '%s-%d' % (boot_id, number)


def parse_event_id(text):
    """The event number of a Last-Event-ID of this boot; 0 for one from an
    earlier boot (replay all we have), None for none or garbage."""
    if not text:
        return None
    prefix, _, number = text.rpartition('-')
    if prefix != event_id(0).rpartition('-')[0]:
        return 0
    try:
        return int(number)
    except ValueError:
        return None


def emit(name, data):
    """Record a notable event (snapshot, motion, deleted) in the ring that
    reconnecting listeners replay from their Last-Event-ID."""
    global last_event_id
    last_event_id += 1
    if len(recent_events) >= _RING:
        recent_events.pop(0)
    recent_events.append((last_event_id, name, data))
    _pulse()


def events_after(event_id):
    """The recorded events newer than event_id, oldest first."""
    return [e for e in recent_events if e[0] > event_id]

"""Milliseconds since boot that never wrap, for stamps kept a long time.

time.ticks_ms() is 30-bit on the ESP32: it wraps every 2^30 ms (12.4 days)
and a ticks_diff is only right within +-6.2 days, so a tick stamp that may
be kept longer (a lockout, a cooldown, a token bucket, a keepalive) would
one day be misread. now_ms() adds up the ticks between its readings instead,
and state.heartbeat reads it every few seconds, so no gap between readings
ever comes near the wrap. Its stamps are plain ints: compare them with `-`.
After 12 days the count outgrows a small int (a few bytes per reading then).
Tick stamps compared only within one short wait stay on time.ticks_ms().
SLICE_MS says how long one piece of work holds the event loop; turn() yields by it.
"""
import asyncio
import time

# how long one piece of work (a decode slice, a run of card writes) holds the
# event loop before it lets the others run: each yield costs a round of them
SLICE_MS = 20


async def turn(held):
    """A turn for the other tasks once the loop was held SLICE_MS since
    `held` (a ticks_ms stamp); returns the stamp to count from next."""
    if time.ticks_diff(time.ticks_ms(), held) < SLICE_MS:
        return held
    await asyncio.sleep_ms(0)
    return time.ticks_ms()

_read = time.ticks_ms()
_elapsed = 0


def now_ms():
    """Milliseconds since boot (since this module was first imported)."""
    global _read, _elapsed
    now = time.ticks_ms()
    _elapsed += time.ticks_diff(now, _read)
    _read = now
    return _elapsed

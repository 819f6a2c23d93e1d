"""Diagnostics, off by default (config "loop_monitor"): the longest
event-loop stall and the lowest free heap since the counters were reset."""
import asyncio
import gc
import time
from micropython import const

_PERIOD_MS = const(2)
_HEAP_EVERY = const(50)     # periods: gc.mem_free() walks the whole heap


class LoopMonitor:
    def __init__(self):
        self.worst_stall_ms = 0
        self.lowest_free = None

    async def run(self):
        """Sleep a short period, over and over; lateness is a stall."""
        periods = 0
        while True:
            started = time.ticks_ms()
            await asyncio.sleep_ms(_PERIOD_MS)
            late = time.ticks_diff(time.ticks_ms(), started) - _PERIOD_MS
            if late > self.worst_stall_ms:
                self.worst_stall_ms = late
            periods = (periods + 1) % _HEAP_EVERY
            if periods == 0 or self.lowest_free is None:
                free = gc.mem_free()
                if self.lowest_free is None or free < self.lowest_free:
                    self.lowest_free = free

    def clear(self):
        """Start measuring afresh (the `reset` command does this)."""
        self.worst_stall_ms = 0
        self.lowest_free = None

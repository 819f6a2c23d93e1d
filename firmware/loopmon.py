"""Diagnostics, off by default (config "loop_monitor"): the longest
event-loop stall, the 99th percentile of the stalls, and the lowest free
heap since the counters were reset. On the simulated board at the ESP32's
speed (tools/simulate.py --board-speed) these are board time."""
import asyncio
import time
from array import array
from micropython import const

# a wake costs the ESP32 ~3 ms of Python (board speed): every 2 ms the monitor
# took half an idle board; a stall reads short by up to one period
_PERIOD_MS = const(10)
_HEAP_EVERY_MS = const(1000)    # gc.mem_free() walks the whole heap
_BUCKET_MS = const(5)           # the percentile's resolution
_BUCKETS = const(201)           # 0..1000 ms; the last counts everything longer


class LoopMonitor:
    """Sleeps a short period over and over; lateness is a stall.
    free_heap() reads the free heap (firmware.state's, fresh)."""

    def __init__(self, free_heap):
        self.free_heap = free_heap
        self.counts = array('I', bytes(4 * _BUCKETS))   # stalls by length: bounded
        self.clear()

    async def run(self):
        """Measure until the board stops."""
        heap_ms = time.ticks_ms()
        while True:
            started = time.ticks_ms()
            await asyncio.sleep_ms(_PERIOD_MS)
            now = time.ticks_ms()
            late = max(0, time.ticks_diff(now, started) - _PERIOD_MS)
            if late > self.worst_stall_ms:
                self.worst_stall_ms = late
            self.counts[min(_BUCKETS - 1, late // _BUCKET_MS)] += 1
            if self.lowest_free is None or time.ticks_diff(now, heap_ms) >= _HEAP_EVERY_MS:
                heap_ms = now       # a fresh stamp each time: it never grows old
                free = self.free_heap()
                if self.lowest_free is None or free < self.lowest_free:
                    self.lowest_free = free

    def stall_p99_ms(self):
        """99 % of the periods were late by at most this (ms, a bucket's top)."""
        total = sum(self.counts)
        seen = 0
        for i in range(_BUCKETS):
            seen += self.counts[i]
            if seen * 100 >= total * 99:
                return (i + 1) * _BUCKET_MS
        return 0

    def clear(self):
        """Start measuring afresh (the `reset` command does this)."""
        self.worst_stall_ms = 0
        self.lowest_free = None
        for i in range(_BUCKETS):
            self.counts[i] = 0

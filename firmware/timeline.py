"""The last 24 hours of motion: triggers per 15 minutes, in memory.

96 counters, fed by the `motion` events as they happen, and at start-up
from the motion snapshots among the newest on the card (their names carry
the time). Nothing is read from the card per request: /timeline is a copy
of the counters. Times are the board's local time, as snapshot names are.
"""
import asyncio
import time
from micropython import const

from firmware import clock

STEP_S = const(900)             # one bar: 15 minutes
BARS = const(96)                # 24 hours


def stamp_seconds(name):
    """The local time of a snapshot or clip name (kind-YYYYMMDD-HHMMSS-N.ext)
    in seconds of the board's epoch, or None."""
    parts = name.split('-')
    if len(parts) < 3 or len(parts[1]) != 8 or len(parts[2]) != 6:
        return None
    day, hms = parts[1], parts[2]
    if not (day.isdigit() and hms.isdigit()):
        return None
    return time.mktime((int(day[:4]), int(day[4:6]), int(day[6:]),
                        int(hms[:2]), int(hms[2:4]), int(hms[4:]), 0, 0))


class MotionTimeline:
    """Triggers per STEP_S over the last BARS steps; owns the task that
    follows the motion events."""

    def __init__(self, state, store, tz_offset_s):
        self.state = state
        self.store = store
        self.tz_offset_s = tz_offset_s
        self.counts = [0] * BARS
        self.last = None            # the bar number of counts[-1]

    def now_s(self):
        """The board's local time in seconds (as snapshot names show it)."""
        return int(time.time()) + self.tz_offset_s

    def add(self, local_s):
        """Count one trigger at local_s; older than 24 h: ignored."""
        bar = int(local_s) // STEP_S
        self._roll(max(bar, self.last if self.last is not None else bar))
        back = self.last - bar
        if 0 <= back < BARS:
            self.counts[BARS - 1 - back] += 1

    def _roll(self, bar):
        # move the window so it ends at `bar`: bars that left it are dropped
        if self.last is None or bar - self.last >= BARS:
            self.counts = [0] * BARS
        elif bar > self.last:
            shift = bar - self.last
            self.counts = self.counts[shift:] + [0] * shift
        else:
            return
        self.last = bar

    def view(self):
        """/timeline: the counts, oldest first, and when the first bar starts."""
        if clock.is_set():
            self._roll(self.now_s() // STEP_S)
        first = ((self.last if self.last is not None else self.now_s() // STEP_S)
                 - BARS + 1) * STEP_S
        t = time.localtime(first)
        return {'start': '%04d%02d%02d-%02d%02d' % t[:5], 'step_s': STEP_S,
                'counts': list(self.counts), 'clock_set': clock.is_set()}

    async def run(self):
        """Count the triggers; seed from the motion snapshots listed once
        the clock is set (before that, names carry no real time)."""
        seen = self.state.last_event_id
        seeded = False
        while True:
            if not seeded and clock.is_set():
                seeded = True
                await self._seed(self.now_s())
            for number, name, _ in self.state.events_after(seen):
                if name == 'motion' and clock.is_set():
                    self.add(self.now_s())
            seen = self.state.last_event_id
            await self.state.wait()

    async def _seed(self, before_s):
        # the triggers before now that saved a snapshot (later ones are events)
        for name, _ in await self.store.newest(100):
            at = stamp_seconds(name) if name.startswith('motion-') else None
            if at is not None and at < before_s:
                self.add(at)

    def start(self):
        asyncio.create_task(self.run())

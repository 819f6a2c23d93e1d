"""Motion triggers: frame change and an optional PIR pin -> one trigger path
(counter, cooldown, motion snapshot).

The frame detector compares each JPEG's size with a running baseline. A
moving textured object changes how much the encoder has to say; a still
scene only jitters, and light changes slowly. So a frame counts as changed
when its size is off the baseline by more than both
  - the sensitivity threshold: 30 % at 0, 16 % at 50, 2 % at 100, and
  - four times the scene's own jitter (mean absolute deviation),
and a trigger needs two changed frames in a row. The baseline follows still
frames at 1/8 per frame (slow light changes) and changed frames at 1/32;
the jitter is learnt only from frames within twice the current estimate.
"""
import asyncio
import time
from micropython import const

_STILL_WEIGHT = const(8)
_MOVING_WEIGHT = const(32)
_NOISE_FACTOR = const(4)
_CONFIRM_FRAMES = const(2)


def threshold(sensitivity):
    """Relative size change that counts as motion: 0.30 at 0 .. 0.02 at 100."""
    return (2 + (100 - sensitivity) * 0.28) / 100


class Motion:
    """Feeds frames to the detector; a trigger bumps the counter and saves."""

    def __init__(self, state, snapshots, settings):
        self.state = state
        self.snapshots = snapshots
        self.sensitivity = settings['sensitivity']
        self.cooldown_ms = settings['cooldown_s'] * 1000
        self.baseline = None
        self.noise = 0
        self.changed_frames = 0
        self.last_trigger_ms = None

    def apply(self, name, value):
        """The settings table's applier for motion settings."""
        self.sensitivity = value

    def frame(self, jpeg):
        """Look at one camera frame; called by the capture task."""
        size = len(jpeg)
        if self.baseline is None:
            self.baseline = size
            self.noise = size / 100
            return
        deviation = abs(size - self.baseline)
        limit = max(threshold(self.sensitivity) * self.baseline, _NOISE_FACTOR * self.noise)
        if deviation > limit:
            self.changed_frames += 1
            self.baseline += (size - self.baseline) / _MOVING_WEIGHT
            if self.changed_frames >= _CONFIRM_FRAMES:
                self.trigger('frame')
        else:
            self.changed_frames = 0
            self.baseline += (size - self.baseline) / _STILL_WEIGHT
            if deviation <= 2 * self.noise:
                # only plain jitter teaches the noise level, not the frames
                # at the edges of a movement
                self.noise += (deviation - self.noise) / _STILL_WEIGHT

    def trigger(self, cause='frame'):
        """One trigger from any source; ignored within the cooldown. The
        snapshot is the camera's latest frame."""
        now = time.ticks_ms()
        if (self.last_trigger_ms is not None and
                time.ticks_diff(now, self.last_trigger_ms) < self.cooldown_ms):
            return
        self.last_trigger_ms = now
        self.state.add('trigger_count', 1)
        self.state.emit('motion', {'count': self.state.state['trigger_count'], 'cause': cause})
        self.snapshots.take_soon('motion', cause)

    def start_pir(self, pin_number, debounce_ms):
        """Trigger on rising edges of a PIR sensor's output pin, debounced."""
        import machine
        flag = asyncio.ThreadSafeFlag()
        pin = machine.Pin(pin_number, machine.Pin.IN)
        pin.irq(trigger=machine.Pin.IRQ_RISING, handler=lambda p: flag.set())
        asyncio.create_task(self._pir(flag, debounce_ms))
        return pin

    async def _pir(self, flag, debounce_ms):
        last = None
        while True:
            await flag.wait()
            now = time.ticks_ms()
            if last is None or time.ticks_diff(now, last) >= debounce_ms:
                last = now
                self.trigger('pir')

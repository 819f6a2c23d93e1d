"""Motion triggers: a frame-change detector -> counter, cooldown, snapshot.

The detector compares each JPEG's size with a running baseline: a moving
textured object changes how much the encoder has to say, a still scene
only jitters by a percent or two.
"""
import asyncio
import time
from micropython import const

_BASELINE_WEIGHT = const(8)    # baseline follows 1/8 of each new size


def threshold(sensitivity):
    """Relative size change that counts as motion: 30 % at 0 .. 2 % at 100."""
    return (2 + (100 - sensitivity) * 0.28) / 100


class Motion:
    """Feeds frames to the detector; a trigger bumps the counter and saves."""

    def __init__(self, state, store, settings):
        self.state = state
        self.store = store
        self.sensitivity = settings['sensitivity']
        self.cooldown_ms = settings['cooldown_s'] * 1000
        self.baseline = None
        self.last_trigger_ms = None
        self.saving = False

    def frame(self, jpeg):
        """Look at one camera frame; call from the capture task."""
        size = len(jpeg)
        if self.baseline is None:
            self.baseline = size
            return
        change = abs(size - self.baseline) / self.baseline
        self.baseline += (size - self.baseline) / _BASELINE_WEIGHT
        if change > threshold(self.sensitivity):
            self.trigger(jpeg)

    def trigger(self, jpeg, cause='frame'):
        """One trigger from any source; ignored within the cooldown."""
        now = time.ticks_ms()
        if (self.last_trigger_ms is not None and
                time.ticks_diff(now, self.last_trigger_ms) < self.cooldown_ms):
            return
        self.last_trigger_ms = now
        self.state.add('trigger_count', 1)
        self.state.emit('motion', {'count': self.state.state['trigger_count'], 'cause': cause})
        if not self.saving and jpeg is not None:   # one at a time: bounded memory
            self.saving = True
            asyncio.create_task(self._save(jpeg, cause))

    async def _save(self, jpeg, cause):
        try:
            path, _ = await self.store.save('motion', jpeg,
                                            self.state.state['trigger_count'], cause)
            self.state.snapshot_saved(path, 'motion')
        except Exception as exc:
            print('motion: snapshot not saved:', exc)
        finally:
            self.saving = False

"""The one way a snapshot reaches the card: hold the latest frame, save it,
release it, count it and announce it. The `snapshot_now` command, motion
and every later caller (MQTT, recordings) go through take().

Requests from clients (kind 'manual') spend a token of a bucket, so a
flood of snapshot requests cannot fill the card or starve the loop.
"""
import asyncio
from firmware import ticks
from firmware.snapstore import SaveError


class TokenBucket:
    """`burst` tokens, refilled at `per_s` a second."""

    def __init__(self, burst, per_s):
        self.burst = burst
        self.per_s = per_s
        self.tokens = burst
        self.at = None

    def take(self):
        """True if one token was there to take."""
        now = ticks.now_ms()        # the last take may be days ago
        if self.at is not None:
            earned = (now - self.at) * self.per_s / 1000
            self.tokens = min(self.burst, self.tokens + earned)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SnapshotService:
    """Owns the snapshot path from frame to card to state."""

    def __init__(self, camera, store, state, rate):
        self.camera = camera
        self.store = store
        self.state = state
        self.bucket = TokenBucket(rate['burst'], rate['per_s'])
        self.background = False     # a take_soon() save is under way
        store.on_recovered = self._recovered

    async def take(self, kind='manual', cause=None):
        """Save the latest frame as a KIND snapshot; the reply dict of
        `snapshot_now` ({'ok': True, 'saved': path, 'bytes': n} or a reason)."""
        if kind == 'manual' and not self.bucket.take():
            return {'ok': False, 'reason': 'rate limited',
                    'retry_after_s': round(1 / self.bucket.per_s, 1)}
        jpeg, slot = self.camera.hold()
        return await self._save(kind, cause, jpeg, slot)

    def take_soon(self, kind, cause=None, note=None, frame=None):
        """Save a frame in the background, one at a time: `frame` (jpeg, slot)
        held by the caller (released here in any case), or the latest one.
        `note` goes into the JPEG comment. False if there is no frame or a
        save is still under way."""
        jpeg, slot = frame or self.camera.hold()
        if self.background or jpeg is None:
            self.camera.release(slot)
            return False
        self.background = True
        asyncio.create_task(self._background(kind, cause, note, jpeg, slot))
        return True

    async def _background(self, kind, cause, note, jpeg, slot):
        try:
            reply = await self._save(kind, cause, jpeg, slot, note)
            if not reply['ok']:
                print('%s: snapshot not saved: %s' % (kind, reply['reason']))
        except Exception as exc:
            print('%s: snapshot not saved: %r' % (kind, exc))
        finally:
            self.background = False

    def _recovered(self, path, kind):
        # a save reported failed whose file the card kept after all
        print('%s: snapshot found on the card after all: %s' % (kind, path))
        self.state.snapshot_saved(path, kind)

    async def _save(self, kind, cause, jpeg, slot, note=None):
        try:
            if jpeg is None:
                return {'ok': False, 'reason': 'no frame yet'}
            path, size = await self.store.save(
                kind, jpeg, self.state.state['trigger_count'], cause, note)
        except SaveError as exc:
            return {'ok': False, 'reason': exc.args[0]}
        finally:
            self.camera.release(slot)
        self.state.snapshot_saved(path, kind)
        return {'ok': True, 'saved': path, 'bytes': size}

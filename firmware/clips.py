"""Recordings: motion clips with a pre-roll, manual clips, time-lapse.

Every camera frame is copied once into FrameRing, one buffer of
`preroll_bytes` allocated when the card is first seen: the last
`preroll_s` seconds wait there for a trigger, and while a clip records the
writer task drains it into an AVI (firmware/avi.py) in chunks that yield.
The camera task never waits for the card: when the writer falls behind,
new frames are dropped (counted), never queued without bound. A clip runs
while motion lasts plus `tail_s`, or from record_start to record_stop, and
never longer than `max_s`. README.md, "Recordings", is the user's side.
"""
import asyncio
import os
from micropython import const

from firmware import avi, download, ticks
from firmware.cardfiles import file_size, remove_quietly
from firmware.cardlayout import NumberedFolder
from firmware.cardmigrate import migrate, untwin
from firmware.cardnames import keep_newest, seq_of, stamp, valid_name

_MAX_ENTRIES = const(200)   # frames in the ring at most, whatever their size
_RECENT = const(100)
_CHECK_MS = const(1000)     # free space looked at this often while recording
_WAIT_MS = const(500)       # the writer looks round this often without frames
_IDLE_MS = const(100)       # how soon a wanted clip begins
_LAPSE_FRAMES = const(4096)  # frames in one time-lapse clip (16 KB of index)


class FrameRing:
    """Frames (start, length, stamp) in one circular bytearray, oldest
    first. A frame is stored whole, never split: at the end of the buffer
    the next one goes to the start, and the oldest frames in its way go."""

    def __init__(self, size):
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.entries = []
        self.head = 0
        self.locked = False     # entries[0] is being written: keep it

    def push(self, jpeg, stamp):
        """Copy a frame in; False if it was dropped (too big, or only the
        frame being written could make room)."""
        n = len(jpeg)
        if n > len(self.buf) // 2 or not n:
            return False
        start = self.head if self.head + n <= len(self.buf) else 0
        entries = self.entries
        while entries and (len(entries) >= _MAX_ENTRIES or _overlaps(entries, start, n)):
            if self.locked:
                return False
            entries.pop(0)
        self.buf[start:start + n] = jpeg
        entries.append((start, n, stamp))
        self.head = start + n
        return True

    def frame(self, entry):
        return self.view[entry[0]:entry[0] + entry[1]]

    def forget_before(self, stamp):
        while self.entries and self.entries[0][2] < stamp and not self.locked:
            self.entries.pop(0)


def _whole_fps(us_per_frame):
    """The recorded rate rounded to a whole number, at least 1: a float of
    two decimals prints as 9.859999999999999 under the unix port's doubles
    (the AVI header keeps the exact rate)."""
    return max(1, (1000000 + us_per_frame // 2) // us_per_frame)


def _overlaps(entries, start, n):
    end = start + n
    for entry in entries:
        if entry[0] < end and start < entry[0] + entry[1]:
            return True
    return False


class Recorder:
    """Owns the ring, the clips folder, the feed/writer/time-lapse tasks."""

    def __init__(self, camera, store, state, config, fps):
        self.camera = camera
        self.store = store
        self.state = state
        self.config = config
        self.fps = max(1, fps)
        # clips/0042/motion-…-4213.avi: folders of at most 100 (cardlayout.py)
        self.tree = NumberedFolder(store.mount_point + '/' + config['folder'], '.avi')
        self.preroll_ms = config['preroll_s'] * 1000
        self.tail_ms = config['tail_s'] * 1000
        self.max_ms = config['max_s'] * 1000
        self.motion_clips = config['motion']
        self.ring = None
        self.ring_failed = False
        self.clip = None            # the AviWriter being written
        self.kind = None
        self.want = None            # a clip asked for: 'motion' or 'manual'
        self.manual = False         # record_stop ends it, not the end of motion
        self.motion_until = None    # now_ms after which a motion clip ends
        self.stop_now = False       # record_stop: end even while motion lasts
        self.beginning = False      # a clip is being opened (the card may take a while)
        self.ending = False         # the clip takes no more frames: the ring drains, then it closes
        self.dropped = 0            # frames the writer was too slow for
        self.lapse = None
        self.lapse_day = None
        self.ready = False          # the folder is repaired on this card
        self.checked_ms = 0

    def start(self):
        asyncio.create_task(self._feed())
        asyncio.create_task(self._write())
        if self.config['timelapse_s'] > 0:
            asyncio.create_task(self._timelapse())
        self.state.state.setdefault('recording', None)     # the clip being written
        self.state.update(clips_ready=False)

    # --- commands ------------------------------------------------------
    def start_manual(self):
        """record_start: a clip until record_stop (or max_s)."""
        if not self.store.mounted:
            return {'ok': False, 'reason': 'no sd card'}
        if self.ring is None and not self.ring_failed:
            self._make_ring()       # before the first frame after boot reached it
        if self.ring is None:
            return {'ok': False, 'reason': 'recording needs memory for its buffer'}
        self.manual = True
        if self.clip is None and not self.beginning or self.ending or self.stop_now:
            self.want = 'manual'    # after the clip that is ending, a new one
        return {'ok': True, 'recording': True}

    def stop_manual(self):
        """record_stop: end the clip now (a motion clip too)."""
        # a clip still being opened counts: it ends as soon as it is open
        was = self.clip is not None or self.want is not None or self.beginning
        self.manual = False
        self.want = None
        self.stop_now = was
        return {'ok': True, 'recording': False, 'stopped': was}

    # --- frames into the ring --------------------------------------------
    async def _feed(self):
        camera = self.camera
        seen = -1
        while True:
            await camera.wait_frame()
            if camera.frame_count == seen:
                continue
            seen = camera.frame_count
            now = ticks.now_ms()
            self._decide(now)
            if self.ending:
                continue            # what the ring holds is the rest of the clip
            ring = self.ring
            if ring is None:
                if not self.store.mounted or self.ring_failed:
                    continue
                ring = self._make_ring()
                if ring is None:
                    continue
            recording = self.clip is not None or self.want is not None
            if not recording:
                ring.forget_before(now - self.preroll_ms)
                if not self.preroll_ms:
                    continue
            jpeg, slot = camera.hold()
            try:
                if jpeg is not None and not ring.push(jpeg, now) and recording:
                    self.dropped += 1
            finally:
                camera.release(slot)

    def _make_ring(self):
        size = self.config['preroll_bytes']
        if size <= 0:
            self.ring_failed = True
            return None
        try:
            self.ring = FrameRing(size)
        except MemoryError:
            self.ring_failed = True
            print('clips: no memory for a %d-byte frame buffer: recording off' % size)
        return self.ring

    def _decide(self, now):
        # motion starts a clip and keeps it going; nothing here waits
        if self.state.state.get('motion') and self.motion_clips:
            self.motion_until = now + self.tail_ms
            if self.clip is None and self.want is None and not self.beginning \
                    and self.ring is not None and self.ready:
                self.want = 'motion'

    def _should_end(self, now):
        clip = self.clip
        if clip.full() or clip.duration_ms() >= self.max_ms or self.stop_now:
            return True
        if self.manual:
            return False
        return self.motion_until is None or now >= self.motion_until

    # --- the writer --------------------------------------------------------
    async def _write(self):
        while True:
            store = self.store
            if not store.mounted:
                if self.ready:
                    self.ready = False
                    self.state.update(clips_ready=False)
                await self._abandon()
                await asyncio.sleep_ms(_WAIT_MS)
                continue
            if not self.ready:
                await self._repair_all()
                continue
            try:
                if self.clip is None and self.want is not None:
                    await self._begin(self.want)
                    continue
                if self.clip is not None:
                    # a card slower than the camera never empties the ring:
                    # the end is decided first, then the ring drains
                    if not self.ending and self._should_end(ticks.now_ms()):
                        self.ending = True
                    if self.ring.entries:
                        await self._write_one()
                        continue
                    if self.ending:
                        await self._finish()
                        continue
            except OSError as exc:
                print('clips: write failed:', exc)
                await self._abandon(repair=store.free_bytes() is not None)
                continue
            if self.clip is None and self.want is None:
                # idle: a look every _IDLE_MS, not a wait_for task per frame
                # (each costs the board about a millisecond)
                await asyncio.sleep_ms(_IDLE_MS)
                continue
            try:
                await asyncio.wait_for_ms(self.camera.wait_frame(), _WAIT_MS)
            except asyncio.TimeoutError:
                pass

    async def _begin(self, kind):
        self.want = None
        self.stop_now = False       # a record_stop from here on is this clip's
        self.beginning = True
        try:
            if not await self._room():
                print('clips: card too full to record')
                return
            seq = self.store.take_seq()
            name = '%s-%s-%04d.avi' % (kind, stamp(self.store.tz_offset_s), seq)
            folder = self.tree.folder_for(seq)
            await asyncio.sleep_ms(0)
            clip = avi.AviWriter(folder + '/' + name, 1000000 // self.fps,
                                 self.max_ms * 2 // 1000 * self.fps + self.fps)
            await clip.open()
        finally:
            self.beginning = False
        self.clip = clip
        self.kind = kind
        self.ending = False
        self.dropped = 0
        self.checked_ms = ticks.now_ms()
        if kind == 'motion' and self.motion_until is None:
            self.motion_until = ticks.now_ms() + self.tail_ms
        self.state.update(recording=name)

    async def _write_one(self):
        ring = self.ring
        entry = ring.entries[0]
        ring.locked = True
        try:
            await self.clip.add(ring.frame(entry), entry[2])
        finally:
            ring.locked = False
            if ring.entries and ring.entries[0] is entry:
                ring.entries.pop(0)
        now = ticks.now_ms()
        if now - self.checked_ms >= _CHECK_MS:
            self.checked_ms = now
            self.store.on_change(self.store)    # sd_free follows the clip
            if not await self._room():
                print('clips: card too full, clip ended')
                await self._finish()

    async def _finish(self):
        clip = self.clip
        self.clip = None
        self.kind = None
        if not self.manual:
            self.motion_until = None
        if self.want != 'manual':
            self.manual = False     # else record_start came while this one ended
        self.stop_now = False
        self.ending = False
        self.ring.entries = []
        try:
            if not clip.sizes:
                clip.abandon()          # stopped before a frame came: no clip
                remove_quietly(clip.path + '.part')
                return
            try:
                path, size = await clip.close()
            except OSError as exc:
                print('clips: closing failed:', exc)
                self.clip = clip
                await self._abandon(repair=self.store.free_bytes() is not None)
                return
            self._saved(path, size, len(clip.sizes), clip.us_per_frame)
        finally:
            # only now: until its index is written and it is renamed, the
            # clip is still being written (a card pulled now holds a .part)
            self.state.update(recording=None)

    def _saved(self, path, size, frames, us_per_frame):
        self.store.on_change(self.store)        # sd_free in the status
        self.state.emit('clip', {'path': path, 'bytes': size, 'frames': frames,
                                 'fps': _whole_fps(us_per_frame),
                                 'dropped': self.dropped})

    async def _abandon(self, repair=False):
        # the card failed under the clip: what is on it is repaired now if
        # the card still answers, else when it is back
        clip = self.clip
        if clip is None:
            return
        self.clip = None
        self.manual = False
        self.want = None
        self.ending = False
        if self.ring is not None:
            self.ring.entries = []
        self.state.update(recording=None)
        clip.abandon()
        if repair:
            try:
                await avi.repair(clip.path + '.part')
            except OSError:
                pass

    # --- the card ------------------------------------------------------------
    async def _repair_all(self):
        """Finish what a cut left in the clips folders (once per mounted card),
        then move older firmware's flat clips into numbered folders."""
        tree = self.tree
        try:
            names = []      # (folder, name); a cut leaves a couple at most

            def visit(folder, entry):
                if entry[0].endswith('.part') or entry[0].endswith('.fix'):
                    if len(names) < _RECENT:
                        names.append((folder, entry[0]))
            tree.open()
            for _ in untwin(tree):
                await asyncio.sleep_ms(0)
            flat, tree.flat = tree.flat, True       # the top folder's leftovers too
            try:
                await tree.each(False, visit)       # a clip being written goes for a day
            finally:
                tree.flat = flat
            names.sort(key=lambda item: not item[1].endswith('.fix'))
            for folder, name in names:
                path = folder + '/' + name
                if name.endswith('.fix'):
                    final = path[:-4]
                    if file_size(final + '.part') is not None \
                            or file_size(tree.root + '/' + name[:-4]) is not None:
                        os.remove(path)          # cut while copying: start again
                    else:
                        remove_quietly(final)   # cut after the copy: finish it
                        os.rename(path, final)
                    continue
                if file_size(path) is None:
                    continue                    # a .fix step above took it
                fixed = await avi.repair(path)
                print('clips: repaired', fixed or (name + ' (nothing whole, removed)'))
            if tree.flat or tree.migrating:
                await migrate(tree, None, download.busy)
        except OSError as exc:
            print('clips: repair failed:', exc)
            if self.store.free_bytes() is None:
                await asyncio.sleep_ms(_WAIT_MS)
                return
        self.ready = True       # a card we cannot repair still records
        self.state.update(clips_ready=True)

    async def _room(self):
        """Free space above the floor: oldest clips go first, then motion
        snapshots (the store's retention). False if it stays below."""
        floor = self.store.min_free
        free = await self.reclaim(floor)
        if free is not None and free < floor:
            free = await self.store.make_room(0)
        return free is not None and free >= floor

    async def reclaim(self, floor):
        """Delete the oldest clips (never one being read or written) while
        free space is under `floor`; returns the free bytes."""
        free = self.store.free_bytes()
        deleted = []
        while free is not None and free < floor and len(deleted) < _RECENT:
            try:
                oldest = await self._oldest()
            except OSError:
                break               # no clips folder (yet) on this card
            if oldest is None:
                break
            await asyncio.sleep_ms(0)
            try:
                os.remove(oldest)
            except OSError:
                break
            deleted.append(oldest[oldest.rindex('/') + 1:])
            free = self.store.free_bytes()
        if deleted:
            print('clips: low space, deleted', len(deleted), 'clips')
            self.store.on_delete(deleted)
            self.store.on_change(self.store)
        return free

    async def _oldest(self):
        # the path of the oldest finished clip no one reads, or None
        best = []

        def visit(folder, entry):
            name = entry[0]
            if name.endswith('.avi') and not download.busy(folder + '/' + name):
                item = (seq_of(name), folder + '/' + name)
                if not best:
                    best.append(item)
                elif item < best[0]:
                    best[0] = item
        await self.tree.each(False, visit, lambda: bool(best), prune=True)
        return best[0][1] if best else None

    async def newest(self, limit):
        """Up to `limit` (name, bytes) of finished clips, newest first."""
        if not self.store.mounted:
            return []
        best = []

        def visit(folder, entry):
            name = entry[0]
            if name.endswith('.avi'):
                keep_newest(best, (seq_of(name), name, entry[3] if len(entry) > 3 else 0), limit)
        try:
            await self.tree.each(True, visit, lambda: len(best) >= limit)
        except OSError:
            return []
        return [(name, size) for _, name, size in best[::-1]]

    def path_of(self, name):
        """The board path of an existing clip, or None."""
        if not self.store.mounted or not valid_name(name, '.avi'):
            return None
        return self.tree.find(name)

    async def delete(self, name):
        """Delete a clip; True if it existed."""
        path = self.path_of(name)
        if path is None:
            return False
        await asyncio.sleep_ms(0)
        try:
            os.remove(path)
        except OSError:
            return False
        self.store.on_change(self.store)
        return True

    # --- time-lapse ------------------------------------------------------------
    async def _timelapse(self):
        """One frame every timelapse_s into the day's clip; a new clip at
        midnight (local time) and after a restart (the last one repaired)."""
        interval_ms = self.config['timelapse_s'] * 1000
        us_per_frame = 1000000 // max(1, self.config['timelapse_fps'])
        while True:
            await asyncio.sleep_ms(interval_ms)
            if not (self.store.mounted and self.ready):
                self._drop_lapse()
                continue
            day = stamp(self.store.tz_offset_s)[:8]
            try:
                if self.lapse is not None and (day != self.lapse_day or self.lapse.full()):
                    await self._close_lapse()
                # every frame, as a clip's writer every second: a day of
                # frames would otherwise go past the floor unchecked
                if not await self._room():
                    continue
                if self.lapse is None:
                    seq = self.store.take_seq()
                    name = 'timelapse-%s-%04d.avi' % (stamp(self.store.tz_offset_s), seq)
                    lapse = avi.AviWriter(self.tree.folder_for(seq) + '/' + name, us_per_frame,
                                          _LAPSE_FRAMES)
                    lapse.fixed_rate = True         # played faster than taken
                    await lapse.open()
                    self.lapse = lapse
                    self.lapse_day = day
                    print('clips: time-lapse into', name)
                jpeg, slot = self.camera.hold()
                try:
                    if jpeg is not None:
                        await self.lapse.add(jpeg, ticks.now_ms())
                        await self.lapse.sync()     # each frame is on the card at once
                finally:
                    self.camera.release(slot)
            except OSError as exc:
                print('clips: time-lapse write failed:', exc)
                self._drop_lapse()

    async def _close_lapse(self):
        lapse = self.lapse
        self.lapse = None
        path, size = await lapse.close()
        self._saved(path, size, len(lapse.sizes), lapse.us_per_frame)

    def _drop_lapse(self):
        if self.lapse is not None:
            self.lapse.abandon()        # repaired when the card is back
            self.lapse = None

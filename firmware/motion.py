"""Motion triggers: picture change and an optional PIR pin -> one trigger path
(counter, cooldown, motion snapshot, SSE events).

Picture change: the analysis task takes the newest camera frame, decodes its
1/8-scale luminance map (firmware/jpegluma.py) in slices that yield to the
event loop, and feeds it to the detector (firmware/motiondetect.py). Frames
that arrive meanwhile are skipped, never queued. The snapshot of a trigger is
the frame that confirmed it. README.md, "Motion detection", explains the
detector, its knobs and how well it does.
"""
import asyncio
import binascii
import time
from micropython import const
from firmware import jpegluma, ticks, waiting
from firmware.motiondetect import STARTED, Detector
from firmware.motionzones import Zones

_SLICE_MIN = const(16)      # MCUs in a slice, learnt as the board runs
_SLICE_MAX = const(4096)
_WATCHED_REST = const(2)     # streamed, or answering: a pause of twice a frame's analysis
_GIVE_WAY_MS = const(300)    # a frame waits this long at most for answers (a save takes ~0.3 s)
_PIR_HOLD_MS = const(10000)  # motion stays on this long after the last PIR edge


class Motion:
    """Owns the analysis task and the trigger path."""

    def __init__(self, state, snapshots, camera, settings):
        self.state = state
        self.snapshots = snapshots
        self.camera = camera
        self.sensitivity = settings['sensitivity']
        self.armed = settings['motion_armed']     # off: picture change and PIR ignored
        self.mask = settings['motion_mask']
        self.zones = Zones(settings['motion_zones'], self.sensitivity)
        self.cooldown_ms = settings['cooldown_s'] * 1000
        self.last_trigger_ms = None
        self.pir_ms = None          # the last PIR edge that counted (ticks.now_ms)
        self.decoder = None
        self.slice_mcus = 64        # MCUs in the next slice (see _luma)
        self.detector = None
        self.frame_size = None      # (width, height) of the analysed frames
        self.analysed = 0
        self.busy_us = 0            # CPU time the frame under analysis has taken
        self.feed_us = 0            # ... and the detector, the last frame
        self.give_way_ms = 0        # how long the frame may still wait for answers
        self.task = None

    def apply(self, name, value):
        """The settings table's applier for motion settings."""
        if name == 'motion_armed':
            self.armed = value
            if not value:
                self.pir_ms = None
                self._update_motion(False)
        elif name == 'motion_mask':
            if self.detector is not None:
                self.detector.mask = value      # raises ValueError if bad
            self.mask = value
            self._tune()
        elif name == 'motion_zones':
            self.zones.zones = value
            self._tune()
        else:
            self.sensitivity = self.zones.sensitivity = value
            self._tune()

    def _tune(self):
        """The detector set for the sensitivity, or for the zones."""
        detector = self.detector
        if detector is None:
            return
        zones = self.zones
        if zones.zones:
            smallest = zones.map(detector.cols, detector.rows, self.mask)
            detector.watch_areas(zones.areas, zones.counts, smallest, zones.floors)
        else:
            zones.clear()
            detector.watch_areas()
        detector.sensitivity = self.sensitivity
        self._show_zones()

    def _show_zones(self):
        zones = self.zones
        if zones.changed:
            self.state.update(motion_zones=zones.names_on())

    def start(self):
        self.task = asyncio.create_task(self._analyse())

    async def _analyse(self):
        camera = self.camera
        seen = -1
        while True:
            if camera.latest_jpeg is None or camera.frame_count == seen:
                await camera.wait_frame()
                continue
            seen = camera.frame_count
            jpeg, slot = camera.hold()
            taken = ticks.now_ms()      # the detector's timing is in seconds, not frames
            self.busy_us = 0
            try:
                luma = await self._luma(jpeg)
                fed = time.ticks_us()
                event = self.detector.feed(luma, taken)
                self.feed_us = time.ticks_diff(time.ticks_us(), fed)
                self.busy_us += self.feed_us
            except ValueError as exc:        # JpegError: a frame we cannot read
                camera.release(slot)
                self.state.update(motion_error=str(exc))
                continue
            self.state.update(motion_error=None)
            self.analysed += 1
            if self.zones.zones:
                detector = self.detector
                areas = self.zones.judge(self.armed and detector.moving, taken, detector.dt,
                                         self.cooldown_ms)
                self._show_zones()
            else:
                areas = None
            self._update_motion(self.armed and self._moving())
            if areas or areas is None and event == STARTED and self.armed:
                # the frame that confirmed the motion is the snapshot
                self.trigger('frame', self.detector.region, (jpeg, slot), areas)
            else:
                camera.release(slot)
            await asyncio.sleep_ms(self._rest_ms())

    def _rest_ms(self):
        """The pause after a frame: while anyone watches the live picture or
        waits for an answer, analysis takes at most a third of the CPU, so a
        board too slow for both keeps the stream going and answers (README:
        How fast on a real board)."""
        if not self.camera.viewers and not waiting.count:
            return 0
        return self.busy_us * _WATCHED_REST // 1000

    def _moving(self):
        """Inside a picture-change episode (in a zone that is not count-only,
        with zones), or a PIR edge came lately."""
        if self.pir_ms is not None and ticks.now_ms() - self.pir_ms >= _PIR_HOLD_MS:
            self.pir_ms = None
        if self.pir_ms is not None:
            return True
        if self.zones.zones:
            return self.zones.motion()
        return self.detector is not None and self.detector.moving

    def _update_motion(self, on):
        """state['motion'] on while motion lasts; motion_end when it is over."""
        if self.state.state['motion'] != on:
            self.state.update(motion=on)
            if not on:
                self.state.emit('motion_end', {'count': self.state.state['trigger_count']})

    async def _luma(self, jpeg):
        """The frame's 1/8-scale luma map, decoded in slices."""
        decoder = self.decoder
        if decoder is None:
            decoder = self.decoder = jpegluma.LumaDecoder(jpeg)
        else:
            decoder.reset(jpeg)
        # slices as long as ticks.SLICE_MS on this board (an ESP32 decodes ~100x
        # slower than a PC): few yields where decoding is fast, short stalls
        # where it is slow
        mcus = self.slice_mcus
        slice_us = ticks.SLICE_MS * 1000
        self.give_way_ms = _GIVE_WAY_MS
        while True:
            started = time.ticks_us()
            done = decoder.step(mcus)
            took = max(1, time.ticks_diff(time.ticks_us(), started))
            self.busy_us += took
            if not done or took > slice_us:     # a frame's last slice that ran long too
                learnt = decoder.stepped * slice_us // took
                if done:    # its few MCUs may have timed noise: a quarter of the slice at most
                    learnt = max(learnt, mcus // 4)
                mcus = max(_SLICE_MIN, min(_SLICE_MAX, mcus * 2, learnt))
            if done:
                break
            self.give_way_ms = await waiting.give_way(self.give_way_ms)
        self.slice_mcus = mcus
        if took + self.feed_us > slice_us:
            # the detector after it would overrun the slice: a turn first
            self.give_way_ms = await waiting.give_way(self.give_way_ms)
        size = (decoder.width, decoder.height)
        if size != self.frame_size:
            self.frame_size = size
            if self.detector is None:
                self.detector = Detector(decoder.cols, decoder.rows, self.sensitivity, self.mask)
            else:
                self.detector.resize(decoder.cols, decoder.rows)
            self._tune()
        return memoryview(decoder.luma)[:decoder.cols * decoder.rows]

    def _where(self, region):
        """The region as pixels of the frame: {'box': [x0, y0, x1, y1], 'area': %}."""
        width, height = self.frame_size
        x0, y0, x1, y1 = region['box']
        return {'box': [x0 * 8, y0 * 8, min(width, x1 * 8 + 8) - 1, min(height, y1 * 8 + 8) - 1],
                'area': round(region['area'] * 100, 1), 'frame': [width, height]}

    def trigger(self, cause='frame', region=None, frame=None, areas=None):
        """One trigger from any source; ignored within the cooldown (a zone's
        own, for `areas`: the zones that went on). The snapshot is `frame`
        (jpeg, slot), held by the caller and released here, or the camera's
        latest frame; none for count-only zones."""
        now = ticks.now_ms()        # the last trigger may be days ago
        if not self.armed or areas is None and self.last_trigger_ms is not None and \
                now - self.last_trigger_ms < self.cooldown_ms:
            if frame is not None:
                self.camera.release(frame[1])
            return
        if areas is None:
            self.last_trigger_ms = now
        self.state.add('trigger_count', 1)
        event = {'count': self.state.state['trigger_count'], 'cause': cause}
        note = None
        if region is not None:
            where = self._where(region)
            event.update(where)
            note = 'box=%d,%d,%d,%d area=%s' % (tuple(where['box']) + (where['area'],))
        if areas is not None:
            event['zones'] = names = self.zones.names(areas)
            if names:       # last: a name may have spaces
                note = (note + ' ' if note else '') + 'zones=' + ','.join(names)
        self.state.update(last_motion=event)
        self.state.emit('motion', event)
        if areas is None or self.zones.saves(areas):
            self.snapshots.take_soon('motion', cause, note, frame)
        elif frame is not None:
            self.camera.release(frame[1])

    def view(self):
        """What the detector sees now, for the dashboard's overlay: the block
        grid, the changed blocks (base64 of one byte 0/1 per block, row-major),
        the current region in pixels, and the frames analysed so far."""
        detector = self.detector
        if detector is None:
            return {'analysed': self.analysed, 'cols': 0, 'rows': 0, 'changed': '',
                    'region': None, 'moving': False, 'mask': self.mask}
        region = detector.region
        return {'analysed': self.analysed, 'cols': detector.cols, 'rows': detector.rows,
                'changed': binascii.b2a_base64(detector.changed, newline=False).decode(),
                'region': self._where(region) if region else None,
                'moving': detector.moving, 'mask': self.mask}

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
            now = ticks.now_ms()
            if last is None or now - last >= debounce_ms:
                last = now
                if self.armed:
                    self.pir_ms = now
                    self._update_motion(True)
                self.trigger('pir')

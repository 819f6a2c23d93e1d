"""The camera adapter: both driver APIs that register as `camera`.

micropython-camera-driver: camera.init(0, ...) -> True or OSError; capture()
    -> a new bytes | False, blocking the loop until the frame being filled is
    complete (up to a frame interval, every frame: nothing to poll first).
micropython-camera-API: Camera(data_pins=..., ...), capture() -> memoryview |
    None, valid only until the buffer is handed back (so we copy, then hand it
    back with free_buffer()); capture() blocks too unless frame_available()
    says a frame is waiting, so we poll that with asyncio.sleep_ms() first.
A CameraTask owns the driver and the capture task; failures go to `report`
and are retried with deinit() before every re-init.
"""
import asyncio
import time
from micropython import const

from firmware.config import DEFAULTS

_RETRY_MIN_MS = const(500)
_RETRY_MAX_MS = const(30000)
_FAILS_BEFORE_REINIT = const(3)
_HUNG_MS = const(1000)      # a capture this slow blocked the whole board
_NO_FRAME_MS = const(2000)  # no frame this long: the camera stopped
_POLL_MS = const(5)         # how often to ask frame_available()
# frame buffers, made as readers need them: the analysis, a save and a viewer
# each hold one across awaits, and the next frame needs a free one; past that
# every frame is a new bytes, garbage that brings a collection (~0.13 s of a
# board) nearer
_POOL = const(4)

# micropython-camera-driver's init() keywords for our pin names; its builds
# default to the AI-Thinker's wiring (its modcamera.h)
_DRIVER_PINS = (('vsync_pin', 'vsync'), ('href_pin', 'href'), ('pclk_pin', 'pclk'),
                ('xclk_pin', 'xclk'), ('sda_pin', 'siod'), ('scl_pin', 'sioc'),
                ('powerdown_pin', 'pwdn'), ('reset_pin', 'reset'))


def _driver_pins(pins):
    """init() keywords for the pins that differ from the driver's built-in
    AI-Thinker ones (older builds may not take pin keywords at all)."""
    builtin = DEFAULTS['camera']['pins']
    kw = {}
    for i, pin in enumerate(pins.get('data_pins', builtin['data_pins'])):
        if pin != builtin['data_pins'][i]:
            kw['d%d' % i] = pin
    for ours, theirs in _DRIVER_PINS:
        if pins.get(ours, builtin[ours]) != builtin[ours]:
            kw[theirs] = pins[ours]
    return kw


class DriverCamera:
    """micropython-camera-driver (module-level functions). Settings the
    driver takes at init() are passed there; the others via set_NAME."""

    AT_INIT = ('framesize', 'quality')

    def __init__(self, cam, settings):
        self.cam = cam
        self.blocked_ms = 0     # how long the last capture() held the loop
        kw = {'format': cam.JPEG, 'quality': settings['quality'],
              'framesize': self._framesize(settings['framesize'])}
        if hasattr(cam, 'PSRAM'):
            kw['fb_location'] = cam.PSRAM
        kw.update(_driver_pins(settings.get('pins') or {}))
        try:
            ok = cam.init(0, **kw)      # True, or raises OSError
        except Exception:
            cam.deinit()
            raise
        if not ok:
            cam.deinit()
            raise OSError('camera init failed')

    def _framesize(self, name):
        size = getattr(self.cam, 'FRAME_' + name, None)
        if size is None:
            raise ValueError('frame size %s not supported' % name)
        return size

    async def next_frame(self):
        """The next frame, or None. Blocks the loop until the frame being
        filled is complete: the driver has no way to ask first."""
        started = time.ticks_ms()
        frame = self.cam.capture()
        self.blocked_ms = time.ticks_diff(time.ticks_ms(), started)
        return frame or None

    def done(self):
        pass        # capture() handed the buffer back already

    def set_framesize(self, value):
        return self.cam.framesize(self._framesize(value))

    def set_quality(self, value):
        return self.cam.quality(value)

    def set_brightness(self, value):
        return self.cam.brightness(value)

    def set_contrast(self, value):
        return self.cam.contrast(value)

    def set_saturation(self, value):
        return self.cam.saturation(value)

    def set_vflip(self, value):
        return self.cam.flip(1 if value else 0)

    def set_hmirror(self, value):
        return self.cam.mirror(1 if value else 0)

    def deinit(self):
        self.cam.deinit()


def _api_quality(quality):
    # our scale is esp32-camera's 4..63 (lower is better); this API's is 0..100
    return max(0, min(100, 100 - (quality - 4) * 100 // 59))


class ApiCamera:
    """micropython-camera-API (a Camera object)."""

    AT_INIT = ('framesize', 'quality')

    def __init__(self, module, settings):
        self.module = module
        self.blocked_ms = 0
        # the generic (ESP32_GENERIC-SPIRAM) firmware requires every pin
        kw = dict(settings.get('pins') or {})
        kw.update(pixel_format=module.PixelFormat.JPEG,
                  frame_size=self._framesize(settings['framesize']),
                  jpeg_quality=_api_quality(settings['quality']))
        self.cam = module.Camera(**kw)
        self.polls = hasattr(self.cam, 'frame_available')   # older builds lack it

    def _framesize(self, name):
        # FrameSize names the square sizes R240X240, R96X96, ...
        sizes = self.module.FrameSize
        size = getattr(sizes, name, None)
        if size is None:
            size = getattr(sizes, 'R' + name, None)
        if size is None:
            raise ValueError('frame size %s not supported' % name)
        return size

    async def next_frame(self):
        """The next frame, or None: waits for frame_available() without
        blocking the loop, so that capture() returns at once."""
        cam = self.cam
        if self.polls:
            waiting = time.ticks_ms()
            while not cam.frame_available():
                if time.ticks_diff(time.ticks_ms(), waiting) > _NO_FRAME_MS:
                    return None
                await asyncio.sleep_ms(_POLL_MS)
        started = time.ticks_ms()
        # a view into the driver's buffer: CameraTask copies it into its pool
        frame = cam.capture()
        self.blocked_ms = time.ticks_diff(time.ticks_ms(), started)
        return frame or None

    def done(self):
        """The frame is copied: hand the buffer back, so the driver fills
        the next frame while we wait."""
        free = getattr(self.cam, 'free_buffer', None)
        if free is not None:
            free()

    def _set(self, name, value):
        # set_NAME(): deprecated upstream for a property of the same name
        setter = getattr(self.cam, 'set_' + name, None)
        if setter is None:
            setattr(self.cam, name, value)
            return None
        return setter(value)

    def set_framesize(self, value):
        return self._set('frame_size', self._framesize(value))

    def set_quality(self, value):
        return self._set('quality', _api_quality(value))

    def set_brightness(self, value):
        return self._set('brightness', value)

    def set_contrast(self, value):
        return self._set('contrast', value)

    def set_saturation(self, value):
        return self._set('saturation', value)

    def set_gainceiling(self, value):
        return self._set('gainceiling', value)

    def set_vflip(self, value):
        return self._set('vflip', bool(value))

    def set_hmirror(self, value):
        return self._set('hmirror', bool(value))

    def deinit(self):
        self.cam.deinit()


def apply_setting(driver, name, value):
    """One setting through the adapter's set_NAME; raises if the driver has
    no such setting or refuses the value."""
    setter = getattr(driver, 'set_' + name, None)
    if setter is None:
        raise ValueError('not supported by this camera driver')
    if setter(value) is False:
        raise ValueError('refused by the camera driver')


def open_driver(module, settings):
    """Initialise whichever driver API `module` has, with `settings` applied:
    the ones the driver takes at init, then each other one it supports."""
    driver = ApiCamera(module, settings) if hasattr(module, 'Camera') \
        else DriverCamera(module, settings)
    try:
        for name, value in settings.items():
            if name not in driver.AT_INIT and hasattr(driver, 'set_' + name):
                apply_setting(driver, name, value)
    except Exception:
        driver.deinit()     # never leave an initialised camera behind
        raise
    return driver


class CameraTask:
    """Keeps `latest_jpeg` fresh; reports 'ok' or 'error: ...' to `report`.

    Frames that the driver hands out as a view into its own buffer are copied
    into a small pool of reusable buffers instead of a new bytes object per
    frame (25 of those a second fragment a small heap). Whoever keeps a frame
    across an await takes it with hold() and gives it back with release(),
    so the capture never overwrites a frame that is still being written.
    """

    def __init__(self, module, settings, report):
        self.module = module
        self.settings = dict(settings)
        self.report = report
        self.driver = None
        self.latest_jpeg = None
        self.frame_count = 0
        self.viewers = 0            # live streams being sent: the analysis yields to them
        self.worst_block_ms = 0     # longest capture() since clear_block()
        self.task = None
        self._new_frame = asyncio.Event()
        self._buffers = [None] * _POOL
        self._readers = [0] * _POOL
        self._latest_slot = None

    def hold(self):
        """(latest_jpeg, slot): the latest frame, kept intact until release(slot)."""
        slot = self._latest_slot
        if slot is not None:
            self._readers[slot] += 1
        return self.latest_jpeg, slot

    def release(self, slot):
        if slot is not None:
            self._readers[slot] -= 1

    def _keep(self, frame):
        # a driver's own bytes are ours to keep; a view is copied into the pool
        if isinstance(frame, bytes):
            self._latest_slot = None
            return frame
        size = len(frame)
        slot = self._free_slot(size)
        if slot is None:
            self._latest_slot = None    # every buffer is being read: a copy
            return bytes(frame)
        buffer = self._buffers[slot]
        if buffer is None or len(buffer) < size:
            self._buffers[slot] = None  # let the small one go first
            buffer = self._buffers[slot] = bytearray(size + size // 8)
        buffer[:size] = frame
        self._latest_slot = slot
        return memoryview(buffer)[:size]

    def _free_slot(self, size):
        # a buffer nobody reads: one that fits as it is, else one to grow,
        # else an empty slot, so a second buffer only appears once a reader
        # holds the first across a capture
        best = None
        for slot in range(_POOL):
            if self._readers[slot]:
                continue
            buffer = self._buffers[slot]
            if buffer is not None and len(buffer) >= size:
                return slot
            if best is None or self._buffers[best] is None:
                best = slot
        return best

    def start(self):
        self.task = asyncio.create_task(self._run())

    def clear_block(self):
        """Measure the longest capture() afresh (the `reset` command)."""
        self.worst_block_ms = 0

    async def wait_frame(self):
        """Return after the next new frame."""
        await self._new_frame.wait()

    def _close(self):
        if self.driver:
            try:
                self.driver.deinit()
            except Exception:
                pass
            self.driver = None

    def apply(self, name, value):
        """Change a camera setting: kept (and re-applied after a re-init) only
        once the driver took it, so a refused value never breaks a re-init."""
        if self.driver is None:
            raise OSError('camera not ready')
        apply_setting(self.driver, name, value)
        self.settings[name] = value

    def _open(self):
        self._close()   # a second init without deinit() kills the camera
        try:
            self.driver = open_driver(self.module, self.settings)
            return True
        except Exception as exc:
            self.report('error: init failed (%s)' % exc)
            return False

    async def _run(self):
        period_ms = 1000 // max(1, self.settings.get('fps', 10))
        retry_ms = _RETRY_MIN_MS
        fails = 0
        dropped = 0     # frames in a row the heap had no room for
        while True:
            if self.driver is None and not self._open():
                await asyncio.sleep_ms(retry_ms)
                retry_ms = min(retry_ms * 2, _RETRY_MAX_MS)
                continue
            # never faster than the configured rate: `started` paces the loop
            started = time.ticks_ms()
            try:
                jpeg = await self.driver.next_frame()
            except Exception:
                jpeg = None
            if jpeg is None:
                fails += 1
                self.report('error: capture failed')
                if fails >= _FAILS_BEFORE_REINIT:
                    fails = 0
                    self._close()
                await asyncio.sleep_ms(retry_ms)
                retry_ms = min(retry_ms * 2, _RETRY_MAX_MS)
                continue
            took = self.driver.blocked_ms     # the loop stood still this long
            if took > self.worst_block_ms:
                self.worst_block_ms = took
            if took > _HUNG_MS:
                # the driver blocks the event loop: re-init, and back off so a
                # sick camera cannot keep the board from serving
                self.report('error: capture hung for %d ms' % took)
                self._close()
                await asyncio.sleep_ms(retry_ms)
                retry_ms = min(retry_ms * 2, _RETRY_MAX_MS)
                continue
            fails = 0
            retry_ms = _RETRY_MIN_MS
            try:
                jpeg = self.latest_jpeg = self._keep(jpeg)
            except MemoryError:
                # no room for this frame: the last one stays; now and then
                # is a dropped frame, every time is an error
                self.driver.done()
                dropped += 1
                if dropped >= _FAILS_BEFORE_REINIT:
                    self.report('error: out of memory for a frame')
                await asyncio.sleep_ms(period_ms)
                continue
            self.driver.done()      # copied: the driver may fill its buffer again
            dropped = 0
            self.frame_count += 1
            self._new_frame.set()     # wakes every stream viewer at once
            self._new_frame.clear()
            self.report('ok')
            spent = time.ticks_diff(time.ticks_ms(), started)
            await asyncio.sleep_ms(max(1, period_ms - spent))

"""The camera adapter: both driver APIs that register as `camera`.

micropython-camera-driver: camera.init(0, ...), capture() -> bytes | False.
micropython-camera-API:    Camera(...), capture() -> memoryview | None,
                           valid only until the next capture (so we copy).
A CameraTask owns the driver and the capture task; failures go to `report`
and are retried with deinit() before every re-init.
"""
import asyncio
import time
from micropython import const

_RETRY_MIN_MS = const(500)
_RETRY_MAX_MS = const(30000)
_FAILS_BEFORE_REINIT = const(3)
_HUNG_MS = const(1000)      # a capture this slow blocked the whole board
_POOL = const(2)            # frame buffers: the latest and the one being filled

FRAMESIZES = ('QQVGA', 'QCIF', 'HQVGA', '240X240', 'QVGA', 'CIF', 'HVGA',
              'VGA', 'SVGA', 'XGA', 'HD', 'SXGA', 'UXGA')
_APPLIED_AFTER_INIT = ('brightness', 'contrast', 'saturation', 'vflip', 'hmirror')


class DriverCamera:
    """micropython-camera-driver (module-level functions)."""
    api = 'camera-driver'

    def __init__(self, cam, settings):
        self.cam = cam
        kw = {'format': cam.JPEG, 'quality': settings['quality'],
              'framesize': getattr(cam, 'FRAME_' + settings['framesize'])}
        if hasattr(cam, 'PSRAM'):
            kw['fb_location'] = cam.PSRAM
        if not cam.init(0, **kw):
            cam.deinit()
            raise OSError('camera init failed')
        for key in _APPLIED_AFTER_INIT:
            self.apply(key, settings[key])

    def capture(self):
        return self.cam.capture() or None

    def apply(self, key, value):
        cam = self.cam
        if key == 'framesize':
            cam.framesize(getattr(cam, 'FRAME_' + value))
        elif key == 'quality':
            cam.quality(value)
        elif key in ('brightness', 'contrast', 'saturation'):
            getattr(cam, key)(value)
        elif key == 'vflip':
            cam.flip(1 if value else 0)
        elif key == 'hmirror':
            cam.mirror(1 if value else 0)

    def deinit(self):
        self.cam.deinit()


def _api_quality(quality):
    # our scale is esp32-camera's 4..63 (lower is better); this API's is 0..100
    return max(0, min(100, 100 - (quality - 4) * 100 // 59))


class ApiCamera:
    """micropython-camera-API (a Camera object)."""
    api = 'camera-API'

    def __init__(self, module, settings):
        self.module = module
        self.cam = module.Camera(
            pixel_format=module.PixelFormat.JPEG,
            frame_size=getattr(module.FrameSize, settings['framesize']),
            jpeg_quality=_api_quality(settings['quality']))
        for key in _APPLIED_AFTER_INIT:
            self.apply(key, settings[key])

    def capture(self):
        # a view into the driver's buffer, valid until the next capture:
        # CameraTask copies it into a buffer of its pool
        return self.cam.capture() or None

    def apply(self, key, value):
        cam = self.cam
        if key == 'framesize':
            cam.set_frame_size(getattr(self.module.FrameSize, value))
        elif key == 'quality':
            cam.set_quality(_api_quality(value))
        elif key in ('brightness', 'contrast', 'saturation'):
            getattr(cam, 'set_' + key)(value)
        elif key == 'vflip':
            cam.set_vflip(bool(value))
        elif key == 'hmirror':
            cam.set_hmirror(bool(value))

    def deinit(self):
        self.cam.deinit()


def open_driver(module, settings):
    """Initialise whichever driver API `module` has."""
    if hasattr(module, 'Camera'):
        return ApiCamera(module, settings)
    return DriverCamera(module, settings)


class CameraTask:
    """Keeps `latest_jpeg` fresh; reports 'ok' or 'error: ...' to `report`.

    Frames that the driver hands out as a view into its own buffer are copied
    into a small pool of reusable buffers instead of a new bytes object per
    frame (25 of those a second fragment a small heap). Whoever keeps a frame
    across an await takes it with hold() and gives it back with release(),
    so the capture never overwrites a frame that is still being written.
    """

    def __init__(self, module, settings, report, on_frame=None):
        self.module = module
        self.settings = dict(settings)
        self.report = report
        self.on_frame = on_frame or (lambda jpeg: None)
        self.driver = None
        self.latest_jpeg = None
        self.frame_count = 0
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

    async def wait_frame(self):
        """Return after the next new frame."""
        await self._new_frame.wait()

    def deinit(self):
        """Stop the capture task and release the driver."""
        if self.task:
            self.task.cancel()
            self.task = None
        self._close()

    def _close(self):
        if self.driver:
            try:
                self.driver.deinit()
            except Exception:
                pass
            self.driver = None

    def apply(self, key, value):
        """Change a camera setting; kept and re-applied after a re-init."""
        self.settings[key] = value
        if self.driver:
            self.driver.apply(key, value)

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
            started = time.ticks_ms()
            try:
                jpeg = self.driver.capture()
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
            took = time.ticks_diff(time.ticks_ms(), started)
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
                dropped += 1
                if dropped >= _FAILS_BEFORE_REINIT:
                    self.report('error: out of memory for a frame')
                await asyncio.sleep_ms(period_ms)
                continue
            dropped = 0
            self.frame_count += 1
            self._new_frame.set()     # wakes every stream viewer at once
            self._new_frame.clear()
            self.report('ok')
            self.on_frame(jpeg)
            spent = time.ticks_diff(time.ticks_ms(), started)
            await asyncio.sleep_ms(max(1, period_ms - spent))

# Simulator only, never goes onto a board: the camera driver, replaying the
# JPEG files of SIM_FRAMES in name order at SIM_FPS frames per second.
# SIM_CAMERA_API picks the driver API this module imitates:
#   lemariva  - micropython-camera-driver: init(0, ...), capture() -> bytes | False
#   cnadler86 - micropython-camera-API: Camera(...), capture() -> memoryview | None,
#               a view into one frame buffer that the next capture overwrites.
# Faults: camera_init_fail, camera_capture_fail, camera_hang_s (capture blocks),
# camera_refuse: a list of setting names the sensor refuses (ValueError, as
# the real drivers raise for a value the sensor cannot take).
# Each capture also delivers simulated pin edges (machine.sim_poll_inputs).
import os
import time
import machine
import simctl

_API = simctl.env('SIM_CAMERA_API', 'cnadler86')
_FPS = float(simctl.env('SIM_FPS', '10'))
_DIR = simctl.env('SIM_FRAMES', '')


def _frame_names():
    names = [n for n in os.listdir(_DIR) if n.lower().endswith(('.jpg', '.jpeg'))]
    names.sort()
    return [_DIR + '/' + n for n in names]


def _refuse(name):
    if name in (simctl.fault('camera_refuse') or ()):
        raise ValueError('sensor does not support this value')


class _Replay:
    """The sensor: which frame is current at this moment."""

    def __init__(self):
        if simctl.fault('camera_init_fail'):
            raise OSError('sensor not detected')
        self.paths = _frame_names()
        if not self.paths:
            raise OSError('no frames in ' + _DIR)
        self.started = time.ticks_ms()

    def current_path(self):
        machine.sim_poll_inputs()   # the camera is the sim's regular clock
        hang = simctl.fault('camera_hang_s')
        if hang:
            time.sleep(hang)    # the real driver blocks up to 4 s, loop and all
        if simctl.fault('camera_capture_fail'):
            return None
        elapsed = time.ticks_diff(time.ticks_ms(), self.started)
        return self.paths[int(elapsed * _FPS / 1000) % len(self.paths)]


if _API == 'lemariva':
    JPEG = 5
    PSRAM = 1
    DRAM = 0
    FRAME_QQVGA, FRAME_QCIF, FRAME_HQVGA, FRAME_240X240, FRAME_QVGA = 0, 1, 2, 3, 4
    FRAME_CIF, FRAME_HVGA, FRAME_VGA, FRAME_SVGA, FRAME_XGA = 5, 6, 7, 8, 9
    FRAME_HD, FRAME_SXGA, FRAME_UXGA = 10, 11, 12
    _sensor = None
    _settings = {}

    def init(id=0, **kwargs):
        global _sensor
        if _sensor is not None:
            # the real driver fails a second init and shuts the camera down
            _sensor = None
            return False
        try:
            _sensor = _Replay()
        except OSError:
            return False
        return True

    def deinit():
        global _sensor
        _sensor = None
        return True

    def capture():
        if _sensor is None:
            return False
        path = _sensor.current_path()
        if path is None:
            return False
        with open(path, 'rb') as f:
            return f.read()

    def _setter(name):
        def set_value(value):
            _refuse(name)
            _settings[name] = value
        return set_value

    framesize = _setter('framesize')
    quality = _setter('quality')
    brightness = _setter('brightness')
    contrast = _setter('contrast')
    saturation = _setter('saturation')
    flip = _setter('flip')
    mirror = _setter('mirror')

else:
    class PixelFormat:
        RGB565 = 0
        YUV422 = 1
        GRAYSCALE = 2
        JPEG = 3

    class FrameSize:
        QQVGA, QCIF, HQVGA, R240X240, QVGA = 0, 1, 2, 3, 4
        CIF, HVGA, VGA, SVGA, XGA = 5, 6, 7, 8, 9
        HD, SXGA, UXGA = 10, 11, 12

    class GrabMode:
        WHEN_EMPTY = 0
        LATEST = 1

    _frame_buffer = None    # the driver's frame buffer: allocated once, like its PSRAM one

    class Camera:
        def __init__(self, pixel_format=PixelFormat.RGB565, frame_size=FrameSize.QVGA,
                     jpeg_quality=85, fb_count=1, grab_mode=GrabMode.WHEN_EMPTY, **pins):
            global _frame_buffer
            self.pixel_format = pixel_format
            self.settings = {'frame_size': frame_size, 'quality': jpeg_quality}
            self.sensor = _Replay()
            if _frame_buffer is None:
                _frame_buffer = bytearray(max(os.stat(p)[6] for p in self.sensor.paths))
            self.buffer = _frame_buffer

        def capture(self):
            if self.sensor is None:
                raise OSError('camera deinitialised')
            path = self.sensor.current_path()
            if path is None:
                return None
            size = os.stat(path)[6]
            with open(path, 'rb') as f:
                f.readinto(self.buffer)
            return memoryview(self.buffer)[:size]

        def deinit(self):
            self.sensor = None

        def _set(self, name, value):
            _refuse(name)
            self.settings[name] = value

        def set_frame_size(self, value):
            self._set('frame_size', value)

        def set_quality(self, value):
            self._set('quality', value)

        def set_brightness(self, value):
            self._set('brightness', value)

        def set_contrast(self, value):
            self._set('contrast', value)

        def set_saturation(self, value):
            self._set('saturation', value)

        def set_gainceiling(self, value):
            self._set('gainceiling', value)

        def set_vflip(self, value):
            self._set('vflip', value)

        def set_hmirror(self, value):
            self._set('hmirror', value)

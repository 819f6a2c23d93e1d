# Simulator only, never goes onto a board: the camera driver, replaying the
# JPEG files of SIM_FRAMES in name order at SIM_FPS frames per second, in a
# loop (SIM_FRAMES_ONCE=1: once, then the last frame stays, a still scene).
# SIM_CAMERA_API picks the driver API this module imitates:
#   lemariva  - micropython-camera-driver (src/modcamera.c): init(0, ...) -> True
#               or OSError('Camera Init Failed'); capture() -> a new bytes | False,
#               blocking until the frame being filled is complete.
#   cnadler86 - micropython-camera-API (src/modcamera_api.c, modcamera.c):
#               Camera(data_pins=..., ...) inits at once; capture() hands the held
#               buffer back, then blocks for the next frame and returns a memoryview
#               of the one frame buffer (overwritten once it is handed back) | None;
#               frame_available(), free_buffer(). SIM_CAMERA_BOARD picks the build:
#               generic (default: the ESP32_GENERIC-SPIRAM release, every pin must
#               be passed) or aithinker (built with MICROPY_CAMERA_MODEL_AI_THINKER).
# The simulated hardware is an AI-Thinker: other pins find no sensor. Frames
# complete on a fixed clock; a capture blocks the whole VM (time.sleep_ms)
# until the first frame complete after the buffer was handed back.
# Faults: camera_init_fail, camera_capture_fail, camera_hang_s (capture blocks),
# camera_refuse: a list of setting names the sensor refuses (ValueError, as
# the real drivers raise for a value the sensor cannot take).
# Each capture also delivers simulated pin edges (machine.sim_poll_inputs).
# SIM_SENSOR_STATE: a file the driver rewrites with its settings (JSON) at init
# and after each change: what a probe on the sensor's bus would read back, so a
# test sees a setting reach the driver, not only the firmware's own state.
import json
import os
import time
import machine
import simctl

_API = simctl.env('SIM_CAMERA_API', 'cnadler86')
_FPS = float(simctl.env('SIM_FPS', '10'))
_DIR = simctl.env('SIM_FRAMES', '')
_ONCE = simctl.env('SIM_FRAMES_ONCE', '0') != '0'   # play once, then hold the last frame


def _frame_names():
    names = [n for n in os.listdir(_DIR) if n.lower().endswith(('.jpg', '.jpeg'))]
    names.sort()
    return [_DIR + '/' + n for n in names]


_SENSOR_STATE = simctl.env('SIM_SENSOR_STATE')


def _publish(settings):
    if _SENSOR_STATE:
        with open(_SENSOR_STATE + '.tmp', 'w') as f:
            f.write(json.dumps(settings))
        os.rename(_SENSOR_STATE + '.tmp', _SENSOR_STATE)     # never read half-written


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
        k = int(elapsed * _FPS / 1000)
        return self.paths[min(k, len(self.paths) - 1) if _ONCE else k % len(self.paths)]

    def next_frame_ms(self, after):
        """The tick at which the first frame after tick `after` is complete."""
        period = 1000 / _FPS
        k = int(time.ticks_diff(after, self.started) / period) + 1
        return time.ticks_add(self.started, int(k * period + 0.999))

    def block_until(self, tick):
        wait = time.ticks_diff(tick, time.ticks_ms())
        if wait > 0:
            time.sleep_ms(wait)     # the driver task holds the VM, loop and all


# the AI-Thinker ESP32-CAM's wiring (esp32-camera's CAMERA_MODEL_AI_THINKER)
_AI_THINKER = {'data_pins': [5, 18, 19, 21, 36, 39, 34, 35], 'vsync_pin': 25,
               'href_pin': 23, 'pclk_pin': 22, 'xclk_pin': 0, 'sda_pin': 26,
               'scl_pin': 27, 'powerdown_pin': 32, 'reset_pin': -1}


if _API == 'lemariva':
    # esp32-camera 2.0's enums, as lemariva's firmware builds have them
    RGB565, YUV422, GRAYSCALE, JPEG = 0, 1, 2, 3
    PSRAM, DRAM = 0, 1
    XCLK_10MHz, XCLK_20MHz = 10000000, 20000000
    WB_NONE, WB_SUNNY, WB_CLOUDY, WB_OFFICE, WB_HOME = 0, 1, 2, 3, 4
    EFFECT_NONE, EFFECT_NEG, EFFECT_BW, EFFECT_RED = 0, 1, 2, 3
    EFFECT_GREEN, EFFECT_BLUE, EFFECT_RETRO = 4, 5, 6
    FRAME_96X96, FRAME_QQVGA, FRAME_QCIF, FRAME_HQVGA, FRAME_240X240 = 0, 1, 2, 3, 4
    FRAME_QVGA, FRAME_CIF, FRAME_HVGA, FRAME_VGA, FRAME_SVGA = 5, 6, 7, 8, 9
    FRAME_XGA, FRAME_HD, FRAME_SXGA, FRAME_UXGA, FRAME_FHD = 10, 11, 12, 13, 14
    FRAME_P_HD, FRAME_P_3MP, FRAME_QXGA, FRAME_QHD, FRAME_WQXGA = 15, 16, 17, 18, 19
    FRAME_P_FHD, FRAME_QSXGA = 20, 21
    # init()'s pin keywords default to the AI-Thinker's (modcamera.h)
    _PINS = {'d0': 5, 'd1': 18, 'd2': 19, 'd3': 21, 'd4': 36, 'd5': 39, 'd6': 34,
             'd7': 35, 'vsync': 25, 'href': 23, 'pclk': 22, 'pwdn': 32, 'reset': -1,
             'xclk': 0, 'siod': 26, 'sioc': 27}
    _OTHER = ('format', 'framesize', 'quality', 'xclk_freq', 'fb_size', 'fb_location')
    _sensor = None
    _ready = None       # tick when the frame being filled is complete
    _settings = {}

    def init(id=0, **kwargs):
        global _sensor, _ready
        for name in kwargs:
            if name not in _PINS and name not in _OTHER:
                raise TypeError("unexpected keyword argument '%s'" % name)
        if kwargs.get('format', JPEG) not in (JPEG, YUV422, GRAYSCALE, RGB565):
            raise ValueError('Image format is not valid')
        if not 0 <= kwargs.get('framesize', FRAME_VGA) <= FRAME_QSXGA:
            raise ValueError('Image framesize is not valid')
        if kwargs.get('xclk_freq', XCLK_10MHz) not in (XCLK_10MHz, XCLK_20MHz):
            raise ValueError('xclk frequency is not valid')
        wired = all(kwargs.get(name, pin) == pin for name, pin in _PINS.items())
        if _sensor is not None or not wired:
            # a second init without deinit() fails and leaves no camera;
            # other pins find no sensor
            _sensor = None
            raise OSError('Camera Init Failed')
        try:
            _sensor = _Replay()
        except OSError:
            raise OSError('Camera Init Failed')
        _ready = _sensor.next_frame_ms(time.ticks_ms())
        _settings.clear()
        _settings.update(framesize=kwargs.get('framesize', FRAME_VGA),
                         quality=kwargs.get('quality', 12))
        _publish(_settings)
        return True

    def deinit():
        global _sensor
        _sensor = None
        return True

    def capture():
        # esp_camera_fb_get() waits for the frame being filled, copies it into
        # a new bytes and hands the buffer back, which starts the next frame
        global _ready
        if _sensor is None:
            return False
        _sensor.block_until(_ready)
        path = _sensor.current_path()
        _ready = _sensor.next_frame_ms(time.ticks_ms())
        if path is None:
            return False
        with open(path, 'rb') as f:
            return f.read()

    def _setter(name):
        def set_value(value):
            if _sensor is None:
                return False        # no sensor: the real one logs and returns False
            _refuse(name)
            _settings[name] = value
            _publish(_settings)
        return set_value

    framesize = _setter('framesize')
    quality = _setter('quality')
    brightness = _setter('brightness')
    contrast = _setter('contrast')
    saturation = _setter('saturation')
    flip = _setter('flip')
    mirror = _setter('mirror')
    speffect = _setter('speffect')
    whitebalance = _setter('whitebalance')

else:
    import errno

    _BOARD = simctl.env('SIM_CAMERA_BOARD', 'generic')     # or aithinker

    class PixelFormat:
        RGB565, YUV422, YUV420, GRAYSCALE, JPEG = 0, 1, 2, 3, 4
        RGB888, RAW, RGB444, RGB555 = 5, 6, 7, 8

    class FrameSize:
        R96X96, QQVGA, R128X128, QCIF, HQVGA, R240X240 = 0, 1, 2, 3, 4, 5
        QVGA, R320X320, CIF, HVGA, VGA, SVGA, XGA = 6, 7, 8, 9, 10, 11, 12
        HD, SXGA, UXGA, FHD, P_HD, P_3MP, QXGA = 13, 14, 15, 16, 17, 18, 19
        QHD, WQXGA, P_FHD, QSXGA = 20, 21, 22, 23

    class GrabMode:
        WHEN_EMPTY = 0
        LATEST = 1

    class GainCeiling:
        pass

    for _i, _name in enumerate(('2X', '4X', '8X', '16X', '32X', '64X', '128X')):
        setattr(GainCeiling, _name, _i)

    def _reserve_frame_buffer():
        # The driver's frame buffer is PSRAM outside MicroPython's heap on a
        # board. Here it has to come from the heap: reserved once at power-on
        # (run_board.py imports this module first), so it neither fragments
        # the app's heap nor depends on when the app first opens the camera.
        try:
            return bytearray(max(os.stat(p)[6] for p in _frame_names()))
        except (OSError, ValueError):
            return None         # no frames: the sensor fails at init

    _frame_buffer = _reserve_frame_buffer()
    _camera = None          # the one camera (upstream: a singleton, re-inited)
    _REQUIRED = ('data_pins', 'pclk_pin', 'vsync_pin', 'href_pin', 'xclk_pin')

    class Camera:
        def __init__(self, *, data_pins=None, pclk_pin=None, vsync_pin=None,
                     href_pin=None, sda_pin=None, scl_pin=None, xclk_pin=None,
                     i2c=None, xclk_freq=20000000, powerdown_pin=None, reset_pin=-1,
                     pixel_format=PixelFormat.RGB565, frame_size=FrameSize.QQVGA,
                     jpeg_quality=85, fb_count=1, grab_mode=GrabMode.WHEN_EMPTY,
                     init=True):
            global _camera
            pins = {'data_pins': data_pins, 'pclk_pin': pclk_pin, 'vsync_pin': vsync_pin,
                    'href_pin': href_pin, 'xclk_pin': xclk_pin, 'sda_pin': sda_pin,
                    'scl_pin': scl_pin, 'powerdown_pin': powerdown_pin,
                    'reset_pin': reset_pin}
            if _BOARD == 'aithinker':
                # built for the board: every pin has the board's default
                for name, pin in pins.items():
                    if pin is None:
                        pins[name] = _AI_THINKER[name]
            else:
                for name in _REQUIRED:
                    if pins[name] is None:
                        raise TypeError("'%s' argument required" % name)
                if pins['sda_pin'] is None or pins['scl_pin'] is None:
                    raise ValueError('Either i2c object or sda_pin/scl_pin must be specified')
                if pins['powerdown_pin'] is None:
                    pins['powerdown_pin'] = -1
            if not isinstance(pins['data_pins'], (list, bytearray)):
                raise TypeError('data_pins must be a list or bytearray')
            if len(pins['data_pins']) != 8:
                raise ValueError('data_pins must have 8 elements')
            pins['data_pins'] = list(pins['data_pins'])
            if not 0 <= jpeg_quality <= 100:
                raise ValueError('jpeg quality must be in range 0-100')
            if _camera is not None:
                _camera.deinit()
            _camera = self
            self.pins = pins
            self.pixel_format = pixel_format
            self.settings = {'frame_size': frame_size, 'quality': jpeg_quality}
            _publish(self.settings)
            self.sensor = None
            self.held = False
            self.ready = None
            self.init()
            # the constructor captures a first frame to check the camera
            if self.capture() is None:
                self.deinit()
                raise OSError('Failed to capture initial frame. Construct a new '
                              'object with appropriate configuration.')
            if init:
                self.free_buffer()
            else:
                self.deinit()

        def init(self):
            global _frame_buffer
            if self.sensor is not None:
                return
            if any(self.pins[name] != pin for name, pin in _AI_THINKER.items()):
                # esp_camera_init: "Camera probe failed" (wrong pins, or the
                # sensor held in power-down by GPIO32)
                raise OSError('Camera not found')
            self.sensor = _Replay()
            if _frame_buffer is None or len(_frame_buffer) < max(
                    os.stat(p)[6] for p in self.sensor.paths):
                _frame_buffer = bytearray(max(os.stat(p)[6] for p in self.sensor.paths))
            self.buffer = _frame_buffer
            self.held = False
            self.ready = self.sensor.next_frame_ms(time.ticks_ms())

        def _check_init(self):
            if self.sensor is None:
                raise OSError(errno.ENOENT)

        def frame_available(self):
            self._check_init()
            machine.sim_poll_inputs()
            if self.held or simctl.fault('camera_capture_fail'):
                return False    # one frame buffer, and it is ours / no frames come
            return time.ticks_diff(time.ticks_ms(), self.ready) >= 0

        def free_buffer(self):
            if self.held:
                self.held = False
                # the driver fills the buffer again: what a view still shows is garbage
                self.buffer[0:2] = b'\0\0'
                self.ready = self.sensor.next_frame_ms(time.ticks_ms())

        def capture(self):
            self._check_init()
            self.free_buffer()
            self.sensor.block_until(self.ready)
            path = self.sensor.current_path()
            if path is None:
                self.ready = self.sensor.next_frame_ms(time.ticks_ms())
                return None
            size = os.stat(path)[6]
            with open(path, 'rb') as f:
                f.readinto(self.buffer)
            self.held = True
            return memoryview(self.buffer)[:size]

        def deinit(self):
            self.sensor = None
            self.held = False

        def _set(self, name, value):
            self._check_init()
            _refuse(name)
            self.settings[name] = value
            _publish(self.settings)

        # the get_/set_ methods: deprecated upstream in favour of properties
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

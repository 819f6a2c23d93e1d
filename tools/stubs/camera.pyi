"""The `camera` module for the static check (tools/check.py): the ESP32
stubs have none, because it comes with the camera firmware, not MicroPython.
Two drivers register under this name and the board has one of them
(firmware/camera.py detects which), so this stub holds both:

- micropython-camera-driver (lemariva): module-level init()/capture(),
  capture() -> bytes, or False when no frame came;
- micropython-camera-API (cnadler86): the Camera class, capture() ->
  a memoryview into the driver's buffer (valid until the next capture), or None.
"""
from typing import Final, Literal

# --- micropython-camera-driver -------------------------------------------
JPEG: Final[int]
YUV422: Final[int]
GRAYSCALE: Final[int]
RGB565: Final[int]
PSRAM: Final[int]
DRAM: Final[int]
XCLK_10MHz: Final[int]
XCLK_20MHz: Final[int]
FRAME_96X96: Final[int]
FRAME_QQVGA: Final[int]
FRAME_QCIF: Final[int]
FRAME_HQVGA: Final[int]
FRAME_240X240: Final[int]
FRAME_QVGA: Final[int]
FRAME_CIF: Final[int]
FRAME_HVGA: Final[int]
FRAME_VGA: Final[int]
FRAME_SVGA: Final[int]
FRAME_XGA: Final[int]
FRAME_HD: Final[int]
FRAME_SXGA: Final[int]
FRAME_UXGA: Final[int]
WB_NONE: Final[int]
WB_SUNNY: Final[int]
WB_CLOUDY: Final[int]
WB_OFFICE: Final[int]
WB_HOME: Final[int]
EFFECT_NONE: Final[int]
EFFECT_NEG: Final[int]
EFFECT_BW: Final[int]
EFFECT_RED: Final[int]
EFFECT_GREEN: Final[int]
EFFECT_BLUE: Final[int]
EFFECT_RETRO: Final[int]

def init(id: int = 0, *, format: int = ..., framesize: int = ..., quality: int = ...,
         fb_location: int = ..., xclk_freq: int = ..., **pins: int) -> bool:
    """Start the camera: True, or raises; a second init() without deinit() fails."""
    ...
def deinit() -> bool: ...
def capture() -> bytes | Literal[False]:
    """A copy of the latest frame, or False; can block for seconds."""
    ...
def framesize(size: int, /) -> None: ...
def quality(value: int, /) -> None: ...
def brightness(value: int, /) -> None: ...
def contrast(value: int, /) -> None: ...
def saturation(value: int, /) -> None: ...
def flip(value: int, /) -> None: ...
def mirror(value: int, /) -> None: ...
def speffect(effect: int, /) -> None: ...
def whitebalance(mode: int, /) -> None: ...

# --- micropython-camera-API ------------------------------------------------
class PixelFormat:
    RGB565: Final[int]
    YUV422: Final[int]
    YUV420: Final[int]
    GRAYSCALE: Final[int]
    JPEG: Final[int]
    RGB888: Final[int]
    RAW: Final[int]
    RGB444: Final[int]
    RGB555: Final[int]

class FrameSize:
    R96X96: Final[int]
    QQVGA: Final[int]
    R128x128: Final[int]
    QCIF: Final[int]
    HQVGA: Final[int]
    R240X240: Final[int]
    QVGA: Final[int]
    R320X320: Final[int]
    CIF: Final[int]
    HVGA: Final[int]
    VGA: Final[int]
    SVGA: Final[int]
    XGA: Final[int]
    HD: Final[int]
    SXGA: Final[int]
    UXGA: Final[int]
    FHD: Final[int]

class GrabMode:
    WHEN_EMPTY: Final[int]
    LATEST: Final[int]

class GainCeiling:
    X2: Final[int]
    X4: Final[int]
    X8: Final[int]
    X16: Final[int]
    X32: Final[int]
    X64: Final[int]
    X128: Final[int]

class Camera:
    def __init__(self, *, data_pins: list[int] | None = None, pclk_pin: int | None = None,
                 vsync_pin: int | None = None, href_pin: int | None = None,
                 sda_pin: int | None = None, scl_pin: int | None = None,
                 xclk_pin: int | None = None, xclk_freq: int = ...,
                 powerdown_pin: int = -1, reset_pin: int = -1,
                 pixel_format: int = ..., frame_size: int = ..., jpeg_quality: int = ...,
                 fb_count: int = 1, grab_mode: int = ..., init: bool = True) -> None:
        """The default pixel format is RGB565: pass PixelFormat.JPEG."""
        ...
    def init(self) -> None: ...
    def deinit(self) -> None: ...
    def reconfigure(self, *, frame_size: int | None = None, pixel_format: int | None = None,
                    grab_mode: int | None = None, fb_count: int | None = None) -> None: ...
    def frame_available(self) -> bool: ...
    def capture(self) -> memoryview | None:
        """A view into the driver's frame buffer, valid until the next capture."""
        ...
    def free_buffer(self) -> None: ...
    # the set_/get_ methods (being replaced by properties upstream)
    def set_frame_size(self, value: int, /) -> None: ...
    def get_frame_size(self) -> int: ...
    def set_quality(self, value: int, /) -> None: ...
    def get_quality(self) -> int: ...
    def set_brightness(self, value: int, /) -> None: ...
    def get_brightness(self) -> int: ...
    def set_contrast(self, value: int, /) -> None: ...
    def get_contrast(self) -> int: ...
    def set_saturation(self, value: int, /) -> None: ...
    def get_saturation(self) -> int: ...
    def set_sharpness(self, value: int, /) -> None: ...
    def get_sharpness(self) -> int: ...
    def set_gainceiling(self, value: int, /) -> None: ...
    def get_gainceiling(self) -> int: ...
    def set_vflip(self, value: bool, /) -> None: ...
    def get_vflip(self) -> bool: ...
    def set_hmirror(self, value: bool, /) -> None: ...
    def get_hmirror(self) -> bool: ...
    def set_whitebal(self, value: bool, /) -> None: ...
    def get_whitebal(self) -> bool: ...
    def set_special_effect(self, value: int, /) -> None: ...
    def get_special_effect(self) -> int: ...
    def get_pixel_width(self) -> int: ...
    def get_pixel_height(self) -> int: ...
    def get_sensor_name(self) -> str: ...

"""The HTTP API of Espressif's CameraWebServer example, which home-automation
camera integrations, NVRs and scripts already speak:

    GET /capture                      the latest JPEG
    GET /status                       sensor settings as JSON, that example's names
    GET /control?var=NAME&val=N       change one setting (plain GET, no Upgrade)
    GET /stream                       MJPEG (the example serves it on port 81)

`control` goes through the same validation as the WebSocket `set` command.
"""
from firmware import commands

# esp32-camera's framesize_t numbers, as CameraWebServer uses them
FRAMESIZE_NUMBERS = {1: 'QQVGA', 3: 'QCIF', 4: 'HQVGA', 5: '240X240', 6: 'QVGA',
                     8: 'CIF', 9: 'HVGA', 10: 'VGA', 11: 'SVGA', 12: 'XGA',
                     13: 'HD', 14: 'SXGA', 15: 'UXGA'}
_BOOLEAN = ('hmirror', 'vflip')
_RENAMED = {'led_intensity': 'flash'}


def status(settings):
    """The /status object from our settings dict."""
    numbers = {name: number for number, name in FRAMESIZE_NUMBERS.items()}
    # the example's other fields, at the sensor defaults we do not change
    out = {'pixformat': 4, 'xclk': 20, 'sharpness': 0, 'special_effect': 0,
           'wb_mode': 0, 'awb': 1, 'awb_gain': 1, 'aec': 1, 'aec2': 0, 'ae_level': 0,
           'aec_value': 300, 'agc': 1, 'agc_gain': 0, 'gainceiling': 0, 'bpc': 0,
           'wpc': 1, 'raw_gma': 1, 'lenc': 1, 'dcw': 1, 'colorbar': 0}
    for key in ('quality', 'brightness', 'contrast', 'saturation'):
        out[key] = settings.get(key, 0)
    out['framesize'] = numbers.get(settings.get('framesize'), 10)
    for key in _BOOLEAN:
        out[key] = 1 if settings.get(key) else 0
    out['led_intensity'] = settings.get('flash', 0)
    return out


async def control(args, board):
    """Apply ?var=&val=; return the HTTP status: 200, 400 or 500 as the example."""
    var = args.get('var')
    val = args.get('val')
    if var is None or val is None:
        return 400
    try:
        number = int(val)
    except ValueError:
        return 400
    key = _RENAMED.get(var, var)
    if key == 'framesize':
        value = FRAMESIZE_NUMBERS.get(number)
    elif key in _BOOLEAN:
        value = number == 1 if number in (0, 1) else None
    else:
        value = number
    reply = commands.handle_set(key, value, board)
    return 200 if reply['ok'] else 500

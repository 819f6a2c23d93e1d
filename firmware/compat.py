"""The HTTP API of Espressif's CameraWebServer example, which home-automation
camera integrations, NVRs and scripts already speak:

    GET /capture                      the latest JPEG
    GET /status                       sensor settings as JSON, that example's names
    GET /control?var=NAME&val=N       change one setting (plain GET, no Upgrade)
    GET /stream                       MJPEG (the example serves it on port 81)

`control` goes through the same settings table as the WebSocket `set` command.
"""
from firmware.settings import TABLE, by_api_name, from_api, to_api

# the example's other fields, at the sensor defaults we do not change
_FIXED = {'pixformat': 4, 'xclk': 20, 'sharpness': 0, 'special_effect': 0,
          'wb_mode': 0, 'awb': 1, 'awb_gain': 1, 'aec': 1, 'aec2': 0, 'ae_level': 0,
          'aec_value': 300, 'agc': 1, 'agc_gain': 0, 'gainceiling': 0, 'bpc': 0,
          'wpc': 1, 'raw_gma': 1, 'lenc': 1, 'dcw': 1, 'colorbar': 0}


def status(settings):
    """The /status object from our settings dict."""
    out = dict(_FIXED)
    for name, (default, values, owner, api_name) in TABLE.items():
        if api_name is not None:
            out[api_name] = to_api(values, settings.get(name, default))
    return out


def control(args, settings):
    """Apply ?var=&val= through the settings; the HTTP status the example
    answers: 200, 400 for a malformed request, 500 for a refused value."""
    var = args.get('var')
    val = args.get('val')
    if var is None or val is None:
        return 400
    try:
        number = int(val)
    except ValueError:
        return 400
    name = by_api_name(var) or (var if var in TABLE else None)
    value = from_api(TABLE[name][1], number) if name else None
    reply = settings.set(name or var, value)
    return 200 if reply['ok'] else 500

"""Read config.json, apply defaults, validate: one plain dict."""
import json
from firmware import settings as _settings

DEFAULTS = {
    'wifi': [],                 # [{"ssid": ..., "password": ...}] tried in order
    'wifi_timeout_s': 15,
    'hostname': 'esp32cam',
    'ap': {'ssid': 'esp32cam-setup',   # WPA2; password None: the board's own
           'password': None},             # (random, on flash, shown on the console)
    'tz_offset_min': 0,
    'http_port': 80,
    'camera': {'fps': 10,       # + the camera rows of the settings table
               # the AI-Thinker ESP32-CAM's camera wiring, passed to the driver
               # (a generic firmware needs them); change them for another board
               'pins': {'data_pins': [5, 18, 19, 21, 36, 39, 34, 35],
                        'vsync_pin': 25, 'href_pin': 23, 'pclk_pin': 22,
                        'xclk_pin': 0, 'sda_pin': 26, 'scl_pin': 27,
                        'powerdown_pin': 32, 'reset_pin': -1}},
    'motion': {'cooldown_s': 5,
               'pir_pin': -1, 'pir_debounce_ms': 2000},   # -1: no PIR sensor
    'sd': {'mount': '/sdcard', 'folder': 'snaps', 'width': 1,
           'min_free_bytes': 2097152},  # under this, oldest motion snapshots go
    # recordings (README.md, "Recordings"): preroll_bytes is one buffer on the
    # heap, the pre-roll and the writer's queue; 0 turns recording off
    'clips': {'folder': 'clips', 'motion': True, 'preroll_s': 2, 'preroll_bytes': 524288,
              'tail_s': 3, 'max_s': 60, 'timelapse_s': 0, 'timelapse_fps': 10},
    'flash_pin': 4,
    'safe_pin': -1,             # a pin held low at power-on skips the app
    'watchdog_s': 60,           # reset when the event loop stalls this long; 0: off
    'ota_health_s': 120,        # an update must be healthy this soon after boot (firmware/ota.py)
    'stream_max_fps': 15,       # per /stream viewer
    'loop_monitor': False,      # report loop stalls and lowest free heap (bench)
    # MQTT and Home Assistant discovery: off unless host is set (README.md)
    'mqtt': {'host': None, 'port': 0,         # 0: 1883, or 8883 with tls
             'user': None, 'password': None, 'client_id': None,
             'tls': False, 'ca': None,        # ca: a DER file on flash to verify the broker
             'keepalive_s': 30, 'backoff_max_s': 60, 'state_s': 60,
             'camera_s': 10,          # the camera topic's live frame; 0: none
             'discovery': True, 'discovery_prefix': 'homeassistant'},
    'auth': 'on',               # "off": no password anywhere (the dashboard warns)
    'login': {'session_h': 168, 'max_sessions': 8,   # browser sessions (cookies)
              'lock_after': 3, 'backoff_s': 2,        # failures; then 2, 4, 8 ... s
              'backoff_max_s': 900, 'clients': 16},  # addresses remembered
    'setup': {'dns_port': 53},  # the setup portal's DNS responder (captive portal)
    'allowed_hosts': [],        # extra Host names, e.g. a DNS name you gave the board
    'allowed_origins': [],      # extra page origins allowed to open /control
    'tls': {'cert': None, 'key': None},   # DER files on flash: serve HTTPS/WSS
    # RTSP for recorders (README.md, "RTSP and ONVIF"): off unless turned on, as
    # its listener and viewers take sockets from the dashboard's; `sockets` is
    # what viewers may hold (TCP viewer 1, UDP viewer 3), RTP/RTCP from rtp_port up
    'rtsp': {'on': False, 'port': 554, 'rtp_port': 6970, 'sockets': 2},
    # ONVIF for recorders (README.md, "ONVIF"): needs RTSP on; its discovery
    # takes one more socket (UDP 3702, the multicast group)
    'onvif': {'on': False, 'discovery': True},
    'snapshot_rate': {'burst': 30, 'per_s': 2.0},
    'limits': {'max_connections': 7, 'head_timeout_s': 10, 'write_timeout_s': 10,
               'ws_ping_s': 10, 'dead_peer_s': 30, 'max_body': 16384,
               'max_ws_message': 4096, 'heartbeat_s': 5},
}
DEFAULTS['camera'].update(_settings.defaults(_settings.CAMERA))
DEFAULTS['motion'].update(_settings.defaults(_settings.MOTION))


def _merge(defaults, given, path, problems):
    out = {}
    for key, default in defaults.items():
        if key not in given:
            # a fresh copy: nobody may change DEFAULTS through a config
            out[key] = _merge(default, {}, '', problems) if isinstance(default, dict) else default
            continue
        value = given[key]
        if isinstance(default, dict):
            if isinstance(value, dict):
                out[key] = _merge(default, value, path + key + '.', problems)
            else:
                problems.append(path + key + ' must be an object')
                out[key] = default
        elif type(default) is float and type(value) is int:
            out[key] = float(value)     # a whole number where a fraction may go
        elif default is not None and type(value) is not type(default):
            problems.append(path + key + ' has the wrong type')
            out[key] = default
        else:
            out[key] = value
    return out


_DAY_S = 86400
_RTSP_MAX_SOCKETS = 3       # the dashboard keeps at least two clients, with MQTT


def parse(text):
    """Return (config, problems) from the text of a config file."""
    problems = []
    try:
        given = json.loads(text)
    except ValueError:
        return _merge(DEFAULTS, {}, '', problems), ['config.json is not valid JSON']
    if not isinstance(given, dict):
        return _merge(DEFAULTS, {}, '', problems), ['config.json must hold an object']
    config = _merge(DEFAULTS, given, '', problems)
    if config['auth'] not in ('on', 'off'):
        problems.append('auth must be "on" or "off"')
        config['auth'] = 'on'
    if not 0 <= config['clips']['timelapse_s'] <= _DAY_S:
        # one clip a day; and asyncio.sleep_ms() is only right within 6.2 days
        problems.append('clips.timelapse_s must be 0 to %d (a day)' % _DAY_S)
        config['clips']['timelapse_s'] = 0
    rtsp = config['rtsp']
    if not 1 <= rtsp['sockets'] <= _RTSP_MAX_SOCKETS:
        problems.append('rtsp.sockets must be 1 to %d' % _RTSP_MAX_SOCKETS)
        rtsp['sockets'] = DEFAULTS['rtsp']['sockets']
    for key in ('port', 'rtp_port'):
        if not 1 <= rtsp[key] <= 65534:
            problems.append('rtsp.%s must be 1 to 65534' % key)
            rtsp[key] = DEFAULTS['rtsp'][key]
    onvif = config['onvif']
    if onvif['on'] and not rtsp['on']:
        problems.append('onvif.on needs rtsp.on (its stream is the RTSP one)')
        onvif['on'] = False
    discovery = 1 if onvif['on'] and onvif['discovery'] else 0
    if discovery and rtsp['sockets'] + discovery > _RTSP_MAX_SOCKETS:
        rtsp['sockets'] = _RTSP_MAX_SOCKETS - discovery     # the dashboard keeps two
        problems.append('rtsp.sockets is %d at most with ONVIF discovery on' % rtsp['sockets'])
    # lwIP's 10 sockets: listener + 7 clients + DNS + NTP leave none for
    # MQTT, RTSP or discovery; they take theirs from the dashboard's clients
    room = DEFAULTS['limits']['max_connections'] - (1 if config['mqtt']['host'] else 0) - (
        1 + rtsp['sockets'] if rtsp['on'] else 0) - discovery
    limits = given.get('limits')
    if not (isinstance(limits, dict) and 'max_connections' in limits):
        config['limits']['max_connections'] = room
    elif rtsp['on'] and config['limits']['max_connections'] > room:
        problems.append('limits.max_connections is %d at most with RTSP on (lwIP has 10 sockets)'
                        % room)
        config['limits']['max_connections'] = room
    return config, problems


FILE = 'config.json'          # on the board's flash, beside boot.py


def load(path=FILE):
    """Return (config, problems); a missing or broken file gives the defaults."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return _merge(DEFAULTS, {}, '', []), [path + ' not found']
    return parse(text)

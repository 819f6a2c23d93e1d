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
             'discovery': True, 'discovery_prefix': 'homeassistant',
             # what a broker's client may ask of the board (README, Threat model):
             # "all", "read-only" (status and the latest frame) or "none"
             'commands': 'all'},
    'auth': 'on',               # "off": no password anywhere (the dashboard warns)
    'login': {'session_h': 168, 'max_sessions': 8,   # browser sessions (cookies)
              'lock_after': 3, 'backoff_s': 2,        # failures; then 2, 4, 8 ... s
              'backoff_max_s': 900, 'clients': 16,   # addresses remembered
              # password checks for the whole board, whatever the address
              'password_burst': 10, 'password_every_s': 60},
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


# The range of every number in the config, by path: (lowest, highest[, why]),
# or a list of the values it may take. The settings table's rows check their own.
_DAY_S = 86400
_PIN = (-1, 39)                 # an ESP32 GPIO, or -1: none
_PORT = (1, 65535)
RANGES = {
    'wifi_timeout_s': (1, 300), 'tz_offset_min': (-720, 840), 'http_port': _PORT,
    'camera.fps': (1, 60), 'camera.pins.vsync_pin': _PIN, 'camera.pins.href_pin': _PIN,
    'camera.pins.pclk_pin': _PIN, 'camera.pins.xclk_pin': _PIN, 'camera.pins.sda_pin': _PIN,
    'camera.pins.scl_pin': _PIN, 'camera.pins.powerdown_pin': _PIN,
    'camera.pins.reset_pin': _PIN,
    'motion.cooldown_s': (0, 3600), 'motion.pir_pin': _PIN, 'motion.pir_debounce_ms': (0, 60000),
    'sd.width': [1, 4], 'sd.min_free_bytes': (0, 2147483647),
    'clips.preroll_s': (0, 30), 'clips.preroll_bytes': (0, 4194304), 'clips.tail_s': (0, 600),
    'clips.max_s': (1, 3600),
    # one clip a day; and asyncio.sleep_ms() is only right within 6.2 days
    'clips.timelapse_s': (0, _DAY_S, ' (a day)'), 'clips.timelapse_fps': (1, 60),
    'flash_pin': _PIN, 'safe_pin': _PIN, 'watchdog_s': (0, 3600), 'ota_health_s': (5, 3600),
    'stream_max_fps': (1, 60),
    'mqtt.port': (0, 65535), 'mqtt.keepalive_s': (1, 65535), 'mqtt.backoff_max_s': (1, 3600),
    'mqtt.state_s': (1, _DAY_S), 'mqtt.camera_s': (0, _DAY_S),
    'login.session_h': (1, 8760), 'login.max_sessions': (1, 32), 'login.lock_after': (1, 100),
    'login.backoff_s': (1, 3600), 'login.backoff_max_s': (1, _DAY_S), 'login.clients': (1, 64),
    'login.password_burst': (1, 1000), 'login.password_every_s': (1, _DAY_S),
    'setup.dns_port': _PORT,
    'snapshot_rate.burst': (1, 100000), 'snapshot_rate.per_s': (0.001, 100000),
    'limits.max_connections': (1, 32), 'limits.head_timeout_s': (1, 300),
    'limits.write_timeout_s': (1, 300), 'limits.ws_ping_s': (1, 3600),
    'limits.dead_peer_s': (1, 3600), 'limits.max_body': (1024, 1048576),
    'limits.max_ws_message': (128, 65536), 'limits.heartbeat_s': (1, 60),
}
_MAX_PROBLEMS = 20              # reported in the status: a bounded list


def _distance(a, b):
    """Levenshtein distance of two short strings (a misspelt key's)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        prev, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            prev, row[j + 1] = row[j + 1], min(row[j + 1] + 1, row[j] + 1, prev + (ca != cb))
    return row[-1]


def _unknown(key, known):
    """The problem for an unknown key, naming the known one it resembles."""
    near = [k for k in known if _distance(key, k) <= 2]
    return ' is not a known key' + (' (did you mean %s?)' % near[0] if near else '')


def _merge(defaults, given, path, problems):
    out = {}
    for key in given:
        if key not in defaults:
            problems.append(path + str(key) + _unknown(str(key), defaults))
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


_RTSP_MAX_SOCKETS = 3       # the dashboard keeps at least two clients, with MQTT
MQTT_COMMANDS = ('all', 'read-only', 'none')


def _check_ranges(config, problems):
    # a number out of its range, or a setting the table refuses: the default
    for path, limits in RANGES.items():
        keys = path.split('.')
        parent, default = config, DEFAULTS
        for key in keys[:-1]:
            parent, default = parent[key], default[key]
        value = parent[keys[-1]]
        if isinstance(limits, list):
            ok, wanted = value in limits, ' or '.join(str(v) for v in limits)
        else:
            ok = limits[0] <= value <= limits[1]
            wanted = '%s to %s' % limits[:2] + (limits[2] if len(limits) > 2 else '')
        if not ok:
            problems.append('%s must be %s; %r used' % (path, wanted, default[keys[-1]]))
            parent[keys[-1]] = default[keys[-1]]
    for name, row in _settings.TABLE.items():
        owner = config.get(row[2])
        if owner is not None and not _settings.valid(row[1], owner[name]):
            problems.append('%s.%s must be %s; %r used'
                            % (row[2], name, _settings.describe(row[1]), row[0]))
            owner[name] = row[0]
    pins = config['camera']['pins']['data_pins']
    if len(pins) != 8 or [p for p in pins if type(p) is not int or not 0 <= p <= 39]:
        problems.append('camera.pins.data_pins must be 8 GPIO numbers; the AI-Thinker\'s used')
        config['camera']['pins']['data_pins'] = DEFAULTS['camera']['pins']['data_pins']


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
    _check_ranges(config, problems)
    if config['mqtt']['commands'] not in MQTT_COMMANDS:
        problems.append('mqtt.commands must be "all", "read-only" or "none"')
        config['mqtt']['commands'] = 'none'     # unclear: the narrowest door
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
    del problems[_MAX_PROBLEMS:]
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

"""Board start-up, run by boot.py: config, Wi-Fi, hostname, SD card.

The result is kept in `started` so main.py finds it without redoing it.
Nothing here may raise: a board that cannot start its app must still come
up on the network so it can be fixed.
"""
import time

started = None
AP_PASSWORD_FILE = 'ap_password.txt'
_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'  # 31 letters, none confusable: ~59 bits
_AUTH_WPA2_PSK = 3              # wifi_auth_mode_t
_CPU_HZ = 240000000             # the ESP32's highest clock


class Started:
    """What start-up brought up: the config, the address, the card, and
    why the app must not start (safe mode), if it must not."""

    def __init__(self, config, ip, card_mounted, safe, access_point=False, setup=False,
                 problems=()):
        self.config = config
        self.problems = problems            # what config.json got wrong (reported)
        self.ip = ip
        self.card_mounted = card_mounted
        self.safe = safe
        self.access_point = access_point    # serving on the board's own network
        self.setup = setup                  # no dashboard password yet: setup only


def url(ip, port, tls=False):
    """The board's URL as a person types it: no port when it is the
    scheme's own (80 for http, 443 for https)."""
    scheme = 'https' if tls else 'http'
    if port == (443 if tls else 80):
        return '%s://%s/' % (scheme, ip)
    return '%s://%s:%d/' % (scheme, ip, port)


def _connect_wifi(config):
    import network
    try:
        network.hostname(config['hostname'])
    except Exception as exc:
        print('wifi: hostname not set:', exc)
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    for net in config['wifi']:
        ssid = net.get('ssid') if isinstance(net, dict) else None
        if not ssid:
            continue
        print('wifi: connecting to', ssid)
        sta.connect(ssid, net.get('password', ''))
        deadline = time.ticks_add(time.ticks_ms(), config['wifi_timeout_s'] * 1000)
        while not sta.isconnected() and time.ticks_diff(deadline, time.ticks_ms()) > 0:
            time.sleep_ms(200)
        if sta.isconnected():
            ip = sta.ifconfig()[0]
            print('wifi: connected, ip', ip)
            return ip, False
        sta.disconnect()
    sta.active(False)
    return _start_ap(network, config['ap']), True


def _start_ap(network, ap_config):
    # WPA2 always: config(essid=, password=) alone leaves the ESP32's AP open
    ssid = ap_config['ssid']
    password = ap_password(ap_config.get('password'))
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    security = getattr(network.WLAN, 'SEC_WPA2', None)
    if security is not None:
        ap.config(essid=ssid, password=password, security=security)
    else:
        ap.config(essid=ssid, password=password, authmode=_AUTH_WPA2_PSK)  # older firmware
    ip = ap.ifconfig()[0]
    print('wifi: no network; access point %s (WPA2, password %s) at %s' % (ssid, password, ip))
    return ip


def ap_password(configured=None):
    """The access point's WPA2 password: config.json's "ap"."password" if it
    is a valid one, else this board's own, made at random on first use and
    kept on flash (AP_PASSWORD_FILE) so it survives reboots."""
    if configured is not None:
        if isinstance(configured, str) and 8 <= len(configured) <= 63:
            return configured
        print('config: ap.password must be 8 to 63 characters; using the board\'s own')
    try:
        with open(AP_PASSWORD_FILE) as f:
            password = f.read().strip()
        if 8 <= len(password) <= 63:
            return password
    except OSError:
        pass
    import os
    letters = [_ALPHABET[b % len(_ALPHABET)] for b in os.urandom(12)]
    password = '-'.join(''.join(letters[i:i + 4]) for i in (0, 4, 8))
    try:
        with open(AP_PASSWORD_FILE, 'w') as f:
            f.write(password)
    except OSError as exc:
        print('wifi: access point password not saved:', exc)
    return password


def _safe_mode(config):
    # a SAFE file on flash, or the configured pin held low at power-on
    try:
        open('SAFE').close()
        return 'SAFE file found'
    except OSError:
        pass
    if config['safe_pin'] >= 0:
        import machine
        pin = machine.Pin(config['safe_pin'], machine.Pin.IN, machine.Pin.PULL_UP)
        if pin.value() == 0:
            return 'pin %d held low' % config['safe_pin']
    return None


def _full_speed():
    # the esp32 port starts the CPU at 160 MHz: 240 MHz is 1.5x the frames
    # analysed and streamed a second (README: How fast on a real board)
    try:
        import machine
        machine.freq(_CPU_HZ)
    except Exception as exc:
        print('cpu: clock not set:', exc)


def run(config_path=None):
    """Bring the board up; never raises. Returns a Started."""
    global started
    from firmware import config as config_module
    from firmware.card import mount_card
    from firmware import auth
    config, problems = config_module.load(config_path or config_module.FILE)
    for problem in problems:
        print('config:', problem)
    _full_speed()
    access_point = False
    try:
        ip, access_point = _connect_wifi(config)
    except Exception as exc:
        print('wifi: failed:', exc)
        ip = '0.0.0.0'
    setup_needed = auth.setup_needed(config, auth.load())
    if config['auth'] == 'off':
        print('auth: OFF ("auth": "off" in config.json): anyone on the network is let in')
    card_mounted = mount_card(config['sd']['mount'], config['sd']['width'])
    safe = _safe_mode(config)
    if safe:
        print('safe mode (%s): the app will not start. Fix the board over USB, '
              'then remove SAFE (mpremote rm :SAFE) and reset.' % safe)
    started = Started(config, ip, card_mounted, safe, access_point, setup_needed, problems)
    return started

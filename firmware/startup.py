"""Board start-up, run by boot.py: config, Wi-Fi, hostname, SD card.

The result is kept in `started` so main.py finds it without redoing it.
Nothing here may raise: a board that cannot start its app must still come
up on the network so it can be fixed.
"""
import time

started = None


class Started:
    """What start-up brought up: the config, the address, the card, and
    why the app must not start (safe mode), if it must not."""

    def __init__(self, config, ip, card_mounted, safe):
        self.config = config
        self.ip = ip
        self.card_mounted = card_mounted
        self.safe = safe


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
            return ip
        sta.disconnect()
    sta.active(False)
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(essid=config['ap']['ssid'], password=config['ap']['password'])
    ip = ap.ifconfig()[0]
    print('wifi: no network; access point', config['ap']['ssid'], 'at', ip)
    return ip


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


def run(config_path='config.json'):
    """Bring the board up; never raises. Returns a Started."""
    global started
    from firmware import config as config_module
    from firmware.storage import mount_card
    config, problems = config_module.load(config_path)
    for problem in problems:
        print('config:', problem)
    try:
        ip = _connect_wifi(config)
    except Exception as exc:
        print('wifi: failed:', exc)
        ip = '0.0.0.0'
    card_mounted = mount_card(config['sd']['mount'], config['sd']['width'])
    safe = _safe_mode(config)
    if safe:
        print('safe mode (%s): the app will not start. Fix the board over USB, '
              'then remove SAFE (mpremote rm :SAFE) and reset.' % safe)
    started = Started(config, ip, card_mounted, safe)
    return started

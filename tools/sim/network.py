# Simulator only, never goes onto a board: a Wi-Fi that connects to any network
# except the SSIDs listed in the fault "wifi_fail" (true = all of them), an
# access point that keeps its security mode as the ESP32 does, and the DNS
# that socket.getaddrinfo() asks for names.
import simctl
import time

STA_IF = 0
AP_IF = 1
_hostname = 'esp32'
_interfaces = {}        # interface -> its state
_DNS_MS = 30            # a lookup through the router takes tens of ms
_SCAN_MS = 300          # an active scan of every channel takes ~2 s on the board
# the networks a scan finds: a home, neighbours, a name that is markup
_NEIGHBOURS = [(b'simnet', 6, -48, 3), (b'Neighbour-5G', 36, -71, 4),
               (b'<b>cafe</b> & "free"', 1, -80, 0), (b'simnet', 11, -77, 3),
               (b'FRITZ!Box 7530 XY', 1, -63, 7)]


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


class WLAN:
    # wifi_auth_mode_t, as ports/esp32/network_wlan.c names them
    SEC_OPEN = 0
    SEC_WEP = 1
    SEC_WPA = 2
    SEC_WPA2 = 3
    SEC_WPA_WPA2 = 4
    SEC_WPA2_ENT = 5
    SEC_WPA3 = 6
    SEC_WPA2_WPA3 = 7

    def __init__(self, interface=STA_IF):
        # one interface however many WLAN objects: they share its state
        self.interface = interface
        if interface not in _interfaces:
            # ESP-IDF's AP default: open, whatever password is set
            _interfaces[interface] = {'active': False, 'connected': False,
                                      'config': {'security': self.SEC_OPEN, 'password': ''}}
        self._state = _interfaces[interface]

    def active(self, on=None):
        if on is None:
            return self._state['active']
        self._state['active'] = bool(on)
        if not on:
            self._state['connected'] = False
        self._announce()

    def connect(self, ssid=None, password=None):
        failing = simctl.fault('wifi_fail')
        self._state['connected'] = not (failing is True or
                                        (isinstance(failing, list) and ssid in failing))

    def scan(self):
        """What the ESP32 returns: (ssid, bssid, channel, RSSI, security,
        hidden), in no particular order; needs the interface active."""
        if not self._state['active']:
            raise OSError('STA must be active')
        time.sleep_ms(_SCAN_MS)
        return [(ssid, bytes([2, 0, 0, 0, 0, i]), channel, rssi, security, False)
                for i, (ssid, channel, rssi, security) in enumerate(_NEIGHBOURS)]

    def disconnect(self):
        self._state['connected'] = False

    def isconnected(self):
        return self._state['connected']

    def status(self, *args):
        if args and args[0] == 'rssi':
            return -58
        return 1010 if self._state['connected'] else 1000

    def ifconfig(self, *args):
        if self.interface == AP_IF:
            return ('192.168.4.1', '255.255.255.0', '192.168.4.1', '192.168.4.1')
        return ('127.0.0.1', '255.0.0.0', '127.0.0.1', '127.0.0.1')

    def config(self, *args, **kwargs):
        if args:
            key = 'security' if args[0] == 'authmode' else args[0]
            if key == 'mac':
                return _mac()
            if key == 'password':
                raise ValueError('unknown config param')    # never readable back
            return self._state['config'].get(key)
        config = dict(self._state['config'])
        for key, value in kwargs.items():
            config['security' if key == 'authmode' else key] = value
        if self.interface == AP_IF and config['security'] != self.SEC_OPEN:
            # esp_wifi_set_config() refuses a WPA key outside 8..63 characters
            if not 8 <= len(config['password']) <= 63:
                raise OSError('Wifi Invalid Password')
        self._state['config'] = config
        self._announce()

    def _announce(self):
        # what a phone scanning for networks would see
        config = self._state['config']
        if self.interface == AP_IF and self._state['active'] and config.get('essid'):
            security = config['security']
            print('sim: access point %r, %s%s' % (
                config['essid'], _SECURITY.get(security, str(security)),
                '' if security == self.SEC_OPEN else ', key %r' % config['password']))


_SECURITY = {0: 'open', 1: 'WEP', 2: 'WPA-PSK', 3: 'WPA2-PSK', 4: 'WPA/WPA2-PSK',
             6: 'WPA3-PSK', 7: 'WPA2/WPA3-PSK'}


def _mac():
    """The board's MAC: SIM_BOARD_ID (12 hex digits), else one made from
    the board's port, so boards side by side never share an id."""
    import binascii
    given = simctl.env('SIM_BOARD_ID')
    if given:
        return binascii.unhexlify(given)
    return b'\x02\xca' + int(simctl.env('SIM_PORT', '8080')).to_bytes(4, 'big')


def sim_resolve(host, port):
    """DNS for socket.getaddrinfo(): blocks as lwIP's lookup does. The NTP
    pool resolves to the simulator's NTP server on loopback; with the fault
    "dns_fail", or for any other name, the lookup fails as on the ESP32
    (OSError -202, lwIP's EAI_FAIL)."""
    time.sleep_ms(_DNS_MS)
    ntp_port = simctl.env('SIM_NTP_PORT')
    if host.endswith('pool.ntp.org') and ntp_port and not simctl.fault('dns_fail'):
        return ('127.0.0.1', int(ntp_port))
    raise OSError(-202)

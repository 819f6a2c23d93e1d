# Simulator only, never goes onto a board: a Wi-Fi that connects to any network
# except the SSIDs listed in the fault "wifi_fail" (true = all of them).
import simctl

STA_IF = 0
AP_IF = 1
_hostname = 'esp32'


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False
        self._connected = False
        self._config = {}

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def connect(self, ssid=None, password=None):
        failing = simctl.fault('wifi_fail')
        self._connected = not (failing is True or
                               (isinstance(failing, list) and ssid in failing))

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        return self._connected

    def status(self, *args):
        return 1010 if self._connected else 1000

    def ifconfig(self, *args):
        if self.interface == AP_IF:
            return ('192.168.4.1', '255.255.255.0', '192.168.4.1', '192.168.4.1')
        return ('127.0.0.1', '255.0.0.0', '127.0.0.1', '127.0.0.1')

    def config(self, *args, **kwargs):
        if args:
            return self._config.get(args[0])
        self._config.update(kwargs)

"""First-boot setup: while no dashboard password is set, the board serves
only /setup (on its WPA2 access point, or on the home network when Wi-Fi is
configured already), with a DNS responder on the access point so phones
show it as a captive portal. The page takes a Wi-Fi network and a dashboard
password, saves them (.part, then rename), shows the API token once and
restarts the board into the home network."""
import asyncio
import json
import os

from firmware import auth, config as config_module, pages
from firmware.guard import SESSIONS_FILE, Guard
from firmware.server import Server

_MAX_NETWORKS = 12
_RESTART_MS = 1500              # time for the reply to reach the browser


def scan():
    """(SSID, RSSI dBm, open) of the networks in reach, strongest first, each
    name once (blocks ~2 s on the board: done once, before serving)."""
    import network
    sta = network.WLAN(network.STA_IF)
    try:
        sta.active(True)
        found = sta.scan()
    except OSError as exc:
        print('setup: scan failed:', exc)
        return []
    found = sorted(found, key=lambda net: -net[3])
    names = []
    networks = []
    for net in found:
        try:
            name = net[0].decode()
        except UnicodeError:
            continue
        if name and name not in names and len(names) < _MAX_NETWORKS:
            names.append(name)
            networks.append((name, net[3], net[4] == 0))    # security 0: open
    return networks


def save_wifi(ssid, password, path=config_module.FILE):
    """Put the network first in config.json's "wifi" list (.part, rename)."""
    try:
        with open(path) as f:
            given = json.load(f)
    except (OSError, ValueError):
        given = {}
    if not isinstance(given, dict):
        given = {}
    others = given.get('wifi') if isinstance(given.get('wifi'), list) else []
    given['wifi'] = [{'ssid': ssid, 'password': password}] + [
        net for net in others if not (isinstance(net, dict) and net.get('ssid') == ssid)]
    with open(path + '.part', 'w') as f:
        json.dump(given, f)
    os.rename(path + '.part', path)


def check_form(form, wifi_known):
    """(ssid, wifi password, dashboard password), or an error message."""
    if form is None:
        return 'Fill in the form.'
    ssid = form.get('ssid', '').strip()
    wifi_password = form.get('wifi_password', '')
    password = form.get('password', '')
    if not ssid and not wifi_known:
        return 'Choose a Wi-Fi network.'
    if len(ssid) > 32 or len(wifi_password) > 63:
        return 'That network name or Wi-Fi password is too long.'
    if wifi_password and len(wifi_password) < 8:
        return 'A WPA2 Wi-Fi password has 8 or more characters.'
    if not 8 <= len(password) <= 128:
        return 'The dashboard password needs 8 to 128 characters.'
    if password != form.get('password2', ''):
        return 'The two passwords differ.'
    return ssid, wifi_password, password


async def _restart(portal):
    await asyncio.sleep_ms(_RESTART_MS)
    portal.stop()
    import machine
    machine.reset()


def create_app(config, ip, networks, portal):
    """The setup app: /setup, and redirects to it."""
    app = Server(config['limits'])
    guard = Guard(config, ip)
    wifi_known = bool(config['wifi'])
    setup_url = 'http://%s/setup' % ip

    @app.before_request
    def only_setup(request):
        if not guard.host_ok(request):
            # a phone's connectivity check under another name: send it here
            if request.method == 'GET':
                return '', 302, {'Location': setup_url}
            return 'Unknown host', 421
        if request.path != '/setup':
            if request.method == 'GET':
                return '', 302, {'Location': '/setup'}
            return 'Set up the camera first', 401
        return guard.cross_site(request, None)

    @app.get('/setup')
    async def setup_form(request):
        return pages.setup(networks, wifi_known)

    @app.post('/setup')
    async def setup_save(request):
        checked = check_form(request.form, wifi_known)
        if isinstance(checked, str):
            return pages.setup(networks, wifi_known, checked, 400)
        ssid, wifi_password, password = checked
        token = auth.new_token()
        try:
            try:
                os.remove(SESSIONS_FILE)    # a new password: nobody stays logged in
            except OSError:
                pass
            await auth.save(password, token)
            if ssid:
                save_wifi(ssid, wifi_password)
        except OSError as exc:
            return pages.setup(networks, wifi_known, 'Not saved: %s' % exc, 500)
        print('setup: saved; API token for scripts (shown once): %s' % token)
        print('setup: restarting')
        asyncio.create_task(_restart(portal))
        return pages.setup_done(ssid, token)

    # every other path, so that only_setup runs (and redirects) for it too
    @app.route('/', methods=['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
    @app.route('/<path:path>', methods=['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
    async def elsewhere(request, path=''):
        return 'Not found', 404         # never reached: only_setup answers first

    return app


def run(started):
    """Serve the setup flow until it restarts the board."""
    from firmware.dnsportal import DnsPortal
    config = started.config
    networks = scan()
    portal = DnsPortal(started.ip, config['setup']['dns_port'])
    if started.access_point:
        portal.start()
    app = create_app(config, started.ip, networks, portal)
    print('setup: no dashboard password yet; open http://%s/setup' % started.ip)

    async def serve():
        asyncio.create_task(app.reap())
        await app.start_server(host='0.0.0.0', port=config['http_port'])

    try:
        asyncio.run(serve())
    finally:
        portal.stop()

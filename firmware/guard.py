"""Who may talk to the board: Host check, optional token, WebSocket Origin.

- A request whose Host names another machine is refused (DNS rebinding:
  a web page on evil.example resolving its name to the board's address).
- With `auth_token` set, every route needs it: the HttpOnly cookie set by
  the login form (browsers cannot put headers on EventSource or WebSocket),
  `?token=` or `Authorization: Bearer` for scripts. Comparisons take the
  same time whatever the guess, and the token is never logged or served.
- /control accepts an Origin only from the board itself or the allowlist.
"""
import binascii
import hashlib
from micropython import const
from firmware import ticks

COOKIE = 'camauth'
_MAX_FAILURES = const(5)
_LOCKOUT_MS = const(10000)

LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>ESP32-CAM login</title>
<style>body{font:16px system-ui,sans-serif;background:#101418;color:#e8eef2;display:grid;
place-items:center;min-height:100vh;margin:0}form{display:grid;gap:.6rem;width:min(20rem,90vw)}
input,button{font:inherit;padding:.6rem;border-radius:.4rem;border:1px solid #456}
button{background:#2f8cff;color:#fff;border:0}</style></head><body>
<form method="post" action="/login"><h1>ESP32-CAM</h1>%s
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>"""


def same(a, b):
    """Compare two strings in time that depends only on the first's length."""
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    diff = len(a) ^ len(b)
    for i in range(len(a)):
        diff |= a[i] ^ (b[i] if i < len(b) else 0)
    return diff == 0


def session_value(token):
    """The cookie value: derived from the token, so the cookie is not it."""
    digest = hashlib.sha256(b'esp32cam-session:' + token.encode()).digest()
    return binascii.hexlify(digest).decode()


def _host_only(host):
    if host.startswith('['):                       # [::1]:8080
        return host[1:host.find(']')].lower()
    return host.rsplit(':', 1)[0].lower() if host.count(':') == 1 else host.lower()


class Guard:
    """The before-request checks, set up from the config and board identity."""

    def __init__(self, config, ip):
        name = config['hostname'].lower()
        self.hosts = {ip, name, name + '.local', 'localhost', '127.0.0.1', '::1',
                      '192.168.4.1'}
        for host in config['allowed_hosts']:
            self.hosts.add(host.lower())
        self.origins = config['allowed_origins']
        self.token = config['auth_token'] or None
        self.session = session_value(self.token) if self.token else None
        self.failures = 0
        self.locked_until = None

    def host_ok(self, request):
        host = request.headers.get('Host')
        return host is None or _host_only(host) in self.hosts

    def origin_ok(self, request):
        origin = request.headers.get('Origin')
        if origin is None:
            return True                             # not a browser: scripts
        if origin in self.origins:
            return True
        scheme_end = origin.find('://')
        host = request.headers.get('Host', '')
        return scheme_end > 0 and origin[scheme_end + 3:].lower() == host.lower()

    def authorised(self, request):
        if self.token is None:
            return True
        cookie = request.cookies.get(COOKIE)
        if cookie and same(cookie, self.session):
            return True
        given = request.args.get('token')
        bearer = request.headers.get('Authorization', '')
        if bearer.startswith('Bearer '):
            given = bearer[7:]
        return given is not None and same(given, self.token)

    def check_login(self, given):
        """True for the right token; locks out after repeated failures."""
        now = ticks.now_ms()        # a lockout must end, however long ago it was
        if self.locked_until is not None and now < self.locked_until:
            return False
        if given is not None and same(given, self.token):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= _MAX_FAILURES:
            self.failures = 0
            self.locked_until = now + _LOCKOUT_MS
        return False

    def before_request(self, request):
        """A refusal response, or None to go on."""
        if not self.host_ok(request):
            return 'Unknown host', 421
        if request.path == '/login' or self.authorised(request):
            if request.path == '/control' and not self.origin_ok(request):
                return 'Forbidden origin', 403
            return None
        if request.method == 'GET' and request.path == '/':
            return '', 302, {'Location': '/login'}
        return 'Unauthorized', 401, {'WWW-Authenticate': 'Bearer'}


def login_page(message=''):
    return LOGIN_PAGE % message, 200, {'Content-Type': 'text/html; charset=UTF-8'}

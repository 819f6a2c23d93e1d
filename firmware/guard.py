"""Who may talk to the board: Host check, credentials, sessions, per-client
backoff, same-origin proof for state changes.

- A request whose Host names another machine is refused (DNS rebinding).
- Every route but /login needs a session cookie (HttpOnly, SameSite=Strict;
  browsers cannot put headers on EventSource or WebSocket) or the API token
  (`Authorization: Bearer`, or `?token=` for CameraWebServer-style URLs).
- Wrong passwords and tokens from one client address back off
  exponentially (429, Retry-After); other addresses are not affected.
- Password checks also have one budget for the whole board (PasswordBudget)
  and run one at a time: guessing from many addresses buys no more guesses
  than the budget, forgetting an address buys none, and a guess waiting
  its turn is answered 429 at once instead of holding a connection slot.
- When all connection slots are taken, one past its head may be given to a
  newcomer unless it came with a valid session or token or its password is
  being checked (keep_connection, server.Server's `keep`): guessers never
  crowd out the owner.
- POST, DELETE and /control (GET API and WebSocket) need same-origin proof:
  Sec-Fetch-Site, Origin or Referer naming this board, or, with none of
  them (not a browser), the API token.
The before_request checks read only the head, never the body.
"""
from firmware import auth, ticks, waiting

COOKIE = 'camauth'
SESSIONS_FILE = 'sessions.json'
_SAFE_METHODS = ('GET', 'HEAD', 'OPTIONS')
_OPEN_PATHS = ('/login',)       # its handler checks the password and the lockout


def _host_only(host):
    """The name in a Host header, lower case; None if it is malformed."""
    host = host.lower()
    if host.startswith('['):                    # [::1]:8080
        end = host.find(']')
        rest = host[end + 1:] if end > 0 else None
        if rest is None or not (rest == '' or (rest[0] == ':' and rest[1:].isdigit())):
            return None
        return host[1:end]
    name, sep, port = host.partition(':')
    if sep and not (port.isdigit() and ':' not in port):
        return None
    return name


def origin_of(url):
    """scheme://host[:port] of a URL (a Referer), or None."""
    start = url.find('://')
    if start <= 0:
        return None
    end = url.find('/', start + 3)
    return url if end < 0 else url[:end]


class Backoff:
    """Failed credentials per client address: the `lock_after`th failure in
    a row locks that address out for backoff_s, each further one for twice
    as long as the one before (up to backoff_max_s); a success forgets them.
    At most `size` addresses are kept; the least recently seen goes first."""

    def __init__(self, limits):
        self.lock_after = max(1, limits['lock_after'])
        self.base_ms = limits['backoff_s'] * 1000
        self.max_ms = limits['backoff_max_s'] * 1000
        self.size = limits['clients']
        self.clients = {}               # address -> [failures, locked until, last seen]

    def locked_s(self, address):
        """Seconds left of this address's lockout (0: not locked)."""
        entry = self.clients.get(address)
        if entry is None:
            return 0
        left = entry[1] - ticks.now_ms()
        return (left + 999) // 1000 if left > 0 else 0

    def failed(self, address):
        now = ticks.now_ms()
        entry = self.clients.get(address)
        if entry is None:
            if len(self.clients) >= self.size:
                oldest = min(self.clients, key=lambda a: self.clients[a][2])
                del self.clients[oldest]
            entry = self.clients[address] = [0, 0, now]
        entry[0] += 1
        entry[2] = now
        over = entry[0] - self.lock_after
        if over >= 0:
            entry[1] = now + min(self.max_ms, self.base_ms << min(over, 20))

    def succeeded(self, address):
        self.clients.pop(address, None)


class PasswordBudget:
    """Password checks for the whole board, whatever the address: `burst`
    at most, one more every `every_s`; a check takes one, a correct password
    gives it back. Bounded by what the board can afford, not by how many
    addresses a guesser has."""

    def __init__(self, limits):
        self.burst = max(1, limits['password_burst'])
        self.every_ms = max(1, limits['password_every_s']) * 1000
        self.left = self.burst
        self.stamp = ticks.now_ms()     # when `left` was last topped up (never wraps)

    def _top_up(self, now):
        gained = (now - self.stamp) // self.every_ms
        if gained:
            self.left = min(self.burst, self.left + gained)
            self.stamp = now if self.left == self.burst else self.stamp + gained * self.every_ms

    def take(self):
        """0 when a check may run (one is taken), else seconds until one may."""
        now = ticks.now_ms()
        self._top_up(now)
        if self.left > 0:
            if self.left == self.burst:
                self.stamp = now        # the refill clock starts with the first one taken
            self.left -= 1
            return 0
        return max(1, (self.stamp + self.every_ms - now + 999) // 1000)

    def give_back(self):
        self.left = min(self.burst, self.left + 1)


class Sessions:
    """Logged-in browsers: random session ids with an expiry, at most `size`
    (a new login pushes out the oldest). Kept on flash as their SHA-256 and
    time left (SESSIONS_FILE, rewritten at each login and logout), so a
    restart does not log everyone out; the time the board was off is not
    counted (it has no clock it can trust at boot)."""

    def __init__(self, limits, path=None):
        self.lifetime_ms = limits['session_h'] * 3600000
        self.size = limits['max_sessions']
        self.path = path
        self.table = []                 # [SHA-256 of the id, expires at (ticks.now_ms())]
        if path:
            self._load(path)

    def new(self):
        import binascii
        import os
        now = ticks.now_ms()
        self.table = [s for s in self.table if s[1] > now]
        if len(self.table) >= self.size:
            self.table.sort(key=lambda s: s[1])
            self.table.pop(0)
        value = binascii.hexlify(os.urandom(16)).decode()
        self.table.append([auth.token_digest(value), now + self.lifetime_ms])
        self._save()
        return value

    def find(self, value):
        """The live session with this id, or None; looks at every entry."""
        if not value or len(value) != 32:
            return None
        now = ticks.now_ms()
        found = None
        given = auth.token_digest(value)
        for session in self.table:
            if auth.same(given, session[0]) and session[1] > now:
                found = session
        return found

    def drop(self, value):
        session = self.find(value)
        if session is not None:
            self.table.remove(session)
            self._save()

    def _load(self, path):
        import binascii
        import json
        now = ticks.now_ms()
        try:
            with open(path) as f:
                saved = json.load(f)
            for digest, left_ms in saved[-self.size:]:
                if 0 < left_ms <= self.lifetime_ms:
                    self.table.append([binascii.unhexlify(digest), now + left_ms])
        except OSError:
            pass                        # nobody logged in yet
        except (ValueError, TypeError):
            print('auth: %s is damaged; everyone logs in again' % path)

    def _save(self):
        path = self.path
        if not path:
            return
        import binascii
        import json
        import os
        now = ticks.now_ms()
        rows = [[binascii.hexlify(s[0]).decode(), s[1] - now] for s in self.table if s[1] > now]
        try:
            with open(path + '.part', 'w') as f:
                json.dump(rows, f)
            os.rename(path + '.part', path)
        except OSError as exc:
            print('auth: sessions not saved:', exc)


def client_address(request):
    addr = request.client_addr
    return addr[0] if isinstance(addr, (tuple, list)) and addr else '?'


def locked_reply(seconds, why='locked'):
    return ('%s, try again in %d s' % (why, seconds), 429,
            {'Retry-After': str(seconds), 'Content-Type': 'text/plain; charset=UTF-8'})


class Guard:
    """The before-request checks, set up from the config, the board's
    address and the stored credentials (None: not set up)."""

    def __init__(self, config, ip, credentials=None, tls=False, sessions_file=None):
        name = config['hostname'].lower()
        self.hosts = {ip, name, name + '.local', 'localhost', '127.0.0.1', '::1',
                      '192.168.4.1'}
        for host in config['allowed_hosts']:
            self.hosts.add(host.lower())
        self.origins = config['allowed_origins']
        self.scheme = 'https://' if tls else 'http://'
        self.auth_on = config['auth'] != 'off'
        self.credentials = credentials
        self.backoff = Backoff(config['login'])
        self.budget = PasswordBudget(config['login'])
        self.sessions = Sessions(config['login'], sessions_file)
        self.checking = None            # the request whose password is being checked
        self.session_s = config['login']['session_h'] * 3600
        self.secure = tls

    # --- the Host header and same-origin proof -------------------------------
    def host_ok(self, request):
        host = request.headers.get('Host')
        return host is None or _host_only(host) in self.hosts

    def origin_ok(self, origin, request):
        if origin is None or origin == 'null':
            return False
        if origin in self.origins:
            return True
        return origin.lower() == self.scheme + request.headers.get('Host', '').lower()

    def cross_site(self, request, via):
        """A 403 reply for a state change without same-origin proof, else
        None. `via`: 'token' when the API token came with the request."""
        if request.method in _SAFE_METHODS and request.path != '/control':
            return None
        headers = request.headers
        site = headers.get('Sec-Fetch-Site')
        origin = headers.get('Origin')
        referer = headers.get('Referer')
        if site is None and origin is None and referer is None:
            proven = via in ('token', 'open')       # not a browser: a script
        else:
            proven = ((site is None or site in ('same-origin', 'none'))
                      and (origin is None or self.origin_ok(origin, request))
                      and (referer is None or self.origin_ok(origin_of(referer), request)))
        return None if proven else ('Cross-site request refused', 403)

    # --- credentials ------------------------------------------------------------
    def authenticate(self, request):
        """'session', 'token', None (no valid credential), or a 429 reply."""
        if self.sessions.find(request.cookies.get(COOKIE)) is not None:
            return 'session'
        given = request.args.get('token')
        bearer = request.headers.get('Authorization', '')
        if bearer.startswith('Bearer '):
            given = bearer[7:]
        if given is None:
            return None
        address = client_address(request)
        locked = self.backoff.locked_s(address)
        if locked:
            return locked_reply(locked)
        if self.credentials is not None and self.credentials.token_ok(given):
            self.backoff.succeeded(address)
            return 'token'
        self.backoff.failed(address)
        return None

    async def login(self, request, password):
        """(new session value, None), or (None, (message, status, headers))."""
        address = client_address(request)
        locked = self.backoff.locked_s(address)
        if locked:
            return None, locked_reply(locked)
        if self.checking is not None:   # one check at a time: a waiting one holds no slot
            return None, locked_reply(1, 'another login is being checked')
        wait = self.budget.take()       # taken before the check: one cut short counts too
        if wait:
            return None, locked_reply(wait, 'too many wrong passwords on this board')
        self.checking = request
        try:
            ok = self.credentials is not None and await waiting.answer(
                self.credentials.password_ok(password))
        finally:
            self.checking = None
        if ok:
            self.budget.give_back()
            self.backoff.succeeded(address)
            return self.sessions.new(), None
        self.backoff.failed(address)
        return None, ('Wrong password.', 401, {})

    def keep_connection(self, request):
        """Whether a connection past its head keeps its slot when all are
        taken: one that came with a valid credential, or whose password is
        being checked (one at most). Any other (a refusal, a guess) may go."""
        return request is self.checking or getattr(request.g, 'credential', None) is not None

    def session_cookie(self, value, max_age=None):
        """The Set-Cookie value for a session (value '' and max_age 0: clear)."""
        return '%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s' % (
            COOKIE, value, self.session_s if max_age is None else max_age,
            '; Secure' if self.secure else '')

    def before_request(self, request):
        """A refusal reply, or None to go on."""
        if not self.host_ok(request):
            return 'Unknown host', 421
        if request.path in _OPEN_PATHS:
            # the password in its body is the credential: scripts may post it
            return self.cross_site(request, 'token')
        via = self.authenticate(request) if self.auth_on else 'open'
        if isinstance(via, tuple):
            return via
        request.g.credential = via      # (None: keep_connection lets it go)
        if via is None:
            if request.method == 'GET' and request.path == '/':
                return '', 302, {'Location': '/login'}
            return 'Unauthorized', 401, {'WWW-Authenticate': 'Bearer'}
        return self.cross_site(request, via)

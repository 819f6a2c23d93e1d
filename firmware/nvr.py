"""The recorder login: a view-only credential for NVRs (user "recorder").

ONVIF's WS-UsernameToken digest is SHA-1(nonce + created + password), so
the board must hold that password in clear; it keeps neither the dashboard
password nor the API token so. Recorders get their own random password
instead (NVR_FILE, made on first boot, renewable by the owner), which lets
them only look: ONVIF queries, the RTSP stream, and GET /snapshot.jpg and
/stream over HTTP Basic or Digest. Wrong answers count toward the same
per-address lockout as every other login (guard.Backoff).
"""
import binascii
import json
import os
import time

from firmware import auth, digest
from firmware.guard import client_address, locked_reply

NVR_FILE = 'nvr.json'
USER = 'recorder'
VIEW_PATHS = ('/snapshot.jpg', '/stream')      # what the login opens over HTTP
_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'   # 31 letters, none confusable
_LENGTH = 20                                    # about 99 bits
_NONCE_S = 3600                 # HTTP Digest's nonce lives this long (and as long again as the old one)
_CREATED_S = 300                # a UsernameToken's Created this far from board time is refused


def _new_password():
    return ''.join(_ALPHABET[b % len(_ALPHABET)] for b in os.urandom(_LENGTH))


def _save(record, path):
    with open(path + '.part', 'w') as f:
        json.dump(record, f)
    os.rename(path + '.part', path)


class RecorderLogin:
    """The recorder's password (in clear: see the module's docstring), its
    Digest HA1, and the board's ONVIF device id; load() makes them."""

    def __init__(self, path=NVR_FILE):
        self.path = path
        self.password = ''
        self.ha1 = ''
        self.uuid = ''
        self.nonce = self.old_nonce = _new_nonce()      # HTTP Digest's, renewed hourly
        self.nonce_s = time.time()

    def load(self):
        """Read NVR_FILE; a missing or damaged one is made anew."""
        record = None
        try:
            with open(self.path) as f:
                record = json.load(f)
            if not (isinstance(record, dict) and isinstance(record.get('password'), str)
                    and len(record['password']) >= 12 and isinstance(record.get('uuid'), str)):
                print('nvr: %s is damaged; a new recorder password is made' % self.path)
                record = None
        except OSError:
            pass                        # set up before recorders had a login
        except ValueError:
            print('nvr: %s is damaged; a new recorder password is made' % self.path)
        if record is None:
            record = {'user': USER, 'password': _new_password(), 'uuid': new_uuid()}
            try:
                _save(record, self.path)
            except OSError as exc:
                print('nvr: recorder login not saved:', exc)
        self._use(record)
        return self

    def renew(self):
        """A new password (the old one stops working now); returns it."""
        record = {'user': USER, 'password': _new_password(), 'uuid': self.uuid}
        _save(record, self.path)
        self._use(record)
        return self.password

    def _use(self, record):
        self.password = record['password']
        self.uuid = record['uuid']
        self.ha1 = digest.ha1(USER, auth.RTSP_REALM, self.password)

    def view(self):
        """What the owner sees: user and password, and where they work."""
        return {'user': USER, 'password': self.password,
                'grants': 'view only: ONVIF, RTSP, /snapshot.jpg, /stream'}

    # --- HTTP ---------------------------------------------------------------
    def basic_ok(self, value):
        """Whether an 'Authorization: Basic ...' value names the recorder."""
        try:
            text = binascii.a2b_base64(value[6:].strip()).decode()
        except (ValueError, UnicodeError):
            return False
        user, sep, password = text.partition(':')
        return bool(sep) and user == USER and auth.same(password.encode(),
                                                       self.password.encode())

    def challenge(self, stale=False):
        """The WWW-Authenticate header of a refusal on a view path."""
        return 'Digest realm="%s", qop="auth", nonce="%s", algorithm=MD5%s' % (
            auth.RTSP_REALM, self.current_nonce(), ', stale=true' if stale else '')

    def current_nonce(self):
        """HTTP Digest's nonce, renewed each hour (the one before stays
        good for another hour): a sniffed answer is not replayable for long."""
        now = time.time()
        if not 0 <= now - self.nonce_s < _NONCE_S:      # an hour on, or the clock was set
            self.old_nonce, self.nonce, self.nonce_s = self.nonce, _new_nonce(), now
        return self.nonce

    def http_check(self, request, guard):
        """For GET of a view path with Basic or Digest: None (let in) or a
        refusal; 'guard' when the guard decides (anything else)."""
        value = request.headers.get('Authorization', '')
        if (request.method not in ('GET', 'HEAD') or request.path not in VIEW_PATHS
                or not (value.startswith('Basic ') or value.startswith('Digest '))):
            return 'guard'
        if not guard.host_ok(request):
            return 'Unknown host', 421
        address = client_address(request)
        locked = guard.backoff.locked_s(address)
        if locked:
            return locked_reply(locked)
        if value.startswith('Basic '):
            ok = self.basic_ok(value)
        else:
            given = digest.fields(value)
            if given is None:
                return 'Bad Authorization header', 400
            nonce = given.get('nonce')
            if nonce not in (self.current_nonce(), self.old_nonce):
                return self.refusal(stale=True)     # an old hour's or boot's: not a guess
            ok = (given.get('username') == USER and given.get('realm') == auth.RTSP_REALM
                  and given.get('uri', '').split('?')[0] == request.path
                  and digest.answer_ok(given, request.method, nonce, self.ha1))
        if ok:
            guard.backoff.succeeded(address)
            request.g.credential = 'recorder'      # its slot is kept (guard.keep_connection)
            return None
        guard.backoff.failed(address)
        return self.refusal()

    def refusal(self, stale=False):
        return 'Unauthorized', 401, {'WWW-Authenticate': self.challenge(stale)}

    def before_request(self, guard, soap_paths=()):
        """guard.before_request, with the recorder let in on the view paths
        (and a Digest challenge there, which NVRs need to answer); the
        soap_paths (ONVIF's) pass on to handlers that check WS-Security."""
        def check(request):
            if request.path in soap_paths:
                return None if guard.host_ok(request) else ('Unknown host', 421)
            refusal = self.http_check(request, guard)
            if refusal != 'guard':
                return refusal
            refusal = guard.before_request(request)
            # (not to browsers: a dashboard whose session ran out must not pop a login box)
            if (isinstance(refusal, tuple) and len(refusal) == 3 and refusal[1] == 401
                    and request.path in VIEW_PATHS and 'Sec-Fetch-Mode' not in request.headers):
                return self.refusal()
            return refusal
        return check

    # --- ONVIF (WS-Security UsernameToken) --------------------------------------
    def username_token_ok(self, body):
        """Whether a SOAP request's UsernameToken is the recorder's: the
        password digest SHA-1(nonce + created + password), or the password."""
        from firmware import soap
        import hashlib
        if soap.text(body, b'Username') != USER.encode():
            return False
        password = soap.text(body, b'Password')
        if password is None:
            return False
        if b'#PasswordText' in soap.tag(body, b'Password'):
            return auth.same(password, self.password.encode())
        nonce = soap.text(body, b'Nonce')
        created = soap.text(body, b'Created')
        if nonce is None or created is None or not _fresh(created):
            return False
        try:
            nonce = binascii.a2b_base64(nonce)
        except ValueError:
            return False
        expected = binascii.b2a_base64(
            hashlib.sha1(nonce + created + self.password.encode()).digest()).strip()
        return auth.same(expected, password)


def _new_nonce():
    return binascii.hexlify(os.urandom(12)).decode()


def _fresh(created):
    """Whether a UsernameToken's Created (xs:dateTime, UTC) is within
    _CREATED_S of board time; any is, until the clock is set."""
    from firmware import clock
    if not clock.is_set():
        return True
    try:
        c = created.decode()
        if c[4] != '-' or c[10] != 'T' or c[13] != ':':
            return False
        zone = c[19:]
        if zone[:1] == '.':                     # a fraction of a second
            zone = zone[1:].lstrip('0123456789')
        offset = 0                              # 'Z' (or no zone: taken as UTC)
        if len(zone) == 6 and zone[0] in '+-' and zone[3] == ':':   # +01:00
            offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == '+' else -1)
        elif zone not in ('Z', ''):
            return False
        stamp = time.mktime((int(c[:4]), int(c[5:7]), int(c[8:10]), int(c[11:13]),
                             int(c[14:16]), int(c[17:19]), 0, 0)) - offset
    except (ValueError, IndexError, UnicodeError, OverflowError):
        return False
    now = time.mktime(time.gmtime()[:8])        # the same conversion: no time zone between
    return abs(now - stamp) <= _CREATED_S


def new_uuid():
    """A random (version 4) UUID: the board's ONVIF endpoint address."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = binascii.hexlify(raw).decode()
    return '%s-%s-%s-%s-%s' % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

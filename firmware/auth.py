"""The dashboard password and the API token, as kept on flash.

CREDENTIALS_FILE holds the password as PBKDF2-HMAC-SHA256 (salted, iterated;
written with hashlib.sha256, as MicroPython has no hmac or pbkdf2) and the
API token as its SHA-256: the token is 128 random bits, so one hash already
makes a flash dump useless, and checking it costs one hash per request.
Neither is ever stored in clear. Both are compared in constant time.
For RTSP Digest it also keeps MD5(admin:realm:token): a fast hash, harmless
for a 128-bit random token, never made of the password (README.md, RTSP).
"""
import binascii
import hashlib
import json
import os

CREDENTIALS_FILE = 'auth.json'
# ~0.35 s on an ESP32 at 240 MHz: 5.4 us an iteration on the simulator, x40 (README)
ITERATIONS = 1600
_SLICE = 64                     # iterations between two yields to the event loop
_TOKEN_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'   # 31 letters, none confusable
# RTSP Digest's fixed name and realm; its password is the API token (README.md)
RTSP_USER = 'admin'
RTSP_REALM = 'esp32cam'


def same(a, b):
    """True when a == b (bytes of equal length, e.g. two digests), in time
    that does not depend on where they differ."""
    diff = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        diff |= a[i] ^ b[i]
    return diff == 0


def _pad(key, byte):
    return bytes(k ^ byte for k in key) + bytes([byte]) * (64 - len(key))


def pbkdf2_steps(password, salt, iterations):
    """PBKDF2-HMAC-SHA256, one 32-byte block; a generator that yields every
    _SLICE iterations so a caller can let the event loop run, and returns
    the key (StopIteration.value)."""
    key = password if len(password) <= 64 else hashlib.sha256(password).digest()
    inner_pad, outer_pad = _pad(key, 0x36), _pad(key, 0x5C)
    block = salt + b'\x00\x00\x00\x01'
    result = 0
    for i in range(iterations):
        inner = hashlib.sha256(inner_pad)
        inner.update(block)
        outer = hashlib.sha256(outer_pad)
        outer.update(inner.digest())
        block = outer.digest()
        result ^= int.from_bytes(block, 'big')
        if i % _SLICE == _SLICE - 1:
            yield
    return result.to_bytes(32, 'big')


def pbkdf2(password, salt, iterations):
    """PBKDF2-HMAC-SHA256 at once (setup, tests)."""
    steps = pbkdf2_steps(password, salt, iterations)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


async def pbkdf2_async(password, salt, iterations):
    """PBKDF2-HMAC-SHA256 in slices, the event loop running in between."""
    import asyncio
    steps = pbkdf2_steps(password, salt, iterations)
    try:
        while True:
            next(steps)
            await asyncio.sleep_ms(0)
    except StopIteration as done:
        return done.value


def token_digest(token):
    return hashlib.sha256(token.encode()).digest()


def new_token():
    """A random API token: 26 letters of 31, about 128 bits."""
    return ''.join(_TOKEN_ALPHABET[b % len(_TOKEN_ALPHABET)] for b in os.urandom(26))


def rtsp_ha1(token):
    """RTSP Digest's HA1, MD5(user:realm:token), hex: what the board keeps to
    check Digest answers without the token itself."""
    text = '%s:%s:%s' % (RTSP_USER, RTSP_REALM, token)
    return binascii.hexlify(hashlib.md5(text.encode()).digest()).decode()


def record(salt, key, token, iterations=ITERATIONS):
    """The credentials file's object: salt, PBKDF2 key, the token's digest
    and its RTSP Digest HA1."""
    return {'kdf': 'pbkdf2-sha256', 'iterations': iterations,
            'salt': binascii.hexlify(salt).decode(), 'hash': binascii.hexlify(key).decode(),
            'token_sha256': binascii.hexlify(token_digest(token)).decode(),
            'rtsp_ha1': rtsp_ha1(token)}


async def save(password, token, path=CREDENTIALS_FILE):
    """Write the credentials: .part, then rename (atomic on LittleFS)."""
    salt = os.urandom(16)
    key = await pbkdf2_async(password.encode(), salt, ITERATIONS)
    with open(path + '.part', 'w') as f:
        json.dump(record(salt, key, token), f)
    os.rename(path + '.part', path)


class Credentials:
    """The stored password hash and token digest; checks guesses."""

    def __init__(self, saved):
        self.iterations = int(saved['iterations'])
        self.salt = binascii.unhexlify(saved['salt'])
        self.hash = binascii.unhexlify(saved['hash'])
        self.token_hash = binascii.unhexlify(saved['token_sha256'])
        # None in a file written before RTSP: Digest waits for a new token
        self.rtsp_ha1 = saved.get('rtsp_ha1')
        if self.rtsp_ha1 is not None and (not isinstance(self.rtsp_ha1, str)
                                          or len(self.rtsp_ha1) != 32):
            raise ValueError('bad credentials')
        if (saved.get('kdf') != 'pbkdf2-sha256' or not 1 <= self.iterations <= 1000000
                or len(self.hash) != 32 or len(self.token_hash) != 32):
            raise ValueError('bad credentials')

    async def password_ok(self, given):
        if not isinstance(given, str) or not given or len(given) > 128:
            return False
        return same(await pbkdf2_async(given.encode(), self.salt, self.iterations), self.hash)

    def token_ok(self, given):
        return (isinstance(given, str) and 0 < len(given) <= 128
                and same(token_digest(given), self.token_hash))


def setup_needed(config, credentials):
    """Whether the board runs setup instead of the dashboard: no password
    yet (unless auth is off and Wi-Fi is configured)."""
    if credentials is not None:
        return False
    return config['auth'] != 'off' or not config['wifi']


def load(path=CREDENTIALS_FILE):
    """The Credentials on flash, or None (not set up, or unreadable)."""
    try:
        with open(path) as f:
            return Credentials(json.load(f))
    except OSError:
        return None
    except (ValueError, KeyError, TypeError):
        print('auth: %s is damaged; setup runs again' % path)
        return None

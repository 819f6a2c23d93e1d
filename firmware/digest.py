"""Digest access authentication (RFC 2617, and RFC 2069's older form), as
RTSP and HTTP share it: parse the Authorization header, check an answer
against a stored HA1 without the password itself."""
import binascii
import hashlib

from firmware import auth

_MAX_FIELDS = 12


def fields(value):
    """The name="value" pairs of a Digest Authorization header, or None."""
    if not value.startswith('Digest '):
        return None
    found = {}
    rest = value[7:]
    while rest:
        name, sep, rest = rest.partition('=')
        if not sep:
            return None
        name = name.strip().lower()
        rest = rest.lstrip()
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                return None
            found[name] = rest[1:end]
            rest = rest[end + 1:]
        else:
            value, _, rest = rest.partition(',')
            found[name] = value.strip()
            rest = ',' + rest
        rest = rest.lstrip()
        if rest.startswith(','):
            rest = rest[1:].lstrip()
        elif rest:
            return None
        if len(found) > _MAX_FIELDS:
            return None
    return found


def md5_hex(text):
    """MD5 of a str, as lower-case hex."""
    return binascii.hexlify(hashlib.md5(text.encode()).digest()).decode()


def ha1(user, realm, password):
    """MD5(user:realm:password), hex: what a Digest check needs."""
    return md5_hex('%s:%s:%s' % (user, realm, password))


def answer_ok(given, method, nonce, user_ha1):
    """Whether the fields of an Authorization header answer `nonce` with the
    password behind user_ha1; qop "auth" or none (RFC 2069)."""
    if given.get('nonce') != nonce or 'uri' not in given:
        return False
    ha2 = md5_hex(method + ':' + given['uri'])
    qop = given.get('qop')
    if qop is None:
        expected = md5_hex('%s:%s:%s' % (user_ha1, nonce, ha2))
    elif qop == 'auth' and 'nc' in given and 'cnonce' in given:
        expected = md5_hex('%s:%s:%s:%s:auth:%s' % (user_ha1, nonce, given['nc'],
                                                     given['cnonce'], ha2))
    else:
        return False
    return auth.same(expected.encode(), given.get('response', '').encode())

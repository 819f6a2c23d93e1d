"""Just enough SOAP 1.2 for ONVIF and WS-Discovery, without an XML
library: find elements by local name with bytes searches (C speed, no
tree), and wrap reply templates in an envelope. Requests are bounded by the
caller; nothing here grows with the input beyond one slice."""

ENV = 'http://www.w3.org/2003/05/soap-envelope'
_NAME_END = b'> \t\r\n/'
_MAX_PREFIX = 32                    # a namespace prefix longer than this is no match


def _start(body, name, start=0):
    """(index of '<', index of '>') of the first start tag with this local
    name (any prefix) from `start`, or None."""
    size = len(name)
    i = body.find(name, start)
    while i > 0:
        before = body[i - 1]
        after = body[i + size:i + size + 1]
        if after and after in _NAME_END:
            lt = i - 1
            if before == 58:                        # ':' : skip the prefix back to '<'
                # bounded look-back: `<x a:Name a:Name ...` must not cost quadratic time
                lt = body.rfind(b'<', max(0, i - 2 - _MAX_PREFIX), i)
                if lt >= 0:
                    prefix = body[lt + 1:i - 1]
                    if not prefix or b' ' in prefix or b'/' in prefix or b'>' in prefix:
                        lt = -1
            elif before != 60:                      # '<'
                lt = -1
            if lt >= 0:
                gt = body.find(b'>', i)
                return None if gt < 0 else (lt, gt)
        i = body.find(name, i + size)
    return None


def tag(body, name):
    """The whole start tag (attributes and all) of the first element with
    this local name, or b''."""
    found = _start(body, name)
    return b'' if found is None else body[found[0]:found[1] + 1]


def text(body, name):
    """The stripped text of the first element with this local name (bytes),
    b'' if it is empty, None if there is none."""
    found = _start(body, name)
    if found is None:
        return None
    gt = found[1]
    if body[gt - 1] == 47:                          # '/': <x/>
        return b''
    end = body.find(b'<', gt + 1)
    return None if end < 0 else body[gt + 1:end].strip()


def first_in_body(body):
    """The local name (str) of the first element inside the Body, or None."""
    found = _start(body, b'Body')
    if found is None or body[found[1] - 1] == 47:
        return None
    i = found[1] + 1
    while True:
        lt = body.find(b'<', i)
        if lt < 0 or body[lt + 1:lt + 2] == b'/':
            return None
        if body[lt + 1:lt + 4] == b'!--':          # a comment
            i = body.find(b'-->', lt)
            if i < 0:
                return None
            continue
        end = lt + 1
        while end < len(body) and end - lt < 80 and body[end:end + 1] not in _NAME_END:
            end += 1
        name = body[lt + 1:end]
        name = name[name.find(b':') + 1:]
        try:
            return name.decode() if name else None
        except UnicodeError:
            return None


def escape(value):
    """value (str) as XML text."""
    return value.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace(
        '"', '&quot;')


def envelope(namespaces, body, header=''):
    """A SOAP 1.2 envelope (bytes) around `body`, declaring `namespaces`
    (a str of xmlns attributes)."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope xmlns:s="%s" %s>'
            '%s<s:Body>%s</s:Body></s:Envelope>' % (
                ENV, namespaces, '<s:Header>%s</s:Header>' % header if header else '',
                body)).encode()


def fault(code, subcode, reason):
    """A SOAP 1.2 Fault (bytes): code 'Sender' or 'Receiver', subcode an
    ONVIF error (ter:...)."""
    return envelope(
        'xmlns:ter="http://www.onvif.org/ver10/error"',
        '<s:Fault><s:Code><s:Value>s:%s</s:Value><s:Subcode><s:Value>%s</s:Value>'
        '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">%s</s:Text></s:Reason>'
        '</s:Fault>' % (code, subcode, escape(reason)))

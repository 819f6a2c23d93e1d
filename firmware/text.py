"""Text checks shared by the HTTP and WebSocket layers and the commands:
strict UTF-8, and the JSON surrogate escapes MicroPython's json gets wrong."""


def utf8_valid(data):
    """Strict UTF-8 (RFC 3629): no overlongs, surrogates or > U+10FFFF."""
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, low, high = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            need = 2
            low = 0xA0 if c == 0xE0 else 0x80
            high = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            need = 3
            low = 0x90 if c == 0xF0 else 0x80
            high = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + need >= n:
            return False
        if not low <= data[i + 1] <= high:
            return False
        for k in range(2, need + 1):
            if not 0x80 <= data[i + k] <= 0xBF:
                return False
        i += need + 1
    return True


def _hex4(text, at):
    try:
        return int(text[at:at + 4], 16) if len(text) >= at + 4 else -1
    except ValueError:
        return -1


def join_surrogates(text):
    """Turn JSON surrogate-pair escapes into the character they encode:
    MicroPython's json decodes \\ud83d\\ude00 as two invalid halves."""
    out = []
    start = i = 0
    while True:
        j = text.find('\\u', i)
        if j < 0:
            break
        k = j
        while k > 0 and text[k - 1] == '\\':
            k -= 1
        high = _hex4(text, j + 2)
        low = _hex4(text, j + 8) if text[j + 6:j + 8] == '\\u' else -1
        if (j - k) % 2 == 0 and 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
            out.append(text[start:j])
            out.append(chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)))
            start = i = j + 12
        else:
            i = j + 2
    if not out:
        return text
    out.append(text[start:])
    return ''.join(out)

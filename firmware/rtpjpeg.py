"""RTP/JPEG (RFC 2435): the camera's JPEG as RTP packets.

The JPEG is walked segment by segment (a dozen heads, no per-byte work):
its quantisation tables go in-band (Q=255), its sampling factors give the
type (4:2:2 is 0, 4:2:0 is 1; +64 with a restart interval), and its scan is
cut into MTU-sized slices of a memoryview. The receiver rebuilds the JPEG
head with the standard Huffman tables, which is what the ESP32's encoder
uses. Each packet is built in one reused buffer, so a frame costs no
allocation per packet but the bytes a transport copies.
"""
import struct
from micropython import const

PAYLOAD_TYPE = const(26)        # JPEG's static RTP payload type
CLOCK_HZ = const(90000)
_Q_INBAND = const(255)          # Q >= 128: tables in the first packet
_RTP_HEAD = const(12)
_JPEG_HEAD = const(8)
_RESTART_HEAD = const(4)
_MAX_SIDE = const(2040)         # width and height travel as /8 in one byte


class Frame:
    """What RFC 2435 needs of one JPEG: type, size, tables and the scan."""

    def __init__(self, kind, width, height, dri, tables, scan):
        self.kind = kind            # 0, 1, or 64/65 with restart markers
        self.width = width
        self.height = height
        self.dri = dri
        self.tables = tables        # the quantisation tables, 64 bytes each
        self.scan = scan            # memoryview of the entropy-coded data


def parse(jpeg):
    """A Frame, or None for a JPEG RTP/JPEG cannot carry (progressive,
    16-bit tables, odd sampling, bigger than 2040 pixels, truncated or
    garbled)."""
    try:
        return _parse(jpeg)
    except IndexError:              # a segment shorter than its kind needs: skip the frame
        return None


def _parse(jpeg):
    n = len(jpeg)
    if n < 4 or jpeg[0] != 0xFF or jpeg[1] != 0xD8:
        return None
    view = memoryview(jpeg)
    tables = {}
    dri = 0
    kind = -1
    width = height = 0
    table_ids = ()
    pos = 2
    while pos + 4 <= n:
        if jpeg[pos] != 0xFF:
            return None
        marker = jpeg[pos + 1]
        if marker == 0xFF:
            pos += 1                # fill byte
            continue
        end = pos + 2 + (jpeg[pos + 2] << 8 | jpeg[pos + 3])
        if end > n:
            return None
        body = pos + 4
        if marker == 0xDB:
            while body + 65 <= end:
                if jpeg[body] >> 4:
                    return None     # 16-bit tables: RFC 2435 carries 8-bit ones
                tables[jpeg[body] & 3] = bytes(view[body + 1:body + 65])
                body += 65
        elif marker == 0xC0:
            height = jpeg[body + 1] << 8 | jpeg[body + 2]
            width = jpeg[body + 3] << 8 | jpeg[body + 4]
            if jpeg[body + 5] != 3:
                return None
            sampling = jpeg[body + 7]
            if jpeg[body + 10] != 0x11 or jpeg[body + 13] != 0x11:
                return None
            kind = 0 if sampling == 0x21 else 1 if sampling == 0x22 else -1
            table_ids = (jpeg[body + 8], jpeg[body + 11])
        elif marker == 0xDD:
            dri = jpeg[body] << 8 | jpeg[body + 1]
        elif marker == 0xDA:
            # the scan ends at EOI, found among the last bytes (a driver may pad)
            tail = max(end, n - 64)
            found = bytes(view[tail:]).rfind(b'\xff\xd9')
            stop = tail + found if found >= 0 else n
            break
        elif 0xC1 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None             # not baseline
        pos = end
    else:
        return None                 # no scan
    if (kind < 0 or not 0 < width <= _MAX_SIDE or not 0 < height <= _MAX_SIDE
            or width & 7 or height & 7):
        return None
    try:
        chosen = b''.join([tables[i] for i in table_ids])
    except KeyError:
        return None
    if dri:
        kind += 64
    return Frame(kind, width, height, dri, chosen, view[end:stop])


class Packetiser:
    """RTP packets of one stream: its SSRC, sequence numbers and one buffer.
    `prefix` bytes are left free at the front of each packet for the
    interleaved-TCP head ($, channel, length)."""

    def __init__(self, ssrc, mtu, prefix=0):
        self.ssrc = ssrc
        self.seq = 0
        self.prefix = prefix
        self.mtu = mtu
        self.buffer = bytearray(prefix + mtu)
        self.view = memoryview(self.buffer)

    def packets(self, frame, timestamp):
        """Yield memoryviews of the frame's packets, each valid until the
        next one is asked for (the buffer is reused)."""
        buf = self.buffer
        view = self.view
        prefix = self.prefix
        scan = frame.scan
        total = len(scan)
        offset = 0
        head = _RTP_HEAD + _JPEG_HEAD + (_RESTART_HEAD if frame.dri else 0)
        while True:
            start = prefix
            struct.pack_into('>BBHII', buf, start, 0x80, PAYLOAD_TYPE, self.seq,
                             timestamp & 0xFFFFFFFF, self.ssrc)
            struct.pack_into('>IBBBB', buf, start + _RTP_HEAD, offset, frame.kind,
                             _Q_INBAND, frame.width >> 3, frame.height >> 3)
            at = start + head
            if frame.dri:
                # restarts not aligned to packets: F=L=1, count 0x3FFF
                struct.pack_into('>HH', buf, at - _RESTART_HEAD, frame.dri, 0xFFFF)
            if offset == 0:
                tables = frame.tables
                struct.pack_into('>BBH', buf, at, 0, 0, len(tables))
                buf[at + 4:at + 4 + len(tables)] = tables
                at += 4 + len(tables)
            size = min(total - offset, prefix + self.mtu - at)
            buf[at:at + size] = scan[offset:offset + size]
            offset += size
            if offset >= total:
                buf[start + 1] = 0x80 | PAYLOAD_TYPE     # marker: the frame's last
            self.seq = (self.seq + 1) & 0xFFFF
            yield view[:at + size]
            if offset >= total:
                return

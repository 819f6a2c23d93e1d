# 1/8-scale luminance map of a baseline JPEG: the DC term of each luma block.
"""Mean luma of every 8x8 luminance block of a JPEG, without an inverse DCT.

Every Huffman code of the scan is still read (AC of all components too, to
stay in sync), but only the luma DC terms are kept: the block's mean is
clamp(round(DC * Q0 / 8) + 128), libjpeg's 1/8 DCT scaling bit for bit.

    dec = LumaDecoder(jpeg)           # parses the headers, raises JpegError
    while not dec.step(150):          # a slice of MCUs, then yield to asyncio
        await asyncio.sleep(0)
    dec.luma                          # bytearray(dec.cols * dec.rows)

`luma` may be longer than cols * rows when a bigger buffer was reused.

Some micropython-camera-API firmware builds also ship cnadler86's C `jpeg`
module (`jpeg.Decoder(format=...).decode(frame)`); it could replace this
where `import jpeg` works, but it decodes every pixel into a W*H buffer
(300 KB for VGA), so this module does not use it.
"""
import micropython
from array import array
from micropython import const


class JpegError(ValueError):
    pass


# Layout of the table buffer: 8 Huffman slots (class * 4 + id), each with a
# 9-bit lookahead table (u16; DC: length << 8 | symbol, AC: code + value
# bits | coefficients advanced << 5; 0: longer code), the slow-path limits by
# code length (i32: maxcode + 1 at [l], value offset + 0x10000 at [18 + l],
# biased as x64 viper zero-extends ptr32 loads) and the values.
_LOOK = const(9)
_SLOW_WORD = const(2048)            # after the 8 KB of lookahead tables
_SLOW_WORDS = const(36)
_VALS_BYTE = const(9344)            # (_SLOW_WORD + 8 * 36) * 4
_TABS_BYTES = const(11392)          # _VALS_BYTE + 8 * 256

# Decoder state, an array('i') handed to the viper code between slices.
_POS = const(0)
_END = const(1)
_BITS = const(2)
_NBITS = const(3)
_PHANTOM = const(4)                 # zero bytes fed past a marker / the end
_MCUX = const(5)
_TOTAL = const(6)
_MCU = const(7)
_RSTI = const(8)
_RLEFT = const(9)
_RSTN = const(10)
_COLS = const(11)
_ROWS = const(12)
_HY = const(13)
_VY = const(14)
_Q0 = const(15)
_NBLK = const(16)
_LIMIT = const(17)
_MX = const(18)
_MY = const(19)
_PRED = const(20)                   # 4 DC predictors, biased to stay >= 0
_BLK = const(24)                    # up to 10 block descriptors of the MCU
_STATE = const(34)
_BIAS = const(0x1000000)

_ERR_TRUNC = const(-1)
_ERR_HUFF = const(-2)
_ERR_RST = const(-3)
_ERRORS = {
    _ERR_TRUNC: 'truncated or corrupt scan data (ran into a marker or the end)',
    _ERR_HUFF: 'corrupt scan data (invalid Huffman code)',
    _ERR_RST: 'corrupt scan data (missing or misplaced RST marker)',
}
_MAX_BLOCKS = const(512 * 512)     # a 4096x4096 picture


@micropython.viper
def _decode(job) -> int:
    # one argument: viper keeps only the first 3 locals in registers, so
    # the hottest ones come first
    nbits = 0
    bitbuf = 0
    st = ptr32(job[2])
    nbits = st[_NBITS] - 64        # stored +64 (x64 loads are zero-extended)
    bitbuf = st[_BITS]
    src = ptr8(job[0])
    lut = ptr16(job[1])
    slow = ptr32(job[1])
    tb = ptr8(job[1])
    dst = ptr8(job[3])
    pos = st[_POS]
    end = st[_END]
    phantom = st[_PHANTOM]
    mcu = st[_MCU]
    total = st[_TOTAL]
    limit = mcu + st[_LIMIT]
    if limit > total:
        limit = total
    mcux = st[_MCUX]
    mx = st[_MX]
    my = st[_MY]
    rsti = st[_RSTI]
    rleft = st[_RLEFT]
    cols = st[_COLS]
    rows = st[_ROWS]
    hy = st[_HY]
    vy = st[_VY]
    q0 = st[_Q0]
    nblk = st[_NBLK]
    err = 0
    while mcu < limit:
        if rsti != 0 and rleft == 0:
            # end of a restart interval: only padding may be left, then RSTn
            while nbits <= 24:
                c = 0
                if pos < end:
                    c = src[pos]
                    if c == 0xFF:
                        if pos + 1 < end and src[pos + 1] == 0:
                            pos += 2
                        else:
                            c = 0
                            phantom += 1
                    else:
                        pos += 1
                else:
                    phantom += 1
                bitbuf = (bitbuf << 8) | c
                nbits += 8
            if nbits < (phantom << 3):
                err = _ERR_TRUNC
                break
            if nbits - (phantom << 3) >= 8 or pos >= end or src[pos] != 0xFF:
                err = _ERR_RST
                break
            while pos < end and src[pos] == 0xFF:
                pos += 1
            if pos >= end or src[pos] != 0xD0 + st[_RSTN]:
                err = _ERR_RST
                break
            pos += 1
            st[_RSTN] = (st[_RSTN] + 1) & 7
            bitbuf = 0
            nbits = 0
            phantom = 0
            st[_PRED] = _BIAS
            st[_PRED + 1] = _BIAS
            st[_PRED + 2] = _BIAS
            st[_PRED + 3] = _BIAS
            rleft = rsti
        b = 0
        while b < nblk:
            cfg = st[_BLK + b]
            # DC: Huffman code, then `s` magnitude bits
            while nbits <= 24:
                c = 0
                if pos < end:
                    c = src[pos]
                    if c == 0xFF:
                        if pos + 1 < end and src[pos + 1] == 0:
                            pos += 2
                        else:
                            c = 0
                            phantom += 1
                    else:
                        pos += 1
                else:
                    phantom += 1
                bitbuf = (bitbuf << 8) | c
                nbits += 8
            slot = cfg & 3
            e = lut[(slot << 9) + ((bitbuf >> (nbits - 9)) & 511)]
            if e != 0:
                nbits -= e >> 8
                s = e & 255
            else:
                code = (bitbuf >> (nbits - 16)) & 0xFFFF
                base = _SLOW_WORD + slot * _SLOW_WORDS
                n = 10
                while n <= 16:
                    c = code >> (16 - n)
                    if c < slow[base + n]:
                        break
                    n += 1
                if n > 16:
                    err = _ERR_HUFF
                    break
                c += slow[base + 18 + n] - 0x10000
                if c < 0 or c > 255:
                    err = _ERR_HUFF
                    break
                s = tb[_VALS_BYTE + (slot << 8) + c]
                nbits -= n
                while nbits <= 24:
                    c = 0
                    if pos < end:
                        c = src[pos]
                        if c == 0xFF:
                            if pos + 1 < end and src[pos + 1] == 0:
                                pos += 2
                            else:
                                c = 0
                                phantom += 1
                        else:
                            pos += 1
                    else:
                        phantom += 1
                    bitbuf = (bitbuf << 8) | c
                    nbits += 8
            pi = _PRED + ((cfg >> 8) & 3)
            pred = st[pi]
            if s != 0:
                v = (bitbuf >> (nbits - s)) & ((1 << s) - 1)
                nbits -= s
                if v < (1 << (s - 1)):
                    v += 1 - (1 << s)
                pred += v
                st[pi] = pred
            if cfg & 0x1000:
                col = mx * hy + ((cfg >> 16) & 15)
                row = my * vy + ((cfg >> 20) & 15)
                if col < cols and row < rows:
                    v = (((pred - _BIAS) * q0 + 4) >> 3) + 128
                    if v < 0:
                        v = 0
                    elif v > 255:
                        v = 255
                    dst[row * cols + col] = v
            # AC: only skip, `run` zeros then `s` bits per code
            slot = 4 + ((cfg >> 4) & 3)
            lbase = slot << 9
            k = 1
            while k < 64:
                while nbits <= 24:
                    c = 0
                    if pos < end:
                        c = src[pos]
                        if c == 0xFF:
                            if pos + 1 < end and src[pos + 1] == 0:
                                pos += 2
                            else:
                                c = 0
                                phantom += 1
                        else:
                            pos += 1
                    else:
                        phantom += 1
                    bitbuf = (bitbuf << 8) | c
                    nbits += 8
                e = lut[lbase + ((bitbuf >> (nbits - 9)) & 511)]
                if e == 0:
                    code = (bitbuf >> (nbits - 16)) & 0xFFFF
                    base = _SLOW_WORD + slot * _SLOW_WORDS
                    n = 10
                    while n <= 16:
                        c = code >> (16 - n)
                        if c < slow[base + n]:
                            break
                        n += 1
                    if n > 16:
                        err = _ERR_HUFF
                        break
                    c += slow[base + 18 + n] - 0x10000
                    if c < 0 or c > 255:
                        err = _ERR_HUFF
                        break
                    s = tb[_VALS_BYTE + (slot << 8) + c]
                    if s & 15:
                        e = ((s >> 4) + 1) << 5
                    elif s == 0xF0:
                        e = 16 << 5
                    else:
                        e = 64 << 5
                    e += n + (s & 15)
                # skip code and value bits (nbits may go negative: the next
                # fill pays the debt), then advance k past the zero run
                nbits -= e & 31
                k += e >> 5
            if err != 0:
                break
            b += 1
        if err != 0:
            break
        if phantom != 0 and nbits < (phantom << 3):
            err = _ERR_TRUNC
            break
        mcu += 1
        rleft -= 1
        mx += 1
        if mx == mcux:
            mx = 0
            my += 1
    if err == 0 and mcu == total:
        # every bit the last MCU used must have been real data
        while nbits <= 24:
            c = 0
            if pos < end:
                c = src[pos]
                if c == 0xFF:
                    if pos + 1 < end and src[pos + 1] == 0:
                        pos += 2
                    else:
                        c = 0
                        phantom += 1
                else:
                    pos += 1
            else:
                phantom += 1
            bitbuf = (bitbuf << 8) | c
            nbits += 8
        if nbits < (phantom << 3):
            err = _ERR_TRUNC
    st[_POS] = pos
    st[_BITS] = bitbuf
    st[_NBITS] = nbits + 64
    st[_PHANTOM] = phantom
    st[_MCU] = mcu
    st[_MX] = mx
    st[_MY] = my
    st[_RLEFT] = rleft
    if err != 0:
        return err
    if mcu == total:
        return 1
    return 0


def _u16(data, pos):
    return (data[pos] << 8) | data[pos + 1]


class LumaDecoder:
    """Decodes one JPEG's luma DC map, in slices of MCUs (see step). The
    JPEG buffer must stay unchanged until step() returns True: copy a
    camera memoryview first. `out`: a bytearray to reuse for luma."""

    def __init__(self, jpeg, out=None):
        self._tabs = bytearray(_TABS_BYTES)
        self._state = array('i', bytes(4 * _STATE))
        self._dht = [None] * 8          # segment bytes per slot, to skip rebuilds
        self._limits = array('i', bytes(4 * _SLOW_WORDS))
        self._job = [None, self._tabs, self._state, None]
        self._head = None               # the last headers parsed, SOI to the scan
        self._parsed = array('i', bytes(4 * _STATE))    # the state they gave
        self.luma = out
        self.stepped = 0                # MCUs the last step() decoded
        self.reset(jpeg)

    def reset(self, jpeg):
        """Start on another JPEG, reusing the tables and the luma buffer."""
        self._data = None
        self._done = False
        head = self._head
        if head is not None and len(jpeg) > len(head) and _same(jpeg, 0, head):
            # a camera's headers are the same frame after frame: parsing them
            # in Python costs the board more than the detector's Python
            st = self._state
            st[:] = self._parsed
            st[_END] = len(jpeg)
            self._luma_buffer()
        else:
            self._head = None
            self._qt = [None] * 4
            self._defined = 0           # bit per Huffman slot seen in this file
            self._parse(jpeg)
            self._parsed[:] = self._state
            self._head = bytes(jpeg[:self._state[_POS]])
        self._data = jpeg

    def step(self, mcus):
        """Decode up to `mcus` MCUs; True once the whole scan is done.
        Raises JpegError on corrupt or truncated scan data."""
        if self._done:
            return True
        if self._data is None:
            raise JpegError('decoder failed earlier')
        state = self._state
        state[_LIMIT] = mcus
        first = state[_MCU]
        job = self._job
        job[0] = self._data
        job[3] = self.luma
        rc = _decode(job)
        self.stepped = state[_MCU] - first     # what this step decoded: the slice's rate
        if rc == 0:
            return False
        job[0] = self._data = None      # let the frame go
        if rc < 0:
            raise JpegError(_ERRORS.get(rc, 'corrupt scan data'))
        self._done = True
        return True

    def _parse(self, data):
        n = len(data)
        if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
            raise JpegError('not a JPEG (no SOI marker)')
        pos = 2
        sof = None
        rsti = 0
        while True:
            if pos >= n:
                raise JpegError('truncated: no scan (SOS) found')
            if data[pos] != 0xFF:
                raise JpegError('corrupt: expected a marker at byte %d' % pos)
            while pos < n and data[pos] == 0xFF:
                pos += 1
            if pos >= n:
                raise JpegError('truncated: no scan (SOS) found')
            m = data[pos]
            pos += 1
            if m == 0x01 or 0xD0 <= m <= 0xD7:
                continue                        # TEM and RSTn have no length
            if m == 0xD8 or m == 0xD9 or m == 0:
                raise JpegError('corrupt: marker %02X before the scan' % m)
            if pos + 2 > n:
                raise JpegError('truncated in a header segment')
            seglen = _u16(data, pos)
            if seglen < 2 or pos + seglen > n:
                raise JpegError('truncated or corrupt segment %02X' % m)
            seg = pos + 2
            pos += seglen
            if m == 0xC0 or m == 0xC1:
                if sof is not None:
                    raise JpegError('corrupt: two SOF markers')
                sof = self._sof(data, seg, pos)
            elif m == 0xC2:
                raise JpegError('progressive JPEG not supported')
            elif m == 0xC3:
                raise JpegError('lossless JPEG not supported')
            elif 0xC5 <= m <= 0xC7:
                raise JpegError('hierarchical JPEG not supported')
            elif 0xC8 < m <= 0xCF:
                raise JpegError('arithmetic-coded JPEG not supported')
            elif m == 0xC4:
                self._dht_segment(data, seg, pos)
            elif m == 0xDB:
                self._dqt_segment(data, seg, pos)
            elif m == 0xDD:
                if seglen != 4:
                    raise JpegError('corrupt DRI segment')
                rsti = _u16(data, seg)
            elif m == 0xDA:
                if sof is None:
                    raise JpegError('corrupt: scan before SOF')
                self._sos(data, seg, pos, sof, rsti)
                return
            # APPn, COM, DNL, DAC, ... carry nothing we need

    def _sof(self, data, seg, end):
        if end - seg < 6:
            raise JpegError('corrupt SOF segment')
        if data[seg] != 8:
            raise JpegError('%d-bit JPEG not supported (8-bit only)' % data[seg])
        height = _u16(data, seg + 1)
        width = _u16(data, seg + 3)
        nf = data[seg + 5]
        if height == 0:
            raise JpegError('height set by DNL not supported')
        if width == 0:
            raise JpegError('corrupt SOF: width 0')
        if nf != 1 and nf != 3:
            raise JpegError('%d components not supported (1 or 3)' % nf)
        if end - seg != 6 + 3 * nf:
            raise JpegError('corrupt SOF segment')
        comps = []
        for i in range(nf):
            p = seg + 6 + 3 * i
            h = data[p + 1] >> 4
            v = data[p + 1] & 15
            if not 1 <= h <= 4 or not 1 <= v <= 4 or data[p + 2] > 3:
                raise JpegError('corrupt SOF component')
            comps.append((data[p], h, v, data[p + 2]))
        hmax = max(c[1] for c in comps)
        vmax = max(c[2] for c in comps)
        if comps[0][1] != hmax or comps[0][2] != vmax:
            raise JpegError('sampling %s not supported' % ','.join(
                '%dx%d' % (c[1], c[2]) for c in comps))
        self.width = width
        self.height = height
        self.cols = (width + 7) >> 3
        self.rows = (height + 7) >> 3
        if self.cols * self.rows > _MAX_BLOCKS:
            raise JpegError('picture too large (%dx%d)' % (width, height))
        return comps, hmax, vmax

    def _dqt_segment(self, data, p, end):
        while p < end:
            pq = data[p] >> 4
            tq = data[p] & 15
            size = 65 if pq == 0 else 129
            if pq > 1 or tq > 3 or p + size > end:
                raise JpegError('corrupt DQT segment')
            self._qt[tq] = data[p + 1] if pq == 0 else _u16(data, p + 1)
            p += size

    def _dht_segment(self, data, p, end):
        while p < end:
            if p + 17 > end:
                raise JpegError('corrupt DHT segment')
            tc = data[p] >> 4
            th = data[p] & 15
            count = 0
            for i in range(16):
                count += data[p + 1 + i]
            if tc > 1 or th > 3 or count > 256 or p + 17 + count > end:
                raise JpegError('corrupt DHT segment')
            slot = tc * 4 + th
            known = self._dht[slot]
            if known is None or len(known) != 17 + count or not _same(data, p, known):
                table = bytes(data[p:p + 17 + count])
                self._dht[slot] = None
                self._build(slot, tc, table, count)
                self._dht[slot] = table
            self._defined |= 1 << slot
            p += 17 + count

    def _build(self, slot, tc, table, count):
        for i in range(count):
            sym = table[17 + i]
            if sym > 11 if tc == 0 else (sym & 15) > 10:
                raise JpegError('corrupt DHT segment (symbol %02X)' % sym)
        tabs = self._tabs
        _fill16(tabs, slot * 512, 512, 0)
        limits = self._limits
        code = 0
        k = 0
        for n in range(1, 17):
            cnt = table[n]
            if code + cnt > (1 << n):
                raise JpegError('corrupt DHT segment (code overflow)')
            limits[18 + n] = k - code + 0x10000  # value index = code + this - 0x10000
            if cnt and n <= _LOOK:
                shift = _LOOK - n
                for _ in range(cnt):
                    sym = table[17 + k]
                    if tc == 0:                 # DC: length << 8 | symbol
                        entry = (n << 8) | sym
                    else:                       # AC: bits to skip | k step << 5
                        step = (sym >> 4) + 1 if sym & 15 else 16 if sym == 0xF0 else 64
                        entry = (n + (sym & 15)) | (step << 5)
                    _fill16(tabs, slot * 512 + (code << shift), 1 << shift, entry)
                    code += 1
                    k += 1
            else:
                code += cnt
                k += cnt
            limits[n] = code                    # maxcode + 1 for this length
            code <<= 1
        base = _VALS_BYTE + slot * 256
        tabs[base:base + count] = table[17:17 + count]
        _store_words(tabs, _SLOW_WORD + slot * _SLOW_WORDS, limits)

    def _sos(self, data, seg, end, sof, rsti):
        comps, hmax, vmax = sof
        if end - seg < 1:
            raise JpegError('corrupt SOS segment')
        ns = data[seg]
        if ns < 1 or ns > len(comps) or end - seg != 4 + 2 * ns:
            raise JpegError('corrupt SOS segment')
        st = self._state
        for i in range(_STATE):
            st[i] = 0
        nblk = 0
        has_luma = False
        for i in range(ns):
            cid = data[seg + 1 + 2 * i]
            td = data[seg + 2 + 2 * i] >> 4
            ta = data[seg + 2 + 2 * i] & 15
            ci = -1
            for j in range(len(comps)):
                if comps[j][0] == cid:
                    ci = j
            if ci < 0:
                raise JpegError('corrupt SOS: unknown component %d' % cid)
            if td > 3 or ta > 3 or not (self._defined >> td) & 1 \
                    or not (self._defined >> (4 + ta)) & 1:
                raise JpegError('missing Huffman table for component %d' % cid)
            h, v = (comps[ci][1], comps[ci][2]) if ns > 1 else (1, 1)
            for by in range(v):
                for bx in range(h):
                    if nblk == 10:
                        raise JpegError('corrupt: more than 10 blocks per MCU')
                    st[_BLK + nblk] = (td | (ta << 4) | (i << 8) | ((ci == 0) << 12)
                                       | (bx << 16) | (by << 20))
                    nblk += 1
            has_luma = has_luma or ci == 0
        if not has_luma:
            raise JpegError('first scan has no luma (not supported)')
        q0 = self._qt[comps[0][3]]
        if q0 is None:
            raise JpegError('missing quantization table')
        if ns > 1:
            mcux = (self.width + 8 * hmax - 1) // (8 * hmax)
            mcuy = (self.height + 8 * vmax - 1) // (8 * vmax)
            st[_HY] = hmax
            st[_VY] = vmax
        else:
            mcux = self.cols                    # a lone component: 1 block per MCU
            mcuy = self.rows
            st[_HY] = 1
            st[_VY] = 1
        st[_POS] = end
        st[_END] = len(data)
        st[_NBITS] = 64
        st[_MCUX] = mcux
        st[_TOTAL] = mcux * mcuy
        st[_RSTI] = rsti
        st[_RLEFT] = rsti
        st[_COLS] = self.cols
        st[_ROWS] = self.rows
        st[_Q0] = q0
        st[_NBLK] = nblk
        for i in range(4):
            st[_PRED + i] = _BIAS
        self._luma_buffer()

    def _luma_buffer(self):
        size = self.cols * self.rows
        if self.luma is None or len(self.luma) < size:
            self.luma = bytearray(size)


@micropython.viper
def _same(data, start: int, known) -> bool:
    a = ptr8(data)
    b = ptr8(known)
    n = int(len(known))
    i = 0
    while i < n:
        if a[start + i] != b[i]:
            return False
        i += 1
    return True


@micropython.viper
def _fill16(tabs, start: int, count: int, value: int):
    dst = ptr16(tabs)
    i = start
    count += start
    while i < count:
        dst[i] = value
        i += 1


@micropython.viper
def _store_words(tabs, base: int, words):
    dst = ptr32(tabs)
    src = ptr32(words)
    i = 0
    while i < _SLOW_WORDS:
        dst[base + i] = src[i]
        i += 1


_shared = None                     # luma_map's decoder: tables built once


def luma_map(jpeg, out=None):
    """Whole frame at once -> (cols, rows, luma); reuses `out` if big enough
    (then luma is `out`, possibly longer than cols * rows). Raises JpegError."""
    global _shared
    if _shared is None:
        _shared = LumaDecoder(jpeg, out)
    else:
        _shared.luma = out              # None: a fresh buffer, never the last one
        _shared.reset(jpeg)
    dec = _shared
    while not dec.step(1 << 20):
        pass
    return dec.cols, dec.rows, dec.luma

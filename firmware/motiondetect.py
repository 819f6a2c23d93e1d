"""Motion detector on the 1/8-scale luma map (one byte per 8x8 block).

Per frame:
  1. Light compensation: the frame is compared with the background through a
     line fitted robustly to the light change: the median difference of the
     darker half of the blocks and of the brighter half (so a lamp's gain
     and an exposure step are both taken out, and a figure under half the
     frame does not move the medians).
  2. Each block's residual is judged against its own noise (mean absolute
     residual, learnt while the block is still): strong above
     max(floor, 4 * noise), weak above half that. The floor falls with the
     sensitivity.
  3. Strong blocks seed 4-connected regions that grow over weak blocks
     (bounded queue, no recursion); a region of at least min_blocks (from the
     sensitivity: 15 % of the frame at 0, 1.2 % at 50, 2 blocks at 100) is a
     candidate. Two candidate frames in a row: STARTED. No region of half
     that size for end_frames frames: ENDED.
  4. More than 40 % of the frame changed at once after compensation (or 60 %
     before it) is a light change, not motion: the background is
     re-baselined and relearnt fast for 5 frames, no trigger.
  5. The background follows blocks outside regions at 1/32 per frame; a
     block changed for _ABSORB frames in a row (a parked object) is absorbed.
The mask is a 16 x 12 grid whatever the frame size (see parse_mask).
"""
import micropython
from micropython import const

NONE = const(0)
STARTED = const(1)
ENDED = const(2)

MASK_COLS = const(16)
MASK_ROWS = const(12)

_WARMUP = const(20)         # first frames: learn fast, never trigger
_WARM_SHIFT = const(2)
_RELEARN = const(5)         # frames of fast learning after a light change
_LEARN_SHIFT = const(5)     # background follows still blocks at 1/32 per frame
_NOISE_SHIFT = const(5)
_NOISE_K = const(4)         # strong change: over 4x the block's mean noise
_NOISE_START = const(256)   # 1 luma step, in 1/256
_CONFIRM = const(2)         # candidate frames in a row for STARTED
_END_FRAMES = const(5)      # analysed frames without a region for ENDED
_ABSORB = const(50)         # a block changed this long (5 s) joins the background
_LIGHT_PCT = const(40)      # more of the frame changed at once: light change,
_LIGHT_RAW_PCT = const(60)  # so is this much changed before compensation
_MIN_FLAT = const(16)       # below this bright-dark spread fit an offset only


def parse_mask(text):
    """48 hex digits -> 24 bytes (16 x 12 cells, row-major, high bit first,
    bit set = cell ignored). Raises ValueError on anything else."""
    if not isinstance(text, str) or len(text) != 48:
        raise ValueError('mask: 48 hex digits expected')
    for ch in text:
        if ch not in '0123456789abcdefABCDEF':
            raise ValueError('mask: not a hex digit')
    return bytes(int(text[i:i + 2], 16) for i in range(0, 48, 2))


def min_blocks(sensitivity, blocks):
    """Smallest region that triggers: 15 % of the frame at 0, 1.2 % at 50,
    0.1 % (at least 2 blocks) at 100."""
    s = max(0, min(100, sensitivity))
    return max(2, int(0.001 * 150 ** ((100 - s) / 100) * blocks + 0.5))


def floor_luma(sensitivity):
    """Smallest block change (luma steps) that counts: 13 at 0 .. 3 at 100."""
    s = max(0, min(100, sensitivity))
    return 3 + (100 - s) / 10


@micropython.viper
def _bg_hist(bg, masked, n: int, hist):
    b = ptr16(bg)
    m = ptr8(masked)
    h = ptr32(hist)
    for i in range(256):
        h[i] = 0
    for i in range(n):
        if m[i] == 0:
            v = b[i] >> 8
            h[v] = h[v] + 1


@micropython.viper
def _quantile(hist, start: int, bins: int, rank: int) -> int:
    h = ptr32(hist)
    total = 0
    for i in range(bins):
        total += h[start + i]
        if total > rank:
            return i
    return bins - 1


@micropython.viper
def _median256(hist, start: int, bins: int, rank: int) -> int:
    # the rank-th value in 1/256 steps, interpolated inside its bin: the
    # medians of integer differences are then good to a fraction of a step
    h = ptr32(hist)
    total = 0
    for i in range(bins):
        c = h[start + i]
        if total + c > rank:
            return (i << 8) + ((rank - total) * 256 + 128) // c - 128
        total += c
    return (bins - 1) << 8


@micropython.viper
def _diff_hist(luma, bg, masked, n: int, split: int, hist) -> int:
    # two 512-bin histograms of (frame - background) + 256: darker, brighter
    x = ptr8(luma)
    b = ptr16(bg)
    m = ptr8(masked)
    h = ptr32(hist)
    for i in range(1024):
        h[i] = 0
    dark = 0
    for i in range(n):
        if m[i] == 0:
            v = b[i] >> 8
            d = x[i] - ((b[i] + 128) >> 8) + 256
            if v < split:
                h[d] = h[d] + 1
                dark += 1
            else:
                h[512 + d] = h[512 + d] + 1
    return dark


@micropython.viper
def _classify(luma, bg, noise, masked, level, n: int, off: int, slope: int,
              pivot: int, floor: int) -> int:
    # level: 2 strong, 1 weak, 0 still; returns the blocks changed before
    # light compensation << 16 | the strong blocks after it
    x = ptr8(luma)
    b = ptr16(bg)
    z = ptr16(noise)
    m = ptr8(masked)
    lv = ptr8(level)
    strong = 0
    raw = 0
    for i in range(n):
        lv[i] = 0
        if m[i]:
            continue
        t = z[i] * _NOISE_K
        if t < floor:
            t = floor
        r = (x[i] << 8) - b[i]
        if r > t or r < 0 - t:
            raw += 1
        r = r - off - ((slope * (b[i] - pivot)) >> 8)
        if r < 0:
            r = 0 - r
        if r > t:
            lv[i] = 2
            strong += 1
        elif r + r > t:
            lv[i] = 1
    return (raw << 16) | strong


@micropython.viper
def _regions(level, mark, queue, cols: int, rows: int, need: int, out):
    # 4-connected regions seeded by strong blocks, grown over weak ones.
    # mark: 1 in a small region, 2 in a region of >= need blocks.
    # out: qualifying blocks, x0, y0, x1, y1, largest region
    lv = ptr8(level)
    mk = ptr8(mark)
    q = ptr16(queue)
    o = ptr32(out)
    n = cols * rows
    for i in range(n):
        mk[i] = 0
    total = 0
    ux0 = cols
    uy0 = rows
    ux1 = -1
    uy1 = -1
    largest = 0
    tail = 0
    for seed in range(n):
        if lv[seed] != 2 or mk[seed]:
            continue
        start = tail
        head = tail
        q[tail] = seed
        tail += 1
        mk[seed] = 1
        x0 = cols
        y0 = rows
        x1 = -1
        y1 = -1
        while head < tail:
            i = q[head]
            head += 1
            y = i // cols
            x = i - y * cols
            if x < x0:
                x0 = x
            if x > x1:
                x1 = x
            if y < y0:
                y0 = y
            if y > y1:
                y1 = y
            # each block enters the queue once: the queue never exceeds n
            if x > 0 and lv[i - 1] and not mk[i - 1]:
                mk[i - 1] = 1
                q[tail] = i - 1
                tail += 1
            if x < cols - 1 and lv[i + 1] and not mk[i + 1]:
                mk[i + 1] = 1
                q[tail] = i + 1
                tail += 1
            if y > 0 and lv[i - cols] and not mk[i - cols]:
                mk[i - cols] = 1
                q[tail] = i - cols
                tail += 1
            if y < rows - 1 and lv[i + cols] and not mk[i + cols]:
                mk[i + cols] = 1
                q[tail] = i + cols
                tail += 1
        size = tail - start
        if size > largest:
            largest = size
        if size >= need:
            for k in range(start, tail):
                mk[q[k]] = 2
            total += size
            if x0 < ux0:
                ux0 = x0
            if y0 < uy0:
                uy0 = y0
            if x1 > ux1:
                ux1 = x1
            if y1 > uy1:
                uy1 = y1
    o[0] = total
    o[1] = ux0
    o[2] = uy0
    o[3] = ux1
    o[4] = uy1
    o[5] = largest


@micropython.viper
def _learn(luma, bg, noise, mark, streak, changed, n: int, shift: int,
           off: int, slope: int, pivot: int, cap: int, warm: int):
    x = ptr8(luma)
    b = ptr16(bg)
    z = ptr16(noise)
    mk = ptr8(mark)
    st = ptr8(streak)
    ch = ptr8(changed)
    for i in range(n):
        k = mk[i]
        ch[i] = 1 if k else 0
        if k and not warm:
            if st[i] < 255:
                st[i] = st[i] + 1
            if st[i] < _ABSORB:
                if k == 1:   # a small region: noise, it still teaches the noise level
                    r = (x[i] << 8) - b[i] - off - ((slope * (b[i] - pivot)) >> 8)
                    if r < 0:
                        r = 0 - r
                    if r > cap:
                        r = cap
                    z[i] = z[i] + ((r - z[i]) >> _NOISE_SHIFT)
                continue
            b[i] = x[i] << 8        # there too long: it is background now
            st[i] = 0
            continue
        st[i] = 0
        r = (x[i] << 8) - b[i] - off - ((slope * (b[i] - pivot)) >> 8)
        if r < 0:
            r = 0 - r
        if r > cap:
            r = cap
        z[i] = z[i] + ((r - z[i]) >> (_WARM_SHIFT if warm else _NOISE_SHIFT))
        b[i] = b[i] + (((x[i] << 8) - b[i]) >> shift)


@micropython.viper
def _rebase(luma, bg, streak, n: int):
    x = ptr8(luma)
    b = ptr16(bg)
    st = ptr8(streak)
    for i in range(n):
        b[i] = x[i] << 8
        st[i] = 0


class Detector:
    """Feed it one luma map per analysed frame; it says when motion starts
    and ends, where it is, and which blocks changed."""

    def __init__(self, cols, rows, sensitivity=50, mask=None):
        self.sensitivity = sensitivity
        self.end_frames = _END_FRAMES
        self._mask = None
        self._hist = bytearray(4 * 1024)
        self._out = bytearray(4 * 6)
        self.resize(cols, rows)
        self.mask = mask

    @property
    def mask(self):
        return self._mask

    @mask.setter
    def mask(self, value):
        if isinstance(value, str):
            value = parse_mask(value)
        if value is not None and len(value) != 24:
            raise ValueError('mask: 24 bytes expected')
        self._mask = value
        self._map_mask()

    def resize(self, cols, rows):
        """A new frame size: new buffers, and the background is forgotten."""
        n = cols * rows
        if n > 32767:
            raise ValueError('map too large')
        self.cols = cols
        self.rows = rows
        self._bg = bytearray(2 * n)
        self._noise = bytearray(2 * n)
        self._masked = bytearray(n)
        self._level = bytearray(n)
        self._mark = bytearray(n)
        self._streak = bytearray(n)
        self._queue = bytearray(2 * n)
        self.changed = bytearray(n)
        self._map_mask()
        self.reset()

    def reset(self):
        """Forget the background; the next frames learn it again."""
        self.frames = 0
        self.moving = False
        self.region = None
        self._hits = 0
        self._gone = 0
        z = memoryview(self._noise)
        for i in range(0, len(z), 2):
            z[i] = _NOISE_START & 255
            z[i + 1] = _NOISE_START >> 8

    def _map_mask(self):
        if not hasattr(self, '_masked'):
            return
        cols, rows, m, bits = self.cols, self.rows, self._masked, self._mask
        free = 0
        for y in range(rows):
            cy = y * MASK_ROWS // rows
            for x in range(cols):
                cell = cy * MASK_COLS + x * MASK_COLS // cols
                off = 1 if bits is not None and bits[cell >> 3] & (0x80 >> (cell & 7)) else 0
                m[y * cols + x] = off
                free += 1 - off
        self._free = free

    def feed(self, luma):
        """One analysed frame's map (cols*rows bytes) -> NONE, STARTED or ENDED."""
        n = self.cols * self.rows
        if len(luma) != n:
            raise ValueError('map size')
        self.frames += 1
        if self.frames == 1:
            _rebase(luma, self._bg, self._streak, n)
            return NONE
        free = self._free
        if free == 0:
            return self._no_motion()
        hist = self._hist
        # light compensation: a line through the median changes of the darker
        # and the brighter half of the background
        _bg_hist(self._bg, self._masked, n, hist)
        q1 = _median256(hist, 0, 256, free // 4)
        q2 = _quantile(hist, 0, 256, free // 2)
        q3 = _median256(hist, 0, 256, free * 3 // 4)
        dark = _diff_hist(luma, self._bg, self._masked, n, q2, hist)
        slope = 0
        if q3 - q1 >= _MIN_FLAT << 8 and 0 < dark < free:
            dl = _median256(hist, 0, 512, dark // 2) - (256 << 8)
            du = _median256(hist, 512, 512, (free - dark) // 2) - (256 << 8)
            # a gain between 0.5 and 1.5: anything steeper is not light
            slope = max(-128, min(128, ((du - dl) << 8) // (q3 - q1)))
            off = dl
            pivot = q1
        if slope == 0:
            _diff_hist(luma, self._bg, self._masked, n, 256, hist)   # one group: an offset
            off = _median256(hist, 0, 512, free // 2) - (256 << 8)
            pivot = 0
        floor = int(floor_luma(self.sensitivity) * 256)
        counts = _classify(luma, self._bg, self._noise, self._masked, self._level,
                           n, off, slope, pivot, floor)
        strong = counts & 0xffff
        raw = counts >> 16
        warm = self.frames <= _WARMUP
        if strong * 100 > free * _LIGHT_PCT or raw * 100 > free * _LIGHT_RAW_PCT:
            # most of the frame changed at once: light, not motion
            _rebase(luma, self._bg, self._streak, n)
            for i in range(n):
                self.changed[i] = 0
            # one frame is a noisy background: average a few before judging
            self.frames = min(self.frames, _WARMUP - _RELEARN)
            self._hits = 0
            return NONE
        need = min_blocks(self.sensitivity, free)
        keep = need * 2 // 3 if self.moving else need
        out = self._out
        _regions(self._level, self._mark, self._queue, self.cols, self.rows, max(2, keep),
                 out)
        _learn(luma, self._bg, self._noise, self._mark, self._streak, self.changed, n,
               _WARM_SHIFT if warm else _LEARN_SHIFT, off, slope, pivot, 2 * floor,
               1 if warm else 0)
        if warm:
            return NONE
        blocks = _word(out, 0)
        if blocks == 0:
            return self._no_motion()
        self.region = {'box': [_word(out, 1), _word(out, 2), _word(out, 3), _word(out, 4)],
                       'blocks': blocks, 'area': blocks / free}
        if self.moving:
            self._gone = 0
            return NONE
        self._hits += 1
        if self._hits >= _CONFIRM:
            self.moving = True
            self._gone = 0
            return STARTED
        return NONE

    def _no_motion(self):
        self._hits = 0
        if not self.moving:
            self.region = None
            return NONE
        self._gone += 1
        if self._gone >= self.end_frames:
            self.moving = False
            self._gone = 0
            return ENDED
        return NONE


def _word(buf, i):
    v = buf[4 * i] | buf[4 * i + 1] << 8 | buf[4 * i + 2] << 16 | buf[4 * i + 3] << 24
    return v - (1 << 32) if v & 0x80000000 else v

"""Motion detector on the 1/8-scale luma map (one byte per 8x8 block).

Timing is in milliseconds from each frame's time stamp, so a board that
analyses 2-5 frames a second behaves as one that analyses 10. Per frame:
  1. Light compensation: the frame is compared with the background through a
     line fitted robustly to the light change: the median difference of the
     darker half of the blocks and of the brighter half (so a lamp's gain
     and an exposure step are both taken out, and a figure under half the
     frame does not move the medians).
  2. Each block's residual is judged against its own noise (mean absolute
     residual, learnt while the block is still): changed above
     max(floor, 4 * noise), weak above half that. The floor falls with the
     sensitivity. A changed block is strong only if its texture changed too:
     against its neighbours it is not the same gain applied to the
     background (a cloud's shadow or a partial light change keeps the
     texture; such "flat" blocks are learnt into the background in 0.4 s).
  3. Activity: a block whose texture keeps starting to change (two onsets
     within ~3.6 s: leaves in the wind) is ignored until it calms down; an
     onset inside a region that travels (moved 2 blocks or more since the
     frame before: a walker, not a swaying tree) does not count.
  4. Strong blocks seed 4-connected regions that grow over weak and flat
     blocks (bounded queue, no recursion); a region of at least min_blocks
     (from the sensitivity: 15 % of the frame at 0, 1.2 % at 50, 2 blocks
     at 100) of which 1/6 are strong is a candidate. Two candidate frames in
     a row: STARTED. No region for 0.5 s: ENDED. While moving, a region far
     from every region of the frame before, seen twice, is a second arrival:
     STARTED again.
  5. More than 40 % of the frame changed at once after compensation (or 60 %
     before it) is a light change, not motion: the background is
     re-baselined and relearnt fast for 0.5 s, no trigger.
  6. The background follows blocks outside regions with a 3.2 s time
     constant; a block changed for 5 s in a row (a parked object) is absorbed.
The mask is a 16 x 12 grid whatever the frame size (see parse_mask).
Zones (firmware/motionzones.py) set `areas`: the blocks of qualifying
regions are then counted per area each frame, into `area_counts`.
"""
import micropython
from micropython import const

NONE = const(0)
STARTED = const(1)
ENDED = const(2)

MASK_COLS = const(16)
MASK_ROWS = const(12)

_WARMUP_MS = const(2000)    # first 2 s (and 4 frames at least): learn fast, never trigger
_WARMUP_MIN = const(4)
_WARM_SHIFT = const(2)
_RELEARN_MS = const(500)    # fast learning after a light change
_LEARN_MS = const(3200)     # background follows still blocks with this time constant
_SHADE_MS = const(400)      # and blocks whose level alone changed (light) with this one
_NOISE_K = const(4)         # strong change: over 4x the block's mean noise
_NOISE_START = const(256)   # 1 luma step, in 1/256
CONFIRM = const(2)          # candidate frames in a row for STARTED: two looks, any rate
END_MS = const(500)         # no region this long: ENDED (zones use both too)
_ABSORB_MS = const(5000)    # a block changed this long joins the background
_STREAK_MS = const(50)      # the changed-streak counter's unit (255 of them: 12.75 s)
_DT_DEFAULT = const(100)    # feed() without a time stamp: 10 fps
_DT_MAX = const(1000)       # a longer gap counts as 1 s
_ONSET = const(1024)        # a block's activity: + this per change onset,
_CALM_PER_S = const(256)    # - this a second,
_ACT_CAP = const(4095)      # at most this,
_BUSY = const(1100)         # over this (2 onsets within 3.6 s) it is ignored
_SPEED = const(4000)        # ms an object takes to cross the frame at least (new regions)
_MAX_BOXES = const(8)       # regions reported per frame
_TRAVEL = const(2)          # blocks a region moves in a frame to be travelling
_ARRIVAL_MS = const(1000)   # a second arrival counts 1 s after the last trigger at the soonest
_SEED_SHARE = const(6)      # a region needs 1/6 of its blocks changed in texture
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


@micropython.viper
def grid_blocks(bits, cols: int, rows: int, out, value: int):
    # OR `value` into out[block] for every block of a cols x rows map under
    # a set cell of a 16 x 12 grid (24 bytes, row-major, high bit first)
    b = ptr8(bits)
    o = ptr8(out)
    for y in range(rows):
        cy = y * MASK_ROWS // rows
        for x in range(cols):
            cell = cy * MASK_COLS + x * MASK_COLS // cols
            if b[cell >> 3] & (0x80 >> (cell & 7)):
                o[y * cols + x] = o[y * cols + x] | value


def min_blocks(sensitivity, blocks):
    """Smallest region that triggers: 15 % of the frame at 0, 1.2 % at 50,
    0.1 % (at least 2 blocks) at 100."""
    s = max(0, min(100, sensitivity))
    return max(2, int(0.001 * 150 ** ((100 - s) / 100) * blocks + 0.5))


def floor_luma(sensitivity):
    """Smallest block change (luma steps) that counts: 13 at 0 .. 3 at 100."""
    s = max(0, min(100, sensitivity))
    return 3 + (100 - s) / 10


def floor16(sensitivity):
    """floor_luma in 1/16 luma steps: one byte per block (48 .. 208)."""
    return int(floor_luma(sensitivity) * 16)


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
def _classify(luma, bg, noise, masked, level, act, tex, n: int, cols: int, off: int,
              slope: int, pivot: int, floors) -> int:
    # level: 2 strong (level and texture changed), 3 flat (level only: a
    # shadow's inside, or an object's plain middle), 1 weak (under the
    # threshold, over half of it), 0 still or busy (act over _BUSY); tex:
    # 1 where the texture changed. Returns the blocks changed before light compensation << 16 |
    # the strong blocks after it.
    x = ptr8(luma)
    b = ptr16(bg)
    z = ptr16(noise)
    m = ptr8(masked)
    lv = ptr8(level)
    a = ptr16(act)
    pv = ptr8(tex)
    fl = ptr8(floors)           # each block's floor in 1/16 luma steps
    strong = 0
    raw = 0
    for i in range(n):
        lv[i] = 0
        if m[i]:
            continue
        t = z[i] * _NOISE_K
        floor = fl[i] << 4
        if t < floor:
            t = floor
        r = (x[i] << 8) - b[i]
        if r > t or r < 0 - t:
            raw += 1
        r = r - off - ((slope * (b[i] - pivot)) >> 8)
        if r < 0:
            r = 0 - r
        e = 0
        if r > t:
            # strong only where the texture changed too: a shadow or a light
            # scales a block and its neighbours alike, which leaves
            # 2|x_i b_j - x_j b_i| / (b_i + b_j) near 0 (in 1/256 steps); the
            # second largest of the four: one differing neighbour is a
            # shadow's hard edge, not an object
            y = i // cols
            c = i - y * cols
            e1 = 0
            e2 = 0
            for k in range(4):
                if k == 0:
                    if c == 0:
                        continue
                    j = i - 1
                elif k == 1:
                    if c == cols - 1:
                        continue
                    j = i + 1
                elif k == 2:
                    if i < cols:
                        continue
                    j = i - cols
                else:
                    j = i + cols
                    if j >= n:
                        continue
                d = x[i] * b[j] - x[j] * b[i]
                if d < 0:
                    d = 0 - d
                h = (b[i] + b[j]) >> 9
                if h < 1:
                    h = 1
                d = d // h
                if d > e1:
                    e2 = e1
                    e1 = d
                elif d > e2:
                    e2 = d
            e = e2
        # texture changed now (for the activity, after the regions); a busy
        # block (leaves in the wind) is left out until it calms down
        pv[i] = 1 if e > t else 0
        if a[i] > _BUSY:
            continue
        if e > t:
            lv[i] = 2
            strong += 1
        elif r > t:
            lv[i] = 3
        elif r + r > t:
            lv[i] = 1
    return (raw << 16) | strong


@micropython.viper
def _regions(level, mark, queue, cols: int, rows: int, need: int, out):
    # 4-connected regions seeded by strong blocks, grown over weak ones.
    # mark: 1 in a small region, 2 + k in qualifying region k (>= need
    # blocks; 2 + _MAX_BOXES from the _MAX_BOXES-th on).
    # out: qualifying blocks, x0, y0, x1, y1, largest region, regions, then
    # x0, y0, x1, y1, size of the first _MAX_BOXES qualifying regions
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
    boxes = 0
    for seed in range(n):
        if lv[seed] != 2 or mk[seed]:
            continue
        start = tail
        head = tail
        seeds = 0
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
            if lv[i] == 2:
                seeds += 1
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
        # an object changes the texture across it; a shadow, mostly its level
        if size >= need and seeds * _SEED_SHARE >= size:
            for k in range(start, tail):
                mk[q[k]] = 2 + boxes
            total += size
            if boxes < _MAX_BOXES:
                o[7 + 5 * boxes] = x0
                o[8 + 5 * boxes] = y0
                o[9 + 5 * boxes] = x1
                o[10 + 5 * boxes] = y1
                o[11 + 5 * boxes] = size
                boxes += 1
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
    o[6] = boxes


@micropython.viper
def _learn(luma, bg, noise, mark, streak, changed, level, n: int, cols: int, shift: int,
           off: int, slope: int, pivot: int, floors, warm: int, step: int, absorb: int,
           fast: int):
    # noise is learnt from residuals up to twice each block's floor (floors:
    # 1/16 luma steps); shift: the learning rate this frame (bg and noise); step: this frame's
    # duration in streak units, absorb: the streak that joins the background;
    # fast: the rate for flat blocks outside a motion region (light per region)
    x = ptr8(luma)
    b = ptr16(bg)
    z = ptr16(noise)
    mk = ptr8(mark)
    st = ptr8(streak)
    ch = ptr8(changed)
    lv = ptr8(level)
    fl = ptr8(floors)
    for i in range(n):
        k = mk[i]
        cap = fl[i] << 5
        ch[i] = 1 if k else 0
        # a shadow: take it in, with the darker blocks in it that changed
        # less than their threshold (their neighbours are flat), so the
        # background stays one gain apart from the picture across the shade
        f = lv[i] == 3
        if not f and lv[i] != 2 and k < 2:
            if (i > 0 and lv[i - 1] == 3) or (i + 1 < n and lv[i + 1] == 3) or \
                    (i >= cols and lv[i - cols] == 3) or (i + cols < n and lv[i + cols] == 3):
                f = True
        if f and k < 2 and not warm:
            b[i] = b[i] + (((x[i] << 8) - b[i]) >> fast)
            st[i] = 0
            continue
        if k and not warm:
            v = st[i] + step
            st[i] = v if v < 255 else 255
            if st[i] < absorb:
                if k == 1:   # a small region: noise, it still teaches the noise level
                    r = (x[i] << 8) - b[i] - off - ((slope * (b[i] - pivot)) >> 8)
                    if r < 0:
                        r = 0 - r
                    if r > cap:
                        r = cap
                    z[i] = z[i] + ((r - z[i]) >> shift)
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
        z[i] = z[i] + ((r - z[i]) >> shift)
        b[i] = b[i] + (((x[i] << 8) - b[i]) >> shift)


@micropython.viper
def _activity(tex, prev, mark, act, travel, n: int, calm: int):
    # a block's activity: + _ONSET when its texture starts to change, unless
    # its region travels (a walker moving on), - calm a frame
    t = ptr8(tex)
    pv = ptr8(prev)
    mk = ptr8(mark)
    a = ptr16(act)
    tr = ptr8(travel)
    for i in range(n):
        ac = a[i] - calm
        if ac < 0:
            ac = 0
        if t[i] and not pv[i]:
            k = mk[i]
            if k < 2 or not tr[k - 2]:
                ac += _ONSET
                if ac > _ACT_CAP:
                    ac = _ACT_CAP
        pv[i] = t[i]
        a[i] = ac


@micropython.viper
def _area_counts(mark, areas, n: int, counts):
    # counts[z] (16 bits): blocks of qualifying regions (mark >= 2) in area z
    mk = ptr8(mark)
    a = ptr8(areas)
    c = ptr16(counts)
    for i in range(n):
        if mk[i] >= 2:
            v = a[i]
            z = 0
            while v:
                if v & 1:
                    c[z] += 1
                v >>= 1
                z += 1


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
        self.end_ms = END_MS
        self.dt = _DT_DEFAULT       # the last frame's duration in ms
        self.min_region = None      # smallest region in blocks; None: from the sensitivity
        self.areas = None           # zones: an area bit per block (firmware/motionzones.py)
        self.area_counts = None     # and the region blocks in each area, 16 bits each
        self.area_floors = None     # and each block's floor (floor16 of its areas)
        self._mask = None
        self._hist = bytearray(4 * 1024)
        self._out = bytearray(4 * (7 + 5 * _MAX_BOXES))
        self._travel = bytearray(_MAX_BOXES + 1)
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
        self._act = bytearray(2 * n)
        self._tex = bytearray(n)
        self._prev = bytearray(n)
        self._queue = bytearray(2 * n)
        self._plain_floors = bytearray(n)
        self._floor_fill = None
        self.changed = bytearray(n)
        self._map_mask()
        self.reset()

    def reset(self):
        """Forget the background; the next frames learn it again."""
        self.frames = 0
        self.moving = False
        self.region = None
        self._hits = 0
        self._gone_ms = 0
        self._age_ms = 0        # time since the first frame or the last light change (capped)
        self._stamp = None      # the last frame's ticks_ms: refreshed every frame
        self._boxes = []        # the last frame's regions, to tell a new one from one moving on
        self._fresh = None      # a new region seen once while moving: one more look confirms it
        self._since_ms = 0      # since the last STARTED (capped)
        for i in range(len(self._act)):
            self._act[i] = 0
        z = memoryview(self._noise)
        for i in range(0, len(z), 2):
            z[i] = _NOISE_START & 255
            z[i + 1] = _NOISE_START >> 8

    def watch_areas(self, areas=None, counts=None, min_region=None, floors=None):
        """Count region blocks per area (a bit per area in each block of
        `areas`) into `counts` each frame, keeping regions of min_region
        blocks, each block judged against its floor in `floors`; no areas:
        the whole picture, as the sensitivity says."""
        self.areas = areas
        self.area_counts = counts
        self.min_region = min_region
        self.area_floors = floors

    def _floors(self):
        """Each block's floor: the areas', or one for the sensitivity."""
        if self.area_floors is not None:
            return self.area_floors
        level = floor16(self.sensitivity)
        if self._floor_fill != level:
            self._floor_fill = level
            self._plain_floors[:] = bytes((level,)) * len(self._plain_floors)
        return self._plain_floors

    def _map_mask(self):
        if not hasattr(self, '_masked'):
            return
        m = self._masked
        for i in range(len(m)):
            m[i] = 0
        if self._mask is not None:
            grid_blocks(self._mask, self.cols, self.rows, m, 1)
        self._free = len(m) - sum(m)

    def _dt(self, ms):
        """This frame's duration in ms (since the last analysed frame)."""
        if ms is None:
            return _DT_DEFAULT
        last, self._stamp = self._stamp, ms
        if last is None:
            return _DT_DEFAULT
        return max(1, min(_DT_MAX, ms - last))

    def feed(self, luma, ms=None):
        """One analysed frame's map (cols*rows bytes) and when it was taken
        (ms of a clock that never wraps, firmware/ticks.now_ms(); None: 100 ms
        after the last) -> NONE, STARTED or ENDED. STARTED
        again while moving: a new region came in (a second arrival)."""
        n = self.cols * self.rows
        if len(luma) != n:
            raise ValueError('map size')
        dt = self.dt = self._dt(ms)     # this frame's duration (zones time by it too)
        self.frames += 1
        tally = self.area_counts
        if tally is not None:
            for i in range(len(tally)):
                tally[i] = 0
        if self.frames == 1:
            _rebase(luma, self._bg, self._streak, n)
            return NONE
        self._age_ms = min(self._age_ms + dt, 60000)
        free = self._free
        if free == 0:
            return self._no_motion(dt)
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
        floors = self._floors()
        counts = _classify(luma, self._bg, self._noise, self._masked, self._level,
                           self._act, self._tex, n, self.cols, off, slope, pivot, floors)
        strong = counts & 0xffff
        raw = counts >> 16
        warm = self._age_ms <= _WARMUP_MS or self.frames <= _WARMUP_MIN
        if strong * 100 > free * _LIGHT_PCT or raw * 100 > free * _LIGHT_RAW_PCT:
            # most of the frame changed at once: light, not motion
            _rebase(luma, self._bg, self._streak, n)
            for i in range(n):
                self.changed[i] = 0
            # one frame is a noisy background: average a few before judging
            self._age_ms = min(self._age_ms, _WARMUP_MS - _RELEARN_MS)
            self._hits = 0
            return NONE
        need = self.min_region or min_blocks(self.sensitivity, free)
        keep = need * 2 // 3 if self.moving else need
        out = self._out
        _regions(self._level, self._mark, self._queue, self.cols, self.rows, max(2, keep), out)
        if self.areas is not None and not warm:     # no zone counts while (re)learning
            _area_counts(self._mark, self.areas, n, self.area_counts)
        # the background's time constant in frames of this length, as a shift
        shift = _WARM_SHIFT if warm else _log2(_LEARN_MS // dt)
        _learn(luma, self._bg, self._noise, self._mark, self._streak, self.changed,
               self._level, n, self.cols, shift, off, slope, pivot, floors, 1 if warm else 0,
               max(1, (dt + _STREAK_MS // 2) // _STREAK_MS), _ABSORB_MS // _STREAK_MS,
               _log2(_SHADE_MS // dt))
        self._since_ms = min(self._since_ms + dt, _ARRIVAL_MS)
        boxes = [[_word(out, 7 + 5 * k + j) for j in range(5)] for k in range(_word(out, 6))]
        last, self._boxes = self._boxes, boxes
        reach = max(2, self.cols * dt // _SPEED)   # how far a region moves in a frame
        travel = self._travel
        for k in range(_MAX_BOXES + 1):
            travel[k] = 1 if k < len(boxes) and _travels(boxes[k], last, reach) else 0
        _activity(self._tex, self._prev, self._mark, self._act, travel, n,
                  _CALM_PER_S * dt // 1000)
        if warm:
            return NONE
        if not boxes:
            self._fresh = None
            return self._no_motion(dt)
        blocks = 0
        box = [self.cols, self.rows, -1, -1]
        for b in boxes:
            blocks += b[4]
            box = [min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3])]
        self.region = {'box': box, 'blocks': blocks, 'area': blocks / free}
        if self.moving:
            self._gone_ms = 0
            box = self._arrival(boxes, last, reach, need)
            if box is None or self._since_ms < _ARRIVAL_MS:
                return NONE
            self.region['box'] = box[:4]    # where the newcomer is
            self._since_ms = 0
            return STARTED
        self._hits += 1
        if self._hits >= CONFIRM:
            self.moving = True
            self._gone_ms = 0
            self._fresh = None
            self._since_ms = 0
            return STARTED
        return NONE

    def _arrival(self, boxes, last, reach, need):
        """While moving: the box of a region far from every region of the
        frame before, seen on two looks in a row (a second arrival, not the
        first one moving on), or None."""
        fresh, self._fresh = self._fresh, None
        for box in boxes:
            # confirmed at full size: regions kept while moving may be 2/3 of need
            if fresh is not None and box[4] >= need and _near(box, [fresh], reach):
                return box
            if not _near(box, last, reach):
                self._fresh = box
        return None

    def _no_motion(self, dt):
        self._hits = 0
        if not self.moving:
            self.region = None
            return NONE
        self._gone_ms += dt
        if self._gone_ms >= self.end_ms:
            self.moving = False
            self._gone_ms = 0
            return ENDED
        return NONE


def _log2(v):
    """floor(log2(v)), at least 1."""
    k = 1
    while v >= 4:
        v >>= 1
        k += 1
    return k


def _travels(box, boxes, reach):
    """box is a region of the frame before moved on by _TRAVEL blocks or more
    (its centre, to the nearest of boxes within reach): a walker does, a
    swaying tree mostly does not."""
    cx, cy = box[0] + box[2], box[1] + box[3]        # twice the centre
    best = None
    for b in boxes:
        if _near(box, [b], reach):
            d = max(abs(cx - b[0] - b[2]), abs(cy - b[1] - b[3]))
            best = d if best is None or d < best else best
    return best is not None and best >= 2 * _TRAVEL


def _near(box, boxes, reach):
    """box overlaps one of boxes grown by reach blocks each way."""
    for b in boxes:
        if box[0] <= b[2] + reach and b[0] <= box[2] + reach and \
                box[1] <= b[3] + reach and b[1] <= box[3] + reach:
            return True
    return False


def _word(buf, i):
    v = buf[4 * i] | buf[4 * i + 1] << 8 | buf[4 * i + 2] << 16 | buf[4 * i + 3] << 24
    return v - (1 << 32) if v & 0x80000000 else v

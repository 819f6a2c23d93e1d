"""Motion zones: up to 4 named parts of the picture, each with its own
sensitivity, that say where the motion is (the motion_zones setting).

A zone's cells are a 16 x 12 grid, like the mask's. With zones set, each
block is judged against the floor of its most sensitive area and the
detector keeps regions as small as the smallest area asks for; after each
frame the blocks of its regions are counted in each zone and in the rest of
the picture (which keeps the `sensitivity` setting). An area is on after
two looks in a row with at least min_blocks(its sensitivity, its size) of
them, and off when it has had fewer for 0.5 s. An area going on is a trigger with a cooldown of its
own; a count-only zone's trigger is counted and reported, and saves no
snapshot and starts no clip.
"""
import micropython
from micropython import const
from firmware.motiondetect import CONFIRM, END_MS, floor16, grid_blocks, min_blocks, parse_mask

AREAS = const(5)        # the zones' bits 0-3, then the rest of the picture
REST = const(4)
_NEVER = const(0x7fff)  # the need of an area with no block (fully masked)


class Zones:
    """The zones, their map of the detector's blocks, and which are on."""

    def __init__(self, zones, sensitivity):
        self.zones = zones          # the setting's value: a list of dicts
        self.sensitivity = sensitivity
        self.areas = None           # per block: the bits of its zones, or REST's
        self.floors = None          # per block: the floor of its most sensitive area
        self.counts = bytearray(2 * AREAS)     # the detector's: region blocks per area
        self.changed = False        # an area went on or off with the last frame
        self._need = [_NEVER] * AREAS
        self._hits = bytearray(AREAS)
        self._on = bytearray(AREAS)
        self._gone_ms = [0] * AREAS
        self._last_ms = [None] * AREAS     # each area's last trigger (ticks.now_ms)
        self._mapped = [None] * AREAS      # the zone names of the last map()

    def map(self, cols, rows, mask):
        """The area map of a cols x rows block map (mask: the motion_mask
        setting); returns the smallest region any area needs, in blocks. A
        zone that keeps its name stays on and keeps its cooldown."""
        n = cols * rows
        masked = bytearray(n)
        grid_blocks(parse_mask(mask), cols, rows, masked, 1)
        areas = self.areas = bytearray(n)
        for z, zone in enumerate(self.zones):
            grid_blocks(parse_mask(zone['cells']), cols, rows, areas, 1 << z)
        levels = [self.sensitivity if a == REST else self.zones[a]['sensitivity']
                  if a < len(self.zones) else None for a in range(AREAS)]
        table = bytes(255 if level is None else floor16(level) for level in levels)
        sizes = bytearray(2 * AREAS)
        self.floors = bytearray(n)
        _settle(areas, masked, n, sizes, table, self.floors)
        for a in range(AREAS):
            size = sizes[2 * a] | sizes[2 * a + 1] << 8
            self._need[a] = min_blocks(levels[a], size) if levels[a] is not None and size \
                else _NEVER
            name = self.zones[a]['name'] if a < len(self.zones) else None
            if a != REST and name != self._mapped[a]:
                self._mapped[a] = name
                self._forget(a)
        return min(self._need)

    def clear(self):
        """Every area off, no cooldown running."""
        for a in range(AREAS):
            self._forget(a)
            self._mapped[a] = None

    def _forget(self, a):
        self._hits[a] = self._on[a] = 0
        self._gone_ms[a] = 0
        self._last_ms[a] = None
        self.changed = True

    def judge(self, moving, ms, dt, cooldown_ms):
        """After each analysed frame (taken at `ms`, ticks.now_ms, lasting
        `dt` ms as the detector timed it; `moving`: the detector's episode,
        armed): the areas that went on now and are out of their cooldown.
        On after CONFIRM looks in a row, off after END_MS with too few."""
        counts = self.counts
        fresh = []
        self.changed = False
        for a in range(AREAS):
            blocks = counts[2 * a] | counts[2 * a + 1] << 8
            need = self._need[a]
            if self._on[a]:
                need = max(2, need * 2 // 3)    # kept on as the detector keeps a region
            if blocks >= need:
                self._gone_ms[a] = 0
                self._hits[a] = min(CONFIRM, self._hits[a] + 1)
            else:
                self._hits[a] = 0
                self._gone_ms[a] = min(END_MS, self._gone_ms[a] + dt)
            if self._on[a]:
                if not moving or self._gone_ms[a] >= END_MS:
                    self._on[a] = 0
                    self.changed = True
            elif moving and self._hits[a] >= CONFIRM:
                self._on[a] = 1
                self.changed = True
                since = self._last_ms[a]
                if since is None or ms - since >= cooldown_ms:
                    self._last_ms[a] = ms
                    fresh.append(a)
        return fresh

    def names_on(self):
        """The names of the zones with motion now."""
        return [zone['name'] for z, zone in enumerate(self.zones) if self._on[z]]

    def names(self, areas):
        return [self.zones[a]['name'] for a in areas if a != REST]

    def saves(self, areas):
        """A trigger in these areas saves a snapshot (and may start a clip)."""
        return any(a == REST or not self.zones[a]['count_only'] for a in areas)

    def motion(self):
        """Motion now in an area that is not count-only (state['motion'])."""
        return any(self._on[a] for a in range(AREAS)
                   if a == REST or a < len(self.zones) and not self.zones[a]['count_only'])


@micropython.viper
def _settle(areas, masked, n: int, sizes, table, floors):
    # a masked block is in no area, one in no zone is in REST; sizes[a] (16
    # bits): the blocks of each area; floors[i]: the lowest of its areas'
    # floors in table
    ar = ptr8(areas)
    m = ptr8(masked)
    s = ptr16(sizes)
    t = ptr8(table)
    fl = ptr8(floors)
    for i in range(n):
        fl[i] = 255
        if m[i]:
            ar[i] = 0
            continue
        if ar[i] == 0:
            ar[i] = 1 << REST
        v = ar[i]
        z = 0
        while v:
            if v & 1:
                s[z] += 1
                if t[z] < fl[i]:
                    fl[i] = t[z]
            v >>= 1
            z += 1

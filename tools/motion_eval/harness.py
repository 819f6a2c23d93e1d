# Host only, never goes onto a board: runs under .venv/bin/micropython.
"""Replay a maps file through firmware/motiondetect.py and through the old
JPEG-size detector, print one JSON line of events.

    micropython harness.py REPO MAPS MASK|- SENS[,SENS...] [--rates FPS[,FPS...]] [--bench]

MAPS: b'LMAP', u16 cols, u16 rows, u32 frames, then per frame a u32 JPEG
size and cols*rows luma bytes (little endian).
Frames are 100 ms apart (the scenes' 10 fps). At an analysed rate below
that the detector sees only the frames the board would analyse: after each
analysis the newest frame, i.e. frame ceil(k * 10 / rate) for k = 0, 1, ...
Output: {"new": {"50@10": [[frame, event], ...]}, "old": {"50": [frame, ...]},
         "us": {"50": mean microseconds per feed() at 10 fps}}
"""
import json
import struct
import sys
import time


class OldDetector:
    """firmware/motion.py's frame() math (JPEG size against a running
    baseline), copied as of 2026-11-26; a trigger is a frame it would call
    trigger('frame') on. The cooldown is applied by the scorer."""

    def __init__(self, sensitivity):
        self.sensitivity = sensitivity
        self.baseline = None
        self.noise = 0
        self.changed_frames = 0

    def frame(self, size):
        if self.baseline is None:
            self.baseline = size
            self.noise = size / 100
            return False
        deviation = abs(size - self.baseline)
        threshold = (2 + (100 - self.sensitivity) * 0.28) / 100
        limit = max(threshold * self.baseline, 4 * self.noise)
        if deviation > limit:
            self.changed_frames += 1
            self.baseline += (size - self.baseline) / 32
            return self.changed_frames >= 2
        self.changed_frames = 0
        self.baseline += (size - self.baseline) / 8
        if deviation <= 2 * self.noise:
            self.noise += (deviation - self.noise) / 8
        return False


def main():
    repo, path, mask, sens = sys.argv[1:5]
    bench = '--bench' in sys.argv
    rates = [10]
    if '--rates' in sys.argv:
        rates = [int(r) for r in sys.argv[sys.argv.index('--rates') + 1].split(',')]
    sys.path.insert(0, repo + '/firmware')
    import motiondetect
    sens = [int(s) for s in sens.split(',')]
    mask = None if mask == '-' else mask
    f = open(path, 'rb')
    magic, cols, rows, count = struct.unpack('<4sHHI', f.read(12))
    assert magic == b'LMAP'
    if bench:       # also a half-size map: every other block of every other row
        small = bytearray((cols // 2) * (rows // 2))
    new = {}
    old = {}
    keys = [(s, r) for r in rates for s in sens]
    for s in sens:
        old[s] = OldDetector(s)
    for key in keys:
        new[key] = motiondetect.Detector(cols, rows, key[0], mask)
    events = dict((key, []) for key in keys)
    nxt = dict((r, 0) for r in rates)     # the next frame each rate analyses
    done = dict((r, 0) for r in rates)
    triggers = dict((s, []) for s in sens)
    spent = dict((s, 0) for s in sens)
    half = motiondetect.Detector(cols // 2, rows // 2, 50, mask) if bench else None
    spent_half = 0
    head = bytearray(4)
    luma = bytearray(cols * rows)
    for i in range(count):
        f.readinto(head)
        f.readinto(luma)
        size = struct.unpack('<I', head)[0]
        for r in rates:
            if i < nxt[r]:
                continue
            done[r] += 1
            nxt[r] = (done[r] * 10 + r - 1) // r
            for s in sens:
                t0 = time.ticks_us()
                ev = new[(s, r)].feed(luma, i * 100)
                if r == 10:
                    spent[s] += time.ticks_diff(time.ticks_us(), t0)
                if ev:
                    events[(s, r)].append([i, ev])
        for s in sens:
            if old[s].frame(size):
                triggers[s].append(i)
        if bench:
            w = cols // 2
            for y in range(rows // 2):
                for x in range(w):
                    small[y * w + x] = luma[2 * y * cols + 2 * x]
            t0 = time.ticks_us()
            half.feed(small, i * 100)
            spent_half += time.ticks_diff(time.ticks_us(), t0)
    out = {'new': dict(('%d@%d' % key, events[key]) for key in keys),
           'old': dict((str(s), triggers[s]) for s in sens),
           'us': dict((str(s), spent[s] / max(1, count)) for s in sens),
           'cols': cols, 'rows': rows}
    if bench:
        out['us_half'] = spent_half / max(1, count)
    print(json.dumps(out))


main()

"""The luma-map motion detector (firmware/motiondetect.py) under MicroPython:
unit behaviour on small synthetic maps, and a CI subset of the offline
evaluation (tools/motion_eval) held to the targets at sensitivity 50."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(REPO, '.venv', 'bin', 'micropython')
sys.path.insert(0, os.path.join(REPO, 'tools', 'motion_eval'))

import offline  # noqa: E402

PRELUDE = '''
import sys
sys.path.insert(0, %r)
import motiondetect as md
import random
random.seed(7)
C, R = 40, 30
BASE = bytearray(60 + random.getrandbits(7) for _ in range(C * R))

def frame(blob_x=None, add=0, blob_y=10):
    f = bytearray(C * R)
    for i in range(C * R):
        f[i] = max(0, min(255, BASE[i] + add + random.getrandbits(2) - 2))
    if blob_x is not None:
        for y in range(blob_y, blob_y + 8):
            for x in range(blob_x, blob_x + 5):
                if 0 <= x < C:
                    f[y * C + x] = 240
    return f

def run(det, frames, ms=None):
    out = []
    for t, f in enumerate(frames):
        ev = det.feed(f) if ms is None else det.feed(f, t * ms)
        if ev:
            out.append((t, ev))
    return out

def shaded(f, edge, gain):
    # a soft shadow edge at column edge (10 columns of ramp), gain left of it
    for x in range(C):
        g = gain if x < edge - 5 else 1.0 if x > edge + 5 else \
            gain + (1.0 - gain) * (x - edge + 5) / 10
        for y in range(R):
            f[y * C + x] = int(f[y * C + x] * g)
    return f
''' % os.path.join(REPO, 'firmware')


def micropython(code):
    res = subprocess.run([MICROPYTHON, '-c', PRELUDE + code], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.strip()


def test_moving_blob_starts_once_then_ends():
    out = micropython('''
det = md.Detector(C, R)
frames = [frame() for _ in range(30)] + [frame(x) for x in range(-4, C)] + \\
         [frame() for _ in range(30)]
events = run(det, frames)
print(events)
assert [e for _, e in events] == [md.STARTED, md.ENDED], events
assert 30 <= events[0][0] <= 33, events
r = det.region
assert r is None or set(r) == {'box', 'blocks', 'area'}
assert len(det.changed) == C * R and max(det.changed) <= 1
''')
    assert out


def test_global_brightness_step_does_not_trigger():
    micropython('''
det = md.Detector(C, R, sensitivity=100)
events = run(det, [frame() for _ in range(30)] + [frame(add=40) for _ in range(30)] +
             [frame(add=-30) for _ in range(30)])
assert events == [], events
''')


def test_masked_region_never_triggers():
    micropython('''
# cells 8..15 of every row: the right half, where the blob walks
mask = ('00ff' * 12)
det = md.Detector(C, R, sensitivity=100, mask=mask)
walk = [frame(x) for x in range(C // 2 + 1, C - 5)] * 3
assert run(det, [frame() for _ in range(30)] + walk) == []
det.mask = None
events = run(det, [frame() for _ in range(5)] + walk)
assert events and events[0][1] == md.STARTED, events
''')


def test_timing_is_in_seconds_at_three_frames_a_second():
    micropython('''
det = md.Detector(C, R)
# 3 s still at 3 fps (9 frames), then a blob walks in: found within 1 s
frames = [frame() for _ in range(9)] + [frame(x) for x in range(0, C, 3)]
events = run(det, frames, ms=333)
assert events and events[0] == (10, md.STARTED), events
# and it ends 0.5 s (2 frames at 3 fps) after the blob is gone, not 5 frames
events = run(det, [frame() for _ in range(6)], ms=333)
assert events == [(1, md.ENDED)], events
''')


def test_a_second_arrival_while_moving_is_a_new_trigger():
    micropython('''
det = md.Detector(C, R)
run(det, [frame() for _ in range(30)])
def two(a, b):
    f = frame(a)
    for y in range(20, 28):
        for x in range(b, b + 5):
            if 0 <= x < C:
                f[y * C + x] = 20
    return f
first = [frame(x) for x in range(0, 10)]
events = run(det, first)
assert [e for _, e in events] == [md.STARTED], events
# the first blob moves on; a second one comes in at the far side
events = []
for k in range(6):
    ev = det.feed(two(10 + k, C - 1 - k))
    if ev:
        events.append((ev, det.region['box']))
assert [e for e, _ in events] == [md.STARTED], events
assert events[0][1][0] >= C - 8, events      # the newcomer's box
''')


def test_a_shadow_sweeping_over_part_of_the_frame_does_not_trigger():
    micropython('''
for sens in (50,):              # the default; at 80 it still fires (README)
    det = md.Detector(C, R, sensitivity=sens)
    still = [frame() for _ in range(30)]
    # a soft edge sweeps to column 20 in 2 s and holds 3 s (leaving: see README)
    sweep = [shaded(frame(), e, 0.6) for e in range(0, 21)]
    hold = [shaded(frame(), 20, 0.6) for _ in range(30)]
    events = run(det, still + sweep + hold)
    assert events == [], (sens, events)
''')


def test_leaves_swaying_on_the_spot_neither_trigger_nor_hold_the_flag():
    micropython('''
import math
LEAVES = [40 + random.getrandbits(8) % 200 for _ in range(12 * 10)]
def sway(t):
    # a 12 x 10 patch of leaves, 2 blocks each way, 1.5 s a sway, from the start
    f = frame()
    dx = int(round(2 * math.sin(2 * math.pi * t / 15)))
    for y in range(10):
        for x in range(12):
            f[(5 + y) * C + 10 + x + dx] = LEAVES[y * 12 + x]
    return f
det = md.Detector(C, R)
events, on = [], 0
for t in range(200):
    ev = det.feed(sway(t), t * 100)
    if ev:
        events.append((t, ev))
    on += 1 if det.moving else 0
assert events == [] and on == 0, (events, on)
''')


def test_parse_mask_rejects_bad_strings():
    micropython('''
assert md.parse_mask('f' + '0' * 47)[0] == 0xf0
assert len(md.parse_mask('A' * 48)) == 24
for bad in ['', '0' * 47, '0' * 49, 'g' + '0' * 47, ' ' + '0' * 47, '+' + '0' * 47, None, 5]:
    try:
        md.parse_mask(bad)
    except ValueError:
        continue
    raise AssertionError(bad)
try:
    md.Detector(C, R, mask='xyz')
    raise AssertionError('bad mask accepted')
except ValueError:
    pass
''')


CI_SCENES = ['still', 'lamp', 'flicker', 'person3', 'foliage_masked']


@pytest.mark.parametrize('split', ['tuning', 'heldout'])
def test_offline_subset_meets_targets(split):
    # at the camera's 10 fps and at the 3 fps a board analyses
    results = offline.evaluate(split, CI_SCENES, sens=(50,), rates=offline.TARGET_RATES)
    bad = offline.targets(results, 50, offline.TARGET_RATES, 'rate')
    assert not bad, bad
    assert results['person3']['rate'][(50, 3)]['found'] == 3


def test_a_change_in_one_frame_alone_never_triggers():
    # motion is confirmed by two frames in a row: single-frame blobs (a
    # glitch, an insect across the lens) never start it, however many there
    # are; the same blob held for a second frame does
    out = micropython('''
det = md.Detector(C, R, sensitivity=100)
frames = [frame() for _ in range(30)]
for x in (2, 12, 22, 32, 7, 17, 27):
    frames += [frame(x), frame(), frame()]
single = run(det, frames)
det2 = md.Detector(C, R, sensitivity=100)
held = run(det2, [frame() for _ in range(30)] + [frame(12), frame(12)] + [frame()] * 10)
print(single)
print(held)
''')
    single, held = out.splitlines()
    assert single == '[]', 'a change in one frame alone started motion: ' + single
    assert held.startswith('[(31, 1)'), 'the second frame of a change did not: ' + held

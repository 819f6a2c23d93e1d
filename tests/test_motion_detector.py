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

def run(det, frames):
    out = []
    for t, f in enumerate(frames):
        ev = det.feed(f)
        if ev:
            out.append((t, ev))
    return out
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
    results = offline.evaluate(split, CI_SCENES, sens=(50,))
    bad = offline.targets(results, 50)
    assert not bad, bad
    assert results['person3']['new'][50]['found'] == 3


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

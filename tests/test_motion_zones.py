"""Motion zones: up to four named parts of the picture, each with its own
sensitivity, say where the motion is (SSE, the trigger event, the snapshot's
comment); a count-only zone counts without saving; bad zones are refused
and change nothing."""
import io
import json
import os
import time

from PIL import Image

from tools.sim.harness import REPO, SSE

# the 16 x 12 grid over the 320 x 240 default frames: a cell is 20 x 20 px;
# the walker (tools/make_frames.py) crosses from left to right at y 70-200


def cells(rows, cols):
    """48 hex digits with the cells of rows x cols set."""
    bits = [1 if r in rows and c in cols else 0 for r in range(12) for c in range(16)]
    return ''.join('%x' % (bits[i] << 3 | bits[i + 1] << 2 | bits[i + 2] << 1 | bits[i + 3])
                   for i in range(0, 192, 4))


def zone(name, rows, cols, sensitivity=50, count_only=False):
    return {'name': name, 'cells': cells(rows, cols), 'sensitivity': sensitivity,
            'count_only': count_only}


ALL_ROWS, ALL_COLS = range(12), range(16)
ZONES = [
    zone('door', ALL_ROWS, range(8)),                           # the left half
    zone('street', ALL_ROWS, range(8, 16), count_only=True),    # the right half
    zone('lawn', range(8, 12), ALL_COLS, sensitivity=0),  # legs only: < 15 % of it
    zone('sky', range(2), ALL_COLS, sensitivity=100),   # nothing moves up there
]


def sim_config(**motion):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'].update(motion)
    return config


def watch(board, seconds, done):
    """Statuses and motion events from SSE for up to `seconds`, or until
    done(statuses, events)."""
    sse = SSE(board)
    statuses, events = [], []
    deadline = time.monotonic() + seconds
    kind = None
    try:
        for line in sse.lines:
            if line.startswith('event:'):
                kind = line.split(':', 1)[1].strip()
            elif line.startswith('data:') and kind in ('status', 'motion'):
                data = json.loads(line.split(':', 1)[1])
                (statuses if kind == 'status' else events).append(data)
            if done(statuses, events) or time.monotonic() > deadline:
                break
    finally:
        sse.close()
    return statuses, events


def test_zones_say_where_and_a_count_only_zone_counts_without_saving(make_board):
    board = make_board(config=sim_config(motion_zones=ZONES, cooldown_s=1)).start()
    board.wait_frame()
    def seen(statuses, events):
        return {n for e in events for n in e['zones']} >= {'door', 'street'} and \
            any(s['motion_zones'] == ['street'] for s in statuses)
    statuses, events = watch(board, 60, seen)
    names = {n for e in events for n in e['zones']}
    assert {'door', 'street'} <= names, events
    # a zone at sensitivity 0 wants 15 % of itself moving; the sky never moves
    assert not names & {'lawn', 'sky'}, events
    assert not any(set(s['motion_zones']) & {'lawn', 'sky'} for s in statuses)
    # the street counts but is not "motion": no clip, no snapshot of it alone
    assert any('door' in s['motion_zones'] and s['motion'] for s in statuses)
    street = [s for s in statuses if s['motion_zones'] == ['street']]
    assert street and not any(s['motion'] for s in street), statuses
    status = board.status()
    assert status['settings']['motion_zones'] == ZONES
    saved = {n: d for n, d in board.card_files(raw=True, settled=True).items()
             if n.startswith('motion-')}
    comments = [Image.open(io.BytesIO(d)).info['comment'].decode() for d in saved.values()]
    # each snapshot names its trigger's zones; none was saved for the street
    # alone (a trigger in both, the walker at the gate, is saved for the door)
    zones = [c.rsplit(' zones=', 1)[1].split(',') for c in comments if ' zones=' in c]
    assert any('door' in z for z in zones), comments
    assert ['street'] not in zones, comments
    # every trigger is counted once, saved or not
    counts = [e['count'] for e in events]
    assert counts == sorted(set(counts)), counts


def test_bad_zones_are_refused_and_change_nothing(board):
    good = [zone('gate', range(3), range(4))]
    bad = [
        'gate',                                             # not a list
        [zone('a', range(1), range(1))] * 2,                # a name twice
        [zone('Gate', range(1), range(1)), zone('gate', range(2), range(2))],
        [zone('z%d' % i, range(1), range(1)) for i in range(5)],    # five
        [zone('', range(1), range(1))],
        [zone('x' * 17, range(1), range(1))],
        [zone("it's", range(1), range(1))],                 # a quote: HA templates
        [zone(' gate', range(1), range(1))],
        [dict(zone('gate', range(1), range(1)), cells='0' * 48)],   # no cell
        [dict(zone('gate', range(1), range(1)), cells='g' * 48)],
        [dict(zone('gate', range(1), range(1)), sensitivity=101)],
        [dict(zone('gate', range(1), range(1)), sensitivity=True)],
        [dict(zone('gate', range(1), range(1)), count_only=1)],
        [dict(zone('gate', range(1), range(1)), colour='red')],     # an unknown key
        [{'name': 'gate', 'cells': cells(range(1), range(1))}],     # keys missing
    ]
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='motion_zones', value=good)['ok'] is True
        for value in bad:
            reply = board.command(ws, cmd='set', key='motion_zones', value=value)
            assert reply['ok'] is False and reply['error'] == 'bad value', (value, reply)
        assert board.command(ws, cmd='status')['status']['settings']['motion_zones'] == good
    # kept across a restart like every other setting
    saves = lambda: board.output()[board.log_start:].count('settings: saved to flash')
    board.wait_for(lambda s: saves() == 1)
    before = saves()
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='motion_zones', value=[])['ok'] is True
    board.wait_for(lambda s: saves() > before)
    before = saves()
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='motion_zones', value=good)['ok'] is True
    board.wait_for(lambda s: saves() > before)
    board.stop()
    board.start()
    assert board.status()['settings']['motion_zones'] == good


# --- the zones' own logic under MicroPython, on small synthetic maps ---------

UNIT = '''
import sys
sys.path.insert(0, %r)
from firmware.motiondetect import Detector
from firmware.motionzones import Zones, REST
import random
random.seed(11)
C, R = 40, 30
BASE = bytearray(60 + random.getrandbits(7) for _ in range(C * R))
LEFT = 'ff00' * 12
RIGHT = '00ff' * 12

def frame(blob_x=None, w=5, add=0):
    f = bytearray(C * R)
    for i in range(C * R):
        f[i] = max(0, min(255, BASE[i] + add + random.getrandbits(2) - 2))
    if blob_x is not None:
        for y in range(10, 18):
            for x in range(blob_x, blob_x + w):
                if 0 <= x < C:
                    f[y * C + x] = 240
    return f

def watch(zones, xs, sensitivity=50, mask='0' * 48, cooldown=5000, w=5, remap=None,
          light=None):
    """Feed 25 still frames, then a blob at each x of xs, 100 ms apart:
    [(frame, fresh areas, zones on, motion)] whenever something changed.
    At frame `remap` the zones are mapped again at sensitivity 60 (a setting
    changed); from frame `light` on, the picture is 40 steps brighter."""
    z = Zones(zones, sensitivity)
    det = Detector(C, R, sensitivity, mask)
    smallest = z.map(C, R, mask)
    det.watch_areas(z.areas, z.counts, smallest, z.floors)
    out = []
    for t, x in enumerate([None] * 25 + list(xs)):
        if t == remap:
            z.sensitivity = 60
            smallest = z.map(C, R, mask)
            det.watch_areas(z.areas, z.counts, smallest, z.floors)
        x, width = x if isinstance(x, tuple) else (x, w)     # (x, w): this frame's width
        det.feed(frame(x, width, 40 if light is not None and t >= light else 0), t * 100)
        fresh = z.judge(det.moving, t * 100, det.dt, cooldown)
        if fresh or z.changed:
            out.append((t, fresh, z.names_on(), z.motion()))
    return z, out

def zone(name, cells, sensitivity=50, count_only=False):
    return {'name': name, 'cells': cells, 'sensitivity': sensitivity, 'count_only': count_only}
''' % REPO


def mpy(code):
    import subprocess
    done = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'micropython'), '-c', UNIT + code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_a_zone_goes_on_with_two_looks_inside_it_and_off_half_a_second_after():
    out = mpy('''
z, out = watch([zone('left', LEFT), zone('right', RIGHT)], [3, 4, 5, 6] + [None] * 10 + [30, 31, 32])
print(out)
# left on at the second look (frame 26), off 0.5 s after the blob went, then right
assert out[0] == (26, [0], ['left'], True), out
off = [o for o in out if o[2] == []][0]
assert 31 <= off[0] <= 33, out
assert (40, [1], ['right'], True) in out, out
assert all('right' not in o[2] for o in out if o[0] < 40), out
print(z.names([0, 1, REST]), z.saves([REST]))
''')
    assert out.splitlines()[-1] == "['left', 'right'] True"


def test_each_zone_has_its_own_sensitivity_and_the_rest_keeps_the_settings():
    # a 5 x 8 blob is 40 blocks: 6.7 % of a half; sensitivity 0 wants 15 %
    mpy('''
z, out = watch([zone('deaf', LEFT, sensitivity=0), zone('keen', RIGHT, sensitivity=50)],
               [5, 6, 7, 8, 9] + [None] * 10 + [25, 26, 27, 28])
assert all('deaf' not in o[2] for o in out), out
assert any(o[1] == [1] for o in out), out
# no zone on the left: the rest of the picture at the `sensitivity` setting
z, out = watch([zone('keen', RIGHT, sensitivity=50)], [5, 6, 7, 8], sensitivity=50)
assert out[0][1] == [REST] and out[0][2] == [] and out[0][3] is True, out
z, out = watch([zone('keen', RIGHT, sensitivity=50)], [5, 6, 7, 8], sensitivity=0)
assert out == [], out
''')


def test_count_only_is_no_motion_and_each_zone_cools_down_alone():
    mpy('''
z, out = watch([zone('street', RIGHT, count_only=True)], [25, 26, 27])
assert out[0][1] == [0] and out[0][2] == ['street'] and out[0][3] is False, out
assert not z.saves([0])
# on, off and on again within the cooldown: one trigger; after it, two
xs = [25, 26, 27] + [None] * 8 + [25, 26, 27]
z, out = watch([zone('street', RIGHT)], xs, cooldown=5000)
assert [o[1] for o in out if o[1]] == [[0]], out
z, out = watch([zone('street', RIGHT)], xs, cooldown=500)
assert [o[1] for o in out if o[1]] == [[0], [0]], out
''')


def test_a_masked_zone_never_goes_on():
    mpy('''
z, out = watch([zone('hidden', RIGHT)], [25, 26, 27], mask=RIGHT)
assert out == [], out
''')


def test_a_setting_changed_during_motion_neither_ends_it_nor_triggers_again():
    # the sensitivity slider moved while someone stands in the zone
    mpy('''
z, out = watch([zone('left', LEFT)], [3, 4, 5, 6, 6, 6, 6, 6], remap=28, cooldown=500)
assert [o[1] for o in out if o[1]] == [[0]], out
assert [o for o in out if 26 < o[0] <= 33] == [], out      # stays on, no new trigger
''')


def test_no_zone_fires_while_the_background_is_relearnt_after_a_light_change():
    # the light comes on as the blob moves to the right: the detector relearns
    # for 0.5 s; counting then would fire the right zone on stale regions
    mpy('''
z, out = watch([zone('left', LEFT), zone('right', RIGHT)], [3, 4, 5, 30, 31, 32], light=28)
assert [o[1] for o in out if o[1]] == [[0]], out
''')


def test_a_zone_stays_on_while_two_thirds_of_its_smallest_region_moves():
    # at sensitivity 30 the half-frame zone wants 20 blocks, and keeps on
    # with 13: the 40-block blob turns it on, 8 blocks of it are too few
    mpy('''
z, out = watch([zone('left', LEFT, sensitivity=30)], [3, 4, 5, 6] + [(6, 1)] * 12)
assert out[0][2] == ['left'], out
off = [o[0] for o in out if o[2] == []]
assert off and off[0] <= 25 + 4 + 7, out       # off 0.5 s after the blob shrank
z, out = watch([zone('left', LEFT, sensitivity=30)], [3, 4, 5, 6] + [(6, 3)] * 12)
assert [o for o in out if o[2] == []] == [], out    # 24 blocks: it stays on
''')

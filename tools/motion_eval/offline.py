"""The fast evaluation loop: scenes -> luma maps (Pillow draft mode, what the
board's decoder gives) -> firmware/motiondetect.py under MicroPython ->
scores against the labels, next to the old JPEG-size detector.

Scoring (fps = 10, grace = 1 s):
  - An episode [first, last] is found by the first STARTED (old detector: the
    first trigger) at a frame t with first <= t <= last + grace; latency is
    (t - first) / fps. A later STARTED in the same window is a repeat, unless
    an episode that overlaps it (a second arrival) is still unfound and
    began at or before t: then it finds that one.
  - A STARTED in no episode's window is a false trigger; the rate is per
    hour of still footage (frames with no figure).
  - The flag: the time from each STARTED to its ENDED (or the clip's end),
    reported for the scenes with no figure at all.
  - The detector runs at the camera's 10 fps and at the analysed rates of a
    slower board (5, 3, 2 fps: the frames it would skip are skipped, see
    harness.py); the old detector at 10 fps only.
  - The old detector has no episodes: a trigger counts as a STARTED unless
    it falls within the configured cooldown (5 s) of the last counted one.
  - Target at sensitivity 50, at 10 and at 3 analysed fps: every episode
    found with latency <= 1.5 s, no false trigger, the flag on for at most
    2 s in a scene with no figure (foliage unmasked excepted: its wind
    starts after a calm lead-in, it shows what the mask is for).
"""
import concurrent.futures
import hashlib
import json
import os
import struct
import subprocess

from PIL import Image

try:
    from . import scenes
except ImportError:
    import scenes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(REPO, '.venv', 'bin', 'micropython')
BUILD = os.path.join(REPO, 'build', 'motion_eval')
SENSITIVITIES = (30, 50, 80, 100)
RATES = (10, 5, 3, 2)           # analysed frames a second
TARGET_RATES = (10, 3)
OLD_COOLDOWN_S = 5
GRACE_S = 1.0
TARGET_S = 1.5
FLAG_S = 2.0                    # longest the flag may stay on without a figure


def luma_map(path):
    """1/8-scale luma of a JPEG (cols, rows, bytes), as libjpeg's DCT scaling
    gives it: the board's jpegluma gives the same within +-2."""
    im = Image.open(path)
    w, h = im.size
    im.draft('L', ((w + 7) // 8, (h + 7) // 8))
    im = im.convert('L')
    return im.size[0], im.size[1], im.tobytes()


def write_maps(folder, out):
    """All frames of a folder (name order) into one maps file for harness.py."""
    names = sorted(n for n in os.listdir(folder) if n.endswith('.jpg'))
    with open(out + '.part', 'wb') as f:
        for k, name in enumerate(names):
            path = os.path.join(folder, name)
            cols, rows, data = luma_map(path)
            if k == 0:
                f.write(struct.pack('<4sHHI', b'LMAP', cols, rows, len(names)))
            f.write(struct.pack('<I', os.path.getsize(path)))
            f.write(data)
    os.replace(out + '.part', out)


def _stamp():
    with open(os.path.join(HERE, 'scenes.py'), 'rb') as f:
        return hashlib.sha1(f.read()).hexdigest()


def prepare(split, name):
    """The scene's folder, rendered (and its maps written) unless up to date."""
    folder = os.path.join(BUILD, split, name)
    stamp = os.path.join(folder, '.stamp')
    want = _stamp()
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        scenes.render(name, scenes.SPLITS[split], folder)
        write_maps(folder, os.path.join(folder, 'maps.bin'))
        with open(stamp, 'w') as f:
            f.write(want)
    return folder


def run_harness(maps, mask, sens=SENSITIVITIES, bench=False, rates=RATES):
    cmd = [MICROPYTHON, os.path.join(HERE, 'harness.py'), REPO, maps, mask or '-',
           ','.join(str(s) for s in sens), '--rates', ','.join(str(r) for r in rates)] + (
               ['--bench'] if bench else [])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode:
        raise RuntimeError('harness failed: ' + (res.stdout + res.stderr)[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def score(starts, labels, events=None):
    """starts: frames of STARTED (events: all [frame, event] pairs, for the
    flag's time) -> dict of found, latencies, false, repeats, flag_s."""
    fps = labels['fps']
    eps = labels['episodes']
    grace = int(GRACE_S * fps)
    lat = [None] * len(eps)
    false = repeats = 0
    for t in starts:
        hit = [k for k, (a, b) in enumerate(eps) if a <= t <= b + grace]
        new = [k for k in hit if lat[k] is None]
        if not hit:
            false += 1
        elif new:
            lat[new[0]] = (t - eps[new[0]][0]) / fps
        else:
            repeats += 1
    flag, on = 0, None
    for t, ev in (events or []):
        if ev == 1 and on is None:
            on = t
        elif ev == 2 and on is not None:
            flag, on = flag + t - on, None
    if on is not None:
        flag += labels['frames'] - on
    still = labels['present'].count(0)
    return {'episodes': len(eps), 'found': sum(1 for v in lat if v is not None),
            'latency': [v for v in lat if v is not None],
            'in_time': sum(1 for v in lat if v is not None and v <= TARGET_S),
            'false': false, 'repeats': repeats, 'still_s': still / fps,
            'flag_s': flag / fps}


def old_starts(triggers, fps):
    out, last = [], None
    for t in triggers:
        if last is None or t - last >= OLD_COOLDOWN_S * fps:
            out.append(t)
            last = t
    return out


def evaluate_scene(folder, sens=SENSITIVITIES, bench=False, rates=RATES):
    """Run one prepared scene folder: {'new': {s: score}, 'old': {s: score},
    'rate': {(s, fps): score}} ('new' is the 10 fps column of 'rate')."""
    with open(os.path.join(folder, 'labels.json')) as f:
        labels = json.load(f)
    res = run_harness(os.path.join(folder, 'maps.bin'), labels.get('mask'), sens, bench, rates)
    out = {'labels': labels, 'us': res['us'], 'cols': res['cols'], 'rows': res['rows'],
           'us_half': res.get('us_half'), 'new': {}, 'old': {}, 'rate': {}}
    for s in sens:
        for r in rates:
            events = res['new']['%d@%d' % (s, r)]
            out['rate'][(s, r)] = score([t for t, ev in events if ev == 1], labels, events)
        if 10 in rates:
            out['new'][s] = out['rate'][(s, 10)]
        out['old'][s] = score(old_starts(res['old'][str(s)], labels['fps']), labels)
    return out


def evaluate(split, names=None, sens=SENSITIVITIES, jobs=2, rates=RATES):
    """Prepare and run a split's scenes, two at a time: {name: result}."""
    names = names or scenes.SCENES

    def one(name):
        return name, evaluate_scene(prepare(split, name), sens, name == 'person3', rates)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return dict(pool.map(one, names))


def _cell(r):
    lat = r['latency']
    if r['episodes']:
        txt = '%d/%d' % (r['found'], r['episodes'])
        txt += ' %.1f/%.1f' % (median(lat), max(lat)) if lat else ' -/-'
        return txt + ' fp%d' % r['false']
    # no figure: the time the flag stayed on instead of the latency
    return '- fp%d on %.1fs' % (r['false'], r.get('flag_s', 0))


def median(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def table(title, results, which, sens=SENSITIVITIES):
    """Rows: scenes; per sensitivity 'found/total median/max latency (s) fpN'."""
    lines = [title, '%-15s' % 'scene' + ''.join('%-22s' % ('sens %d' % s) for s in sens)]
    for name, res in results.items():
        lines.append('%-15s' % name + ''.join('%-22s' % _cell(res[which][s]) for s in sens))
    tot = []
    for s in sens:
        rs = [res[which][s] for res in results.values()]
        found = sum(r['found'] for r in rs)
        eps = sum(r['episodes'] for r in rs)
        lat = [v for r in rs for v in r['latency']]
        # foliage without a mask is expected to fire: left out of the rate
        fp = sum(r['false'] for n, r in zip(results, rs) if n != 'foliage')
        still_h = sum(r['still_s'] for n, r in zip(results, rs) if n != 'foliage') / 3600
        tot.append('%d/%d %s fp/h %.0f' % (found, eps, '%.1f/%.1f' % (median(lat), max(lat))
                                           if lat else '-/-', fp / still_h if still_h else 0))
    lines.append('%-15s' % 'total' + ''.join('%-22s' % t for t in tot))
    return '\n'.join(lines)


def rate_table(title, results, s=50, rates=RATES):
    """Rows: scenes; per analysed rate at sensitivity s, as table() has it."""
    lines = [title, '%-15s' % 'scene' + ''.join('%-22s' % ('%d fps' % r) for r in rates)]
    for name, res in results.items():
        lines.append('%-15s' % name + ''.join('%-22s' % _cell(res['rate'][(s, r)])
                                              for r in rates))
    return '\n'.join(lines)


def targets(results, s=50, rates=(10,), which='new'):
    """The failures of the targets at sensitivity s (empty list: all met);
    which='rate' checks each of rates."""
    bad = []
    for r_fps in rates:
        at = '' if which == 'new' else ' at %d fps' % r_fps
        for name, res in results.items():
            r = res['new'][s] if which == 'new' else res['rate'][(s, r_fps)]
            if name == 'foliage':
                continue
            if r['in_time'] < r['episodes']:
                bad.append('%s%s: %d of %d episodes found within %.1f s' % (
                    name, at, r['in_time'], r['episodes'], TARGET_S))
            if r['false']:
                bad.append('%s%s: %d false triggers' % (name, at, r['false']))
            if not r['episodes'] and r.get('flag_s', 0) > FLAG_S:
                bad.append('%s%s: flag on %.1f s' % (name, at, r['flag_s']))
    return bad


def report(split, results):
    print(table('== %s split, NEW detector (found/total median/max latency s, false '
                'triggers) ==' % split, results, 'new'))
    print()
    print(table('== %s split, OLD detector (JPEG size, cooldown %d s) ==' % (
        split, OLD_COOLDOWN_S), results, 'old'))
    print()
    for name, res in results.items():
        if res.get('us_half') is not None:
            print('detector time under micropython: %dx%d %.0f us/frame, %dx%d %.0f us/frame'
                  % (res['cols'], res['rows'], res['us']['50'], res['cols'] // 2,
                     res['rows'] // 2, res['us_half']))
    print(rate_table('== %s split, NEW detector at sensitivity 50, by analysed frame '
                     'rate ==' % split, results))
    print()
    bad = targets(results, rates=TARGET_RATES, which='rate')
    print('targets at sensitivity 50, %s fps: ' % ' and '.join(str(r) for r in TARGET_RATES) +
          ('all met' if not bad else 'NOT met: ' + '; '.join(bad)))
    print()
    return bad


def main():
    """Both synthetic splits and the real clips; exit status 1 when a target
    at sensitivity 50 is missed."""
    bad = []
    for split in ('tuning', 'heldout'):
        bad += report(split, evaluate(split))
    results = evaluate_real()
    if results:
        print(table('== real footage (MOG2 labels), NEW detector ==', results, 'new'))
        print()
        print(table('== real footage (MOG2 labels), OLD detector ==', results, 'old'))
    return 1 if bad else 0


if __name__ == '__main__':
    raise SystemExit(main())


def evaluate_real(sens=SENSITIVITIES):
    """The opencv-doc clips against their MOG2 labels, or None without them."""
    try:
        from . import real
    except ImportError:
        import real
    why = real.available()
    if why:
        print('real footage skipped: ' + why)
        return None
    return dict((name, evaluate_scene(real.prepare(name, os.path.join(BUILD, 'real', name),
                                                   write_maps), sens))
                for name in real.CLIPS)

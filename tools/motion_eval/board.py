"""The scenes through the simulated board: the simulated camera plays a
scene's folder once (tools/simulate.py --frames-once) into the unchanged
firmware, at the scene's 10 fps, and the motion snapshots on the card say
which frame each trigger came from (a snapshot is the frame that confirmed
the trigger, byte for byte, after its comment segment). Scored exactly as
offline.py scores, so the two tables can be read side by side.

    python -m tools.motion_eval.board [--split tuning|heldout] [--scene NAME]
        [--sens 50] [--jobs 4]

(`python -m tools.motion_eval`, i.e. `make motion-eval`, prints these tables
beside the offline ones: main_all().)

A run is over when the camera shows the scene's last frame and the detector
has analysed past it. The board analyses the newest frame and skips the
ones that arrive meanwhile (as on the ESP32), so a loaded host can make it
see fewer frames than the offline run: each result says how many it saw.
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import sys
import tempfile
import time

try:
    from . import offline, scenes
except ImportError:
    import offline
    import scenes

sys.path.insert(0, offline.REPO)
from tools.sim.harness import Board  # noqa: E402

SIM_CONFIG = os.path.join(offline.REPO, 'tools', 'sim', 'config.json')
JOBS = 4
ATTEMPTS = 3
# the ESP32-CAM's PSRAM heap (a few MB): at the simulator's default 512 KB,
# 46 KB VGA frames fragment the heap until GET /motion's 6 KB reply fails
HEAP = '2M'


def board_config(fps, sensitivity, mask):
    """The simulator's config.json with the evaluation's motion settings."""
    with open(SIM_CONFIG) as f:
        config = json.load(f)
    config['camera']['fps'] = fps
    config['motion'].update(sensitivity=sensitivity, cooldown_s=0,
                            motion_mask=mask or '0' * 48)
    return config


def frame_files(folder):
    """The scene's frames in play order, as bytes."""
    names = sorted(n for n in os.listdir(folder) if n.endswith('.jpg'))
    out = []
    for name in names:
        with open(os.path.join(folder, name), 'rb') as f:
            out.append(f.read())
    return out


class BoardLost(RuntimeError):
    """The run cannot be scored: the board exited, another process answered
    on its port, or the replay started again (a camera re-init under load)."""


def _poll(what, fetch, until, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise RuntimeError('%s: gave up waiting (last: %r)' % (what, value))
        time.sleep(interval)


def replay(folder, workdir, sensitivity=50, fps=10):
    """Play one scene folder through a simulated board: a dict of the frames
    that triggered ('starts', sorted frame numbers), 'triggers' (the board's
    count), 'captured' and 'analysed' (frames, when the last frame came: fewer
    than 'frames' are frames the camera or the analysis skipped),
    'unknown' (motion snapshots that match no frame of the scene)."""
    with open(os.path.join(folder, 'labels.json')) as f:
        labels = json.load(f)
    frames = frame_files(folder)
    index = {data: i for i, data in enumerate(frames)}
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    board = Board(workdir, frames=folder, fps=fps, frames_once=True, heap=HEAP,
                  config=board_config(round(fps), sensitivity, labels.get('mask')))
    board.start()
    try:
        with board.http() as client:
            shown = [-1]

            def latest():
                """The number of the frame the camera shows now (-1: none yet)."""
                if board.proc.poll() is not None:
                    raise BoardLost('the board exited')
                response = client.get('/snapshot.jpg')
                if response.status_code != 200:
                    return shown[0]
                if response.content not in index:
                    raise BoardLost('a frame not of this scene: not our board')
                if index[response.content] < shown[0]:
                    raise BoardLost('the replay started again')
                shown[0] = index[response.content]
                return shown[0]
            # the scene lasts len(frames) / fps seconds; allow a loaded host twice that;
            # polled often near the end, so the counts below stop at the last frame
            last = len(frames) - 1
            _poll('near the end', latest, lambda k: k >= last - 5,
                  2 * len(frames) / fps + 30, interval=0.5)
            _poll('last frame', latest, lambda k: k == last, 30, interval=0.02)
            captured = board.status()['frames']
            analysed = client.get('/motion').json()['analysed']
            # the frame under analysis now, then one taken after the last frame came
            _poll('analysis', lambda: client.get('/motion').json()['analysed'],
                  lambda n: n >= analysed + 2, 30)
        # a trigger's snapshot is saved in the background: wait until it is counted
        try:
            status = _poll('snapshots', board.status,
                           lambda s: s['snapshot_count'] >= s['trigger_count'], 10)
        except RuntimeError:
            status = board.status()     # a save was dropped: scored as it is
        motion = [d for n, d in sorted(board.card_files().items()) if n.startswith('motion-')]
    except RuntimeError as exc:
        raise type(exc)('%s: %s\nboard log:\n%s' % (folder, exc, board.output()[-3000:]))
    finally:
        board.stop()
    starts = sorted(index[d] for d in motion if d in index)
    return {'starts': starts, 'triggers': status['trigger_count'], 'analysed': analysed,
            'captured': captured, 'frames': len(frames),
            'unknown': sum(1 for d in motion if d not in index)}


def evaluate_scene(folder, workdir, sens=(50,), fps=10):
    """One prepared scene at each sensitivity: {'labels', 'board': {s: score},
    'runs': {s: replay()}}, the scores as offline.score() gives them."""
    with open(os.path.join(folder, 'labels.json')) as f:
        labels = json.load(f)
    out = {'labels': labels, 'board': {}, 'runs': {}}
    for s in sens:
        for attempt in range(ATTEMPTS):
            try:
                run = replay(folder, os.path.join(workdir, 's%d-%d' % (s, attempt)), s, fps)
                break
            except BoardLost as exc:
                print('%s: %s, again' % (folder, exc.args[0].split('\n')[0]))
        else:
            raise RuntimeError('%s: no clean run in %d attempts' % (folder, ATTEMPTS))
        out['runs'][s] = run
        out['board'][s] = offline.score(run['starts'], labels)
    return out


def evaluate(split, names=None, sens=(50,), jobs=JOBS, workdir=None):
    """Prepare a split's scenes (offline.prepare) and replay them through
    boards, `jobs` at a time: {name: evaluate_scene()}."""
    names = names or scenes.SCENES
    folders = dict((name, offline.prepare(split, name)) for name in names)
    with tempfile.TemporaryDirectory(prefix='motion-eval-board-', dir=workdir) as tmp:
        def one(name):
            return name, evaluate_scene(folders[name], os.path.join(tmp, split, name), sens)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            results = dict(pool.map(one, names))
    return dict((name, results[name]) for name in names)


def seen(results, s=50):
    """Over a split: frames the boards captured and analysed of the scenes'."""
    runs = [res['runs'][s] for res in results.values()]
    return '%d captured, %d analysed of %d frames; %d triggers without a snapshot' % (
        sum(r['captured'] for r in runs), sum(r['analysed'] for r in runs),
        sum(r['frames'] for r in runs), sum(r['triggers'] - len(r['starts']) for r in runs))


def _total(rs, names):
    """The total cell of offline.table(): found/episodes, median/max latency,
    false triggers per hour of still footage (unmasked foliage left out)."""
    found = sum(r['found'] for r in rs)
    eps = sum(r['episodes'] for r in rs)
    lat = [v for r in rs for v in r['latency']]
    fp = sum(r['false'] for n, r in zip(names, rs) if n != 'foliage')
    still_h = sum(r['still_s'] for n, r in zip(names, rs) if n != 'foliage') / 3600
    return '%d/%d %s fp/h %.0f' % (found, eps, '%.1f/%.1f' % (offline.median(lat), max(lat))
                                   if lat else '-/-', fp / still_h if still_h else 0)


def side_by_side(split, offline_results, board_results, s=50):
    """One table: each scene offline and through the firmware at sensitivity s,
    and the frames the board captured and analysed of the scene's frames."""
    names = list(board_results)
    lines = ['== %s split, sensitivity %d: offline (Pillow luma maps, every frame) | '
             'through the firmware (simulated board) ==' % (split, s),
             '%-15s%-22s%-22s%s' % ('scene', 'offline', 'firmware',
                                    'captured/analysed/frames')]
    for name in names:
        run = board_results[name]['runs'][s]
        lines.append('%-15s%-22s%-22s%d/%d/%d' % (
            name, offline._cell(offline_results[name]['new'][s]),
            offline._cell(board_results[name]['board'][s]), run['captured'],
            run['analysed'], run['frames']))
    lines.append('%-15s%-22s%-22s' % (
        'total', _total([offline_results[n]['new'][s] for n in names], names),
        _total([board_results[n]['board'][s] for n in names], names)))
    differ = [n for n in names if offline_results[n]['new'][s] != board_results[n]['board'][s]]
    lines.append('firmware vs offline: ' + ('the same on every scene' if not differ else
                                           'different on ' + ', '.join(differ)))
    return '\n'.join(lines)


def main_all():
    """`make motion-eval`: offline.py's tables, and beside them each synthetic
    split through the firmware at sensitivity 50. Exit status 1 when a target
    at sensitivity 50 is missed offline or through the firmware."""
    bad = []
    for split in ('tuning', 'heldout'):
        results = offline.evaluate(split)
        bad += offline.report(split, results)
        firmware = evaluate(split)
        print(side_by_side(split, results, firmware))
        missed = offline.targets(dict((n, {'new': r['board']}) for n, r in firmware.items()))
        print('targets at sensitivity 50 through the firmware: ' +
              ('all met' if not missed else 'NOT met: ' + '; '.join(missed)))
        print()
        bad += missed
    real = offline.evaluate_real()
    if real:
        print(offline.table('== real footage (MOG2 labels), NEW detector ==', real, 'new'))
        print()
        print(offline.table('== real footage (MOG2 labels), OLD detector ==', real, 'old'))
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--split', action='append', choices=sorted(scenes.SPLITS))
    ap.add_argument('--scene', action='append', choices=scenes.SCENES)
    ap.add_argument('--sens', type=int, action='append')
    ap.add_argument('--jobs', type=int, default=JOBS)
    args = ap.parse_args(argv)
    sens = tuple(args.sens or (50,))
    for split in args.split or ('tuning', 'heldout'):
        results = evaluate(split, args.scene, sens, args.jobs)
        print(offline.table('== %s split, through the firmware (simulated board) =='
                            % split, results, 'board', sens))
        print(seen(results, sens[0]))
        for name, res in results.items():
            print('  %-15s starts %s' % (name, res['runs'][sens[0]]['starts']))
        print()


if __name__ == '__main__':
    main()

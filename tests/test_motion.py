"""Motion you can trust: every walk-through fires, jitter and slow light
changes never do, PIR triggers are debounced, snapshots carry their story,
old motion snapshots make room, and a reconnecting dashboard catches up."""
import io
import json
import os
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest
from PIL import Image

from tools.sim.harness import MTOOLS_ENV, REPO, SSE, card_paths, frame_set, strip_comment, seq_of


def make_frames(tmp_path, name, *flags):
    out = str(tmp_path / name)
    subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'make_frames.py'), out]
                   + [str(f) for f in flags], check=True)
    return out


def sim_config(**motion):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'].update(motion)
    return config


def test_every_motion_segment_fires(make_board, tmp_path):
    frames_dir = make_frames(tmp_path, 'walks', '--segments', 3, '--count', 56)
    names = sorted(os.listdir(frames_dir))
    part = 56 // 7
    segment_of = {}
    for i, name in enumerate(names):
        if (i // part) % 2 == 1:
            segment_of[open(os.path.join(frames_dir, name), 'rb').read()] = i // part // 2
    board = make_board(frames=frames_dir, config=sim_config(cooldown_s=1)).start()
    deadline = time.monotonic() + 40
    while True:
        motion = {n: d for n, d in board.card_files(settled=True).items()
                  if n.startswith('motion-')}
        # every saved motion picture shows the walker, never the still scene
        assert all(d in segment_of for d in motion.values())
        if {segment_of[d] for d in motion.values()} == {0, 1, 2}:
            break
        assert time.monotonic() < deadline, 'segments seen: %r' % {segment_of[d] for d in motion.values()}
        time.sleep(0.5)


def test_jitter_and_slow_light_changes_never_fire(make_board, tmp_path):
    frames_dir = make_frames(tmp_path, 'still', '--still-only', '--jitter', 40, '--drift', 30)
    board = make_board(frames=frames_dir, fps=20, config=sim_config(sensitivity=80)).start()
    board.wait_frame()
    # two and a half replays analysed, drift back and forth included
    board.wait_analysed(len(os.listdir(frames_dir)) * 5 // 2)
    assert board.status()['trigger_count'] == 0
    assert board.card_files() == {}


def test_pir_pulses_are_debounced_and_saved(make_board, tmp_path):
    frames_dir = make_frames(tmp_path, 'still', '--still-only')
    board = make_board(frames=frames_dir, config=sim_config(
        pir_pin=13, pir_debounce_ms=1500, cooldown_s=0, sensitivity=0))
    board.start()
    board.wait_frame()
    board.set_faults(pir_pulses=3)          # three edges in a burst
    board.wait_for(lambda s: s['trigger_count'] == 1)
    # the sim delivers pin edges with captures: a few more frames, and all
    # three edges have been seen
    board.wait_analysed(5)
    assert board.status()['trigger_count'] == 1
    time.sleep(1.5)
    board.set_faults(pir_pulses=4)          # a new edge after the debounce
    status = board.wait_for(lambda s: s['trigger_count'] == 2)
    assert re.fullmatch(r'/sdcard/snaps/[0-9]{4}/motion-[-0-9]+\.jpg', status['last_snapshot'])
    raw = board.card_files(raw=True)
    assert any(b'trigger=pir' in data[:120] for data in raw.values())


def test_a_motion_snapshot_names_its_trigger_in_count(make_board, tmp_path):
    # count= is the trigger that saved the picture, so a file on the card can
    # be matched with its motion event: not the snapshot counter, which two
    # manual snapshots first put ahead of the trigger counter here.
    frames_dir = make_frames(tmp_path, 'still', '--still-only')
    board = make_board(frames=frames_dir, config=sim_config(
        pir_pin=13, pir_debounce_ms=0, cooldown_s=0, sensitivity=0)).start()
    board.wait_frame()
    with board.ws() as ws:
        for _ in range(2):
            assert board.command(ws, cmd='snapshot_now')['ok'] is True
    board.set_faults(pir_pulses=1)
    status = board.wait_for(lambda s: s['trigger_count'] == 1 and s['snapshot_count'] == 3)
    assert status['last_motion']['count'] == 1
    name = status['last_snapshot'].rsplit('/', 1)[1]
    assert name.startswith('motion-')
    comment = Image.open(io.BytesIO(board.card_files(raw=True)[name])).info['comment'].decode()
    assert ' trigger=pir ' in comment and ' count=1 ' in comment, comment


def test_saved_files_open_in_pillow_and_carry_a_comment(board):
    with board.ws() as ws:
        board.command(ws, cmd='reset')
        reply = board.command(ws, cmd='snapshot_now')
    name = reply['saved'].rsplit('/', 1)[1]
    data = board.card_files(raw=True)[name]
    assert data[:4] == b'\xff\xd8\xff\xfe'
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (320, 240)
    comment = image.info['comment'].decode()
    seq = seq_of(name)
    assert comment.startswith('esp32cam time=')
    assert 'trigger=manual' in comment and 'count=0' in comment and 'seq=%d' % seq in comment
    assert strip_comment(data) in frame_set()


def test_last_event_id_replays_what_a_dashboard_missed(make_board, still_frames):
    board = make_board(frames=still_frames).start()   # only the events a test makes
    board.wait_frame()
    sse = SSE(board)
    sse.next_status()
    with board.ws() as ws:
        board.command(ws, cmd='snapshot_now')
    last_id = None
    for line in sse.lines:
        if line.startswith('id:'):
            last_id = line[3:].strip()
            break
    sse.close()
    with board.ws() as ws:                  # while the dashboard was away
        missed = [board.command(ws, cmd='snapshot_now')['saved'] for _ in range(2)]
    with board.http() as client:
        with client.stream('GET', '/events', headers={'Last-Event-ID': str(last_id)}) as r:
            events = []
            name = None
            for line in r.iter_lines():
                if line.startswith('event:'):
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('data:'):
                    events.append((name, json.loads(line[5:])))
                    if name == 'status':
                        break
    replayed = [data['path'] for name, data in events if name == 'snapshot']
    assert replayed == missed
    assert events[-1][0] == 'status'
    # an id from before a restart (another boot prefix): everything kept is replayed
    with board.http() as client:
        with client.stream('GET', '/events', headers={'Last-Event-ID': 'f00f00-999'}) as r:
            ids = []
            for line in r.iter_lines():
                if line.startswith('id:'):
                    ids.append(line[3:].strip())
                if line.startswith('event: status'):
                    break
    boot, number = last_id.split('-')
    assert {'%s-%d' % (boot, int(number) + k) for k in range(3)} <= set(ids)


def replay_after(board, last_id):
    """(ids, events) a dashboard reconnecting with Last-Event-ID gets before
    its first status."""
    ids, events, name = [], [], None
    with httpx.Client(base_url=board.url, timeout=15, headers=board.auth_headers()) as client:
        with client.stream('GET', '/events', headers={'Last-Event-ID': last_id}) as r:
            for line in r.iter_lines():
                if line.startswith('id:'):
                    ids.append(line[3:].strip())
                elif line.startswith('event:'):
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('data:'):
                    if name == 'status':
                        break
                    events.append((name, json.loads(line[5:])))
    return ids, events


def test_last_event_id_ring_keeps_the_last_16(make_board, still_frames):
    board = make_board(frames=still_frames).start()   # only the events a test makes
    board.wait_frame()
    # README: events are "kept in a ring of the last 16". A dashboard away for
    # 17 snapshots gets the newest 16 of them, in order; one away for 16 gets all.
    sse = SSE(board)
    sse.next_status()
    with board.ws() as ws:
        board.command(ws, cmd='snapshot_now')
    last_id = next_id(sse)
    sse.close()
    boot, number = last_id.rsplit('-', 1)
    with board.ws() as ws:
        missed = []
        for _ in range(17):
            reply = board.command(ws, cmd='snapshot_now')
            assert reply['ok'] is True, reply
            missed.append(reply['saved'])
    ids, events = replay_after(board, last_id)
    assert events == [('snapshot', {'path': path, 'kind': 'manual'}) for path in missed[1:]]
    assert ids == ['%s-%d' % (boot, int(number) + k) for k in range(2, 18)]
    ids, events = replay_after(board, '%s-%d' % (boot, int(number) + 1))
    assert [data['path'] for name, data in events if name == 'snapshot'] == missed[1:]


def first_event_id(board):
    """The id of the next event a fresh listener sees (a snapshot taken now)."""
    sse = SSE(board)
    sse.next_status()
    with board.ws() as ws:
        board.command(ws, cmd='snapshot_now')
    try:
        return next_id(sse)
    finally:
        sse.close()


def next_id(sse, limit=60):
    """The next event id on the stream; fails (never hangs on heartbeats)
    when none comes within `limit` lines."""
    for _, line in zip(range(limit), sse.lines):
        if line.startswith('id:'):
            return line[3:].strip()
    raise AssertionError('no event with an id on the stream')


def test_an_event_id_from_before_a_restart_replays_what_this_boot_kept(make_board):
    # Event numbers start again at every boot: the id names its boot, so a
    # dashboard that was away across a restart is given everything kept.
    board = make_board().start()
    board.wait_frame()
    before = first_event_id(board)
    assert re.fullmatch(r'[0-9a-f]{6}-\d+', before), before
    board.stop()
    board.start()
    board.wait_frame()
    with board.ws() as ws:
        saved = board.command(ws, cmd='snapshot_now')['saved']
    ids, events = replay_after(board, before)
    assert ('snapshot', {'path': saved, 'kind': 'manual'}) in events
    assert all(i.split('-')[0] != before.split('-')[0] for i in ids), (before, ids)


def make_crowded_card(tmp_path, oldest=None):
    """A 1.44 MB card already holding 30 motion and 3 manual snapshots;
    `oldest`, if given, is the picture of the oldest motion snapshot."""
    path = str(tmp_path / 'crowded.img')
    subprocess.run(['mformat', '-C', '-i', path, '-f', '1440', '::'], check=True, env=MTOOLS_ENV)
    subprocess.run(['mmd', '-i', path, '::/snaps'], check=True, env=MTOOLS_ENV)
    src = tmp_path / 'frame.jpg'
    src.write_bytes(sorted(frame_set(), key=len)[-1])
    names = ['motion-20260101-0000%02d-%04d.jpg' % (i, i) for i in range(30)]
    names += ['manual-20260101-0001%02d-%04d.jpg' % (i, 30 + i) for i in range(3)]
    for name in names:
        picture = src
        if oldest is not None and name == names[0]:
            picture = tmp_path / 'oldest.jpg'
            picture.write_bytes(oldest)
        subprocess.run(['mcopy', '-i', path, str(picture), '::/snaps/' + name], check=True,
                       env=MTOOLS_ENV)
    return path


@pytest.fixture
def crowded_card(tmp_path):
    return make_crowded_card(tmp_path)


def retention_board(make_board, card):
    """A board on `card` where every save has to make room."""
    config = sim_config(sensitivity=0)
    config['sd'] = {'min_free_bytes': 1300000}
    board = make_board(sdcard=card, config=config).start()
    board.wait_frame()
    return board


def save_and_see_deletions(board):
    """Take a snapshot; the names retention deleted to make room for it."""
    sse = SSE(board)
    sse.next_status()
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is True
    deleted = (sse.next_event('deleted') or {}).get('names')
    sse.close()
    return deleted


def test_retention_deletes_only_motion_snapshots_oldest_first(make_board, crowded_card):
    board = retention_board(make_board, crowded_card)
    deleted = save_and_see_deletions(board)
    files = board.card_files()
    motion_left = sorted(n for n in files if n.startswith('motion-'))
    assert deleted and all(n.startswith('motion-') for n in deleted)
    assert sorted(deleted) == ['motion-20260101-0000%02d-%04d.jpg' % (i, i) for i in range(len(deleted))]
    assert motion_left == ['motion-20260101-0000%02d-%04d.jpg' % (i, i) for i in range(len(deleted), 30)]
    assert len([n for n in files if n.startswith('manual-')]) == 4     # 3 old + the new one



def mtools_free(path):
    out = subprocess.run(['mdir', '-i', path, '::/'], capture_output=True, text=True,
                         check=True, env=MTOOLS_ENV).stdout
    return int(re.search(r'([\d ]+) bytes free', out).group(1).replace(' ', ''))


def test_retention_deletes_clips_then_motion_and_never_manual_even_the_oldest(make_board,
                                                                               tmp_path):
    # the manual snapshots are the oldest on the card (first names, first
    # numbers), the clips the newest: retention still takes the clips
    # first, then the oldest motion snapshots, and never a manual one
    path = str(tmp_path / 'mixed.img')
    subprocess.run(['mformat', '-C', '-i', path, '-f', '1440', '::'], check=True, env=MTOOLS_ENV)
    subprocess.run(['mmd', '-i', path, '::/snaps', '::/clips'], check=True, env=MTOOLS_ENV)
    picture = tmp_path / 'frame.jpg'
    picture.write_bytes(sorted(frame_set(), key=len)[-1])
    clip = tmp_path / 'clip.avi'
    clip.write_bytes(os.urandom(100 * 1024))
    manual = ['manual-20250101-0000%02d-%04d.jpg' % (i, i) for i in range(3)]
    motion = ['motion-20260101-0000%02d-%04d.jpg' % (i, 3 + i) for i in range(20)]
    clips = ['motion-20260102-0000%02d-%04d.avi' % (i, 23 + i) for i in range(3)]
    for name in manual + motion:
        subprocess.run(['mcopy', '-i', path, str(picture), '::/snaps/' + name], check=True,
                       env=MTOOLS_ENV)
    for name in clips:
        subprocess.run(['mcopy', '-i', path, str(clip), '::/clips/' + name], check=True,
                       env=MTOOLS_ENV)
    # a floor that the three clips alone cannot reach: some motion snapshots go too
    floor = mtools_free(path) + 3 * len(clip.read_bytes()) + 5 * len(picture.read_bytes()) // 2
    config = sim_config(sensitivity=0)
    config['sd'] = {'min_free_bytes': floor}
    board = make_board(sdcard=path, config=config).start()
    board.wait_frame()
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is True
    board.stop()
    left_clips = [p for p in card_paths(path, '/clips') or []     # in any numbered folder
                  if not p.rsplit('/', 1)[1].startswith('.')]
    assert left_clips == [], 'clips left while motion snapshots went: %r' % left_clips
    files = board.card_files()
    assert [n for n in manual if n not in files] == [], 'a manual snapshot was deleted'
    assert len([n for n in files if n.startswith('manual-')]) == 4     # 3 old + the new one
    gone = [n for n in motion if n not in files]
    print('motion snapshots deleted:', gone)
    assert gone and gone == motion[:len(gone)] and len(gone) <= 4, gone


def test_retention_keeps_a_snapshot_while_it_is_downloaded(make_board, tmp_path):
    from test_downloads import slow_get
    picture = io.BytesIO()      # noise: about 200 KB, far more than the socket buffers hold
    Image.effect_noise((640, 480), 80).convert('RGB').save(picture, 'JPEG', quality=90)
    oldest = picture.getvalue()
    board = retention_board(make_board, make_crowded_card(tmp_path, oldest))
    name = 'motion-20260101-000000-0000.jpg'
    started = threading.Event()
    out = []
    reader = threading.Thread(target=slow_get, args=(board, '/snaps/' + name, started, out, 0.1))
    reader.start()
    assert started.wait(15)
    deleted = save_and_see_deletions(board)
    reader.join()
    head, body, complete = out[0]
    # the next oldest went instead; the one being read stayed, and came whole
    assert deleted and name not in deleted
    assert sorted(deleted) == ['motion-20260101-0000%02d-%04d.jpg' % (i, i)
                               for i in range(1, len(deleted) + 1)]
    assert complete and body == oldest
    assert board.card_files()[name] == oldest


def test_a_pir_edge_is_motion_until_the_sensor_has_been_quiet(make_board, tmp_path):
    frames_dir = make_frames(tmp_path, 'still', '--still-only')
    board = make_board(frames=frames_dir, config=sim_config(
        pir_pin=13, pir_debounce_ms=500, cooldown_s=0, sensitivity=0)).start()
    board.wait_frame()
    sse = SSE(board)
    assert sse.next_status()['motion'] is False
    board.set_faults(pir_pulses=1)
    on = sse.until(lambda s: s['motion'])
    assert on['trigger_count'] == 1 and on['last_motion']['cause'] == 'pir'
    # no further edge: motion ends (10 s after the last edge), the count stays
    off = sse.until(lambda s: not s['motion'], limit=200)
    assert off['trigger_count'] == 1
    sse.close()

"""A board that has been up for days: time.ticks_ms() is 30-bit on the
ESP32 and the simulator's is too, so its stamps wrap as the board's do. The
fault jump_s runs the board's ticks, clock and event loop ahead as if that
much time had passed; 6.5 days is the worst case for a ticks_diff's sign,
8 days lies past it. Afterwards the login, the snapshot rate, motion and
the PIR must behave as on a board that just booted."""
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tools.sim.harness import REPO

DAYS = [pytest.param(8 * 86400, id='8days'), pytest.param(int(6.5 * 86400), id='6.5days')]


def sim_config(motion=None, **changes):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config.update(changes)
    config['motion'].update(motion or {})
    return config


def make_frames(tmp_path, name, *flags):
    out = str(tmp_path / name)
    subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'make_frames.py'), out]
                   + [str(f) for f in flags], check=True)
    return out


def status(board):
    with ws_connect(board.ws_url, open_timeout=10, close_timeout=2,
                    additional_headers=board.auth_headers()) as ws:
        return board.command(ws, cmd='status')['status']


def run_ahead(board, seconds, **faults):
    """Let `seconds` pass on the board, faults set meanwhile; then check that
    the board says it has been up that long."""
    board.set_faults(jump_s=seconds, **faults)
    deadline = time.monotonic() + 60
    while 'simulator: %d s ahead' % seconds not in board.output()[board.log_start:]:
        assert time.monotonic() < deadline, 'the board never got %d s ahead' % seconds
        time.sleep(0.1)
    uptime = status(board)['uptime_s']
    assert seconds <= uptime < seconds + 600


@pytest.mark.parametrize('seconds', DAYS)
def test_login_works_days_after_a_lockout(make_board, seconds):
    board = make_board().start()
    with httpx.Client(base_url=board.url, timeout=10) as client:
        for _ in range(5):
            assert client.post('/login', data={'password': 'guess'}).status_code in (401, 429)
        assert client.post('/login', data={'password': board.password}).status_code == 429
    run_ahead(board, seconds)
    with httpx.Client(base_url=board.url, timeout=10) as client:
        ok = client.post('/login', data={'password': board.password})
        assert ok.status_code == 302, 'still locked out'
        assert client.get('/snaps').status_code == 200


@pytest.mark.parametrize('seconds', DAYS)
def test_snapshots_keep_their_rate_days_later(make_board, seconds):
    board = make_board(config=sim_config(snapshot_rate={'burst': 3, 'per_s': 0.002})).start()
    board.wait_frame()
    with board.ws() as ws:
        replies = [board.command(ws, cmd='snapshot_now') for _ in range(4)]
    assert [r['ok'] for r in replies] == [True, True, True, False]
    run_ahead(board, seconds)
    board.wait_frame()
    with board.ws() as ws:
        replies = [board.command(ws, cmd='snapshot_now') for _ in range(4)]
    # a full bucket again: the burst, then the limit
    assert [r['ok'] for r in replies] == [True, True, True, False], replies
    assert replies[3]['reason'] == 'rate limited'


@pytest.mark.parametrize('seconds', DAYS)
def test_pir_triggers_count_days_later(make_board, tmp_path, seconds):
    frames_dir = make_frames(tmp_path, 'still', '--still-only')
    board = make_board(frames=frames_dir, config=sim_config(motion={
        'pir_pin': 13, 'pir_debounce_ms': 1500, 'cooldown_s': 2, 'sensitivity': 0})).start()
    board.wait_frame()
    board.set_faults(pir_pulses=1)
    board.wait_for(lambda s: s['trigger_count'] == 1)
    run_ahead(board, seconds, pir_pulses=1)
    board.set_faults(jump_s=seconds, pir_pulses=2)
    status = board.wait_for(lambda s: s['trigger_count'] == 2)
    assert status['last_motion']['cause'] == 'pir'


@pytest.mark.parametrize('seconds', DAYS)
def test_frame_motion_counts_days_later(make_board, tmp_path, seconds):
    frames_dir = make_frames(tmp_path, 'walks', '--segments', 1, '--count', 30)
    board = make_board(frames=frames_dir, config=sim_config(motion={'cooldown_s': 2})).start()
    first = board.wait_for(lambda s: s['trigger_count'] >= 1)['trigger_count']
    # no frames while the days pass: nothing moves then
    board.set_faults(camera_capture_fail=True)
    board.wait_for(lambda s: s['camera'].startswith('error'))
    before = board.status()['trigger_count']
    assert before >= first
    run_ahead(board, seconds, camera_capture_fail=True)
    assert board.status()['trigger_count'] == before
    # the camera comes back at its next retry, 30 s apart by now: a minute more passes
    board.set_faults(jump_s=seconds + 60)
    status = board.wait_for(lambda s: s['trigger_count'] > before, timeout=60)
    assert status['last_motion']['cause'] == 'frame'

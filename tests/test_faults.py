"""Faults switched on and off in the simulator while the board runs."""
import json
import threading
import time

import httpx
from PIL import Image

from tools.sim.harness import frame_set


def test_card_removed_mid_write_then_reinserted(board):
    board.set_faults(sd_bytes_per_s=20000)          # a 6 KB frame takes ~0.3 s
    with board.ws() as ws:
        ws.send(json.dumps({'cmd': 'snapshot_now', 'id': 'cut'}))
        time.sleep(0.1)
        board.set_faults(sd_removed=True)
        reply = json.loads(ws.recv(timeout=30))
    assert reply == {'ok': False, 'reason': 'write failed: I/O error', 'id': 'cut'}
    status = board.wait_for(lambda s: s['sd_free'] is None)
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['reason'] == 'no sd card'
    board.set_faults()                               # the card is back
    board.wait_for(lambda s: s['sd_free'] is not None, timeout=30)
    with board.ws() as ws:
        reply = board.command(ws, cmd='snapshot_now')
    assert reply['ok'] is True
    files = board.card_files()
    assert not [n for n in files if '.part' in n]
    assert all(data in frame_set() for data in files.values())
    assert 'Traceback' not in board.output()


def test_card_missing_at_boot_and_inserted_later(make_board):
    board = make_board()
    board.set_faults(sd_absent=True)
    board.start()
    board.wait_frame()
    assert board.status()['sd_free'] is None
    board.set_faults()
    board.wait_for(lambda s: s['sd_free'] is not None, timeout=30)
    with board.ws() as ws:
        reply = board.command(ws, cmd='snapshot_now')
    assert reply['ok'] is True
    assert reply['saved'].rsplit('/', 1)[1] in board.card_files()


def test_a_hanging_camera_is_reported_and_the_board_keeps_serving(board):
    board.set_faults(camera_hang_s=1.5)
    status = board.wait_for(lambda s: 'hung' in s['camera'], timeout=30)
    assert status['camera'].startswith('error: capture hung')
    with board.http() as client:
        assert client.get('/').status_code == 200
    board.set_faults()
    board.wait_for(lambda s: s['camera'] == 'ok', timeout=60)


def test_slow_card_does_not_stop_other_clients(board):
    # 25 snapshots onto a card throttled to 200 KB/s while another client talks
    board.set_faults(sd_bytes_per_s=200000)
    replies = []

    def burst():
        with board.ws() as ws:
            for i in range(25):
                ws.send(json.dumps({'cmd': 'snapshot_now', 'id': i}))
            replies.extend(json.loads(ws.recv(timeout=60)) for _ in range(25))

    worker = threading.Thread(target=burst)
    worker.start()
    with board.ws() as ws:
        for _ in range(20):
            assert board.command(ws, cmd='status')['ok'] is True
    worker.join()
    assert all(r['ok'] for r in replies)


def test_frames_too_big_for_the_heap_are_an_error_not_a_dead_camera(make_board, tmp_path):
    frames = tmp_path / 'big-frames'
    frames.mkdir()
    for i in range(2):      # noise compresses badly: about 100 KB each
        Image.effect_noise((440, 330), 60 + i).convert('RGB').save(
            str(frames / ('frame-%d.jpg' % i)), quality=85)
    # 512K: the app and the driver's frame buffer fit, two ~100 KB pool buffers do not
    board = make_board(frames=str(frames), heap='512K', sdcard=None).start()
    status = board.wait_for(lambda s: s['camera'] != 'starting', timeout=30)
    assert status['camera'] == 'error: out of memory for a frame'
    assert httpx.get(board.url + '/snapshot.jpg',
                     headers=board.auth_headers()).status_code == 503
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is False
    assert 'Traceback' not in board.output()
    assert "wasn't retrieved" not in board.output()

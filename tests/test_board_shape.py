"""The Board's shared paths, seen from outside: one snapshot path for every
caller, and one settings table whose values reach the driver only when the
driver takes them."""
import json
import os

import pytest

from tools.sim.harness import REPO, SSE, frame_set

# the sim drivers' own names of the frame size setting, per API
REFUSE_FRAMESIZE = ['framesize', 'frame_size']


@pytest.mark.parametrize('api', ['lemariva', 'cnadler86'])
def test_a_value_the_driver_refuses_leaves_the_old_one_and_the_camera_working(make_board, api):
    board = make_board(camera_api=api).start()
    board.wait_frame()
    board.set_faults(camera_refuse=REFUSE_FRAMESIZE)
    with board.ws() as ws:
        reply = board.command(ws, cmd='set', key='framesize', value='UXGA')
        assert reply['ok'] is False and reply['error'] == 'not supported'
        assert 'sensor' in reply['reason']
        assert board.command(ws, cmd='status')['status']['settings']['framesize'] == 'VGA'
    # a re-init (three failed captures in a row) applies what was kept: the
    # old value, which the sensor takes, so the camera comes back
    board.set_faults(camera_refuse=REFUSE_FRAMESIZE, camera_capture_fail=True)
    board.wait_for(lambda s: s['camera'].startswith('error'))
    board.set_faults(camera_refuse=REFUSE_FRAMESIZE)
    before = board.status()['frames']
    status = board.wait_for(lambda s: s['camera'] == 'ok' and s['frames'] > before + 3, timeout=40)
    assert status['settings']['framesize'] == 'VGA'
    with board.http() as client:
        assert client.get('/control', params={'var': 'framesize', 'val': 15}).status_code == 500
        assert client.get('/status').json()['framesize'] == 10       # VGA


def test_gainceiling_is_a_setting_of_the_api_driver_only(make_board):
    api = make_board(camera_api='cnadler86').start()
    with api.ws() as ws:
        assert api.command(ws, cmd='set', key='gainceiling', value=4)['ok'] is True
        assert api.command(ws, cmd='set', key='gainceiling', value=7)['error'] == 'bad value'
    with api.http() as client:
        assert client.get('/status').json()['gainceiling'] == 4
        assert client.get('/control', params={'var': 'gainceiling', 'val': 2}).status_code == 200
        assert client.get('/status').json()['gainceiling'] == 2
    api.stop()
    old = make_board(camera_api='lemariva').start()
    with old.ws() as ws:
        reply = old.command(ws, cmd='set', key='gainceiling', value=4)
    assert reply['ok'] is False and reply['error'] == 'not supported'
    assert old.status()['settings']['gainceiling'] == 0


def _seq(path):
    return int(path.rsplit('-', 1)[1][:-4])


def test_websocket_motion_and_capture_share_one_snapshot_path(make_board, tmp_path):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'].update(pir_pin=13, pir_debounce_ms=0, cooldown_s=0, sensitivity=0)
    board = make_board(config=config).start()
    board.wait_frame()
    sse = SSE(board)
    saved = []
    with board.ws() as ws:
        for round_ in range(3):
            reply = board.command(ws, cmd='snapshot_now')
            assert reply['ok'] is True
            saved.append(reply['saved'])
            board.set_faults(pir_pulses=round_ + 1)     # a PIR edge: a motion snapshot
            status = board.wait_for(lambda s: s['snapshot_count'] == 2 * (round_ + 1))
            saved.append(status['last_snapshot'])
    with board.http() as client:
        capture = client.get('/capture')
    assert capture.status_code == 200 and capture.content in frame_set()
    kinds = [p.rsplit('/', 1)[1].split('-', 1)[0] for p in saved]
    assert kinds == ['manual', 'motion'] * 3
    numbers = [_seq(p) for p in saved]
    assert numbers == sorted(numbers) and len(set(numbers)) == 6
    assert numbers[-1] - numbers[0] == 5          # one counter, nothing skipped
    card = board.card_files()
    assert sorted(card) == sorted(p.rsplit('/', 1)[1] for p in saved)   # /capture saved nothing
    assert all(data in frame_set() for data in card.values())
    # one event stream announced each, in order
    events = []
    while len(events) < 6:
        line = next(sse.lines)
        if line.startswith('data:') and '"path"' in line:
            events.append(json.loads(line.split(':', 1)[1])['path'])
    sse.close()
    assert events == saved

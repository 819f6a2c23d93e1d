"""The /control WebSocket contract (README "Using it"), against the simulated board."""
import json

import pytest

from tools.sim.harness import frame_set, folder_of


def test_status_command_has_the_sse_fields(board):
    with board.ws() as ws:
        reply = board.command(ws, cmd='status', id=7)
    assert reply['ok'] is True and reply['id'] == 7
    for field in ('trigger_count', 'snapshot_count', 'last_snapshot', 'sd_free',
                  'uptime_s', 'free_heap', 'camera', 'clients'):
        assert field in reply['status']
    assert reply['status']['camera'] == 'ok'
    assert reply['status']['sd_free'] > 0


@pytest.mark.parametrize('message, reply', [
    ('not json', {'ok': False, 'error': 'bad json'}),
    ('{"cmd": ', {'ok': False, 'error': 'bad json'}),
    ('[1, 2]', {'ok': False, 'error': 'bad command'}),
    ('"snapshot_now"', {'ok': False, 'error': 'bad command'}),
    ('42', {'ok': False, 'error': 'bad command'}),
    ('null', {'ok': False, 'error': 'bad command'}),
    ('{}', {'ok': False, 'error': 'bad command'}),
    ('{"id": 3}', {'ok': False, 'error': 'bad command', 'id': 3}),
    ('{"cmd": 5, "id": "x"}', {'ok': False, 'error': 'bad command', 'id': 'x'}),
    ('{"cmd": null}', {'ok': False, 'error': 'bad command'}),
    ('{"cmd": "fly", "id": [1]}', {'ok': False, 'error': 'unknown command', 'id': [1]}),
    ('{"cmd": "reset", "id": null}', {'ok': True, 'counters': 'reset', 'id': None}),
])
def test_error_replies_keep_the_connection_open(board, message, reply):
    with board.ws() as ws:
        ws.send(message)
        assert json.loads(ws.recv(timeout=10)) == reply
        # the same connection still answers a good command
        assert board.command(ws, cmd='status', id=1)['ok'] is True


def test_binary_frame_gets_an_error_and_the_connection_stays(board):
    with board.ws() as ws:
        ws.send(b'{"cmd": "status"}')
        reply = json.loads(ws.recv(timeout=10))
        assert reply['ok'] is False and 'binary' in reply['error']
        assert board.command(ws, cmd='reset', id=2) == {'ok': True, 'counters': 'reset', 'id': 2}


def test_many_bad_messages_in_a_row_then_a_good_one(board):
    with board.ws() as ws:
        for message in ['x', '[]', '{}', '{"cmd": 1}', '{"cmd": "nope"}'] * 10:
            ws.send(message)
            assert json.loads(ws.recv(timeout=10))['ok'] is False
        assert board.command(ws, cmd='status')['ok'] is True


def test_set_sensitivity_changes_the_board(board):
    with board.ws() as ws:
        reply = board.command(ws, cmd='set', key='sensitivity', value=80, id='s1')
        assert reply == {'ok': True, 'key': 'sensitivity', 'value': 80, 'id': 's1'}
    # another client sees the new value
    assert board.status()['settings']['sensitivity'] == 80


@pytest.mark.parametrize('key, value', [
    ('sensitivity', 101), ('sensitivity', -1), ('sensitivity', '50'),
    ('sensitivity', True), ('sensitivity', 50.5), ('sensitivity', None),
    ('quality', 3), ('framesize', 'HUGE'), ('vflip', 1), ('flash', 256),
])
def test_set_rejects_bad_values_and_changes_nothing(board, key, value):
    before = board.status()['settings']
    with board.ws() as ws:
        reply = board.command(ws, cmd='set', key=key, value=value, id=9)
    assert reply['ok'] is False and reply['error'] == 'bad value' and reply['id'] == 9
    assert board.status()['settings'] == before


def test_set_unknown_key(board):
    with board.ws() as ws:
        for key in ['volume', 5, None]:
            reply = board.command(ws, cmd='set', key=key, value=1)
            assert reply == {'ok': False, 'error': 'bad value', 'key': key,
                             'reason': 'unknown setting'}


@pytest.mark.parametrize('key, value', [
    ('framesize', 'QVGA'), ('quality', 20), ('brightness', -2),
    ('vflip', True), ('hmirror', True), ('flash', 128),
])
def test_set_camera_and_flash_settings(board, key, value):
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key=key, value=value) == \
            {'ok': True, 'key': key, 'value': value}
    assert board.status()['settings'][key] == value
    board.wait_frame()


# our setting and value -> what the driver must be given, in each API's own
# names and numbers (micropython-camera-API: FrameSize, quality 0-100 higher
# is better; micropython-camera-driver: FRAME_*, 4-63, flip/mirror 0/1)
DRIVER_VALUES = [
    ('framesize', 'SVGA', {'cnadler86': ('frame_size', 11), 'lemariva': ('framesize', 9)}),
    ('framesize', 'QVGA', {'cnadler86': ('frame_size', 6), 'lemariva': ('framesize', 5)}),
    ('quality', 20, {'cnadler86': ('quality', 73), 'lemariva': ('quality', 20)}),
    ('brightness', -2, {'cnadler86': ('brightness', -2), 'lemariva': ('brightness', -2)}),
    ('contrast', 1, {'cnadler86': ('contrast', 1), 'lemariva': ('contrast', 1)}),
    ('saturation', 2, {'cnadler86': ('saturation', 2), 'lemariva': ('saturation', 2)}),
    ('gainceiling', 3, {'cnadler86': ('gainceiling', 3)}),
    ('vflip', True, {'cnadler86': ('vflip', True), 'lemariva': ('flip', 1)}),
    ('hmirror', True, {'cnadler86': ('hmirror', True), 'lemariva': ('mirror', 1)}),
    ('vflip', False, {'cnadler86': ('vflip', False), 'lemariva': ('flip', 0)}),
    ('hmirror', False, {'cnadler86': ('hmirror', False), 'lemariva': ('mirror', 0)}),
]


@pytest.mark.parametrize('api', ['cnadler86', 'lemariva'])
def test_camera_settings_reach_the_driver(make_board, api):
    # The firmware's own state could change without the camera ever hearing
    # of it: the simulated driver's settings are read back instead.
    board = make_board(camera_api=api).start()
    board.wait_frame()
    # every configured value (VGA, quality 12, the rest 0/off) was given at boot
    assert board.sensor() == (
        {'frame_size': 10, 'quality': 87, 'brightness': 0, 'contrast': 0,
         'saturation': 0, 'gainceiling': 0, 'vflip': False, 'hmirror': False}
        if api == 'cnadler86' else
        {'framesize': 8, 'quality': 12, 'brightness': 0, 'contrast': 0,
         'saturation': 0, 'flip': 0, 'mirror': 0})
    with board.ws() as ws:
        for key, value, driver in DRIVER_VALUES:
            reply = board.command(ws, cmd='set', key=key, value=value)
            if api not in driver:       # this driver has no such setting
                assert reply['ok'] is False and reply['error'] == 'not supported'
                assert key not in board.sensor()
                continue
            assert reply == {'ok': True, 'key': key, 'value': value}
            name, number = driver[api]
            assert board.sensor()[name] == number, (key, value, board.sensor())
    board.wait_frame()


def test_snapshot_now_writes_a_frame_to_the_card(board):
    with board.ws() as ws:
        reply = board.command(ws, cmd='snapshot_now', id=1)
    assert reply['ok'] is True and reply['id'] == 1
    name = reply['saved'].rsplit('/', 1)[1]
    # in its numbered folder of 100 (README, "The card")
    assert reply['saved'] == '/sdcard/snaps/%s/%s' % (folder_of(name), name)
    assert name.startswith('manual-') and name.endswith('.jpg') and ':' not in name
    files = board.card_files()
    assert files[name] in frame_set()
    assert len(board.card_files(raw=True)[name]) == reply['bytes']
    status = board.status()
    assert status['last_snapshot'] == reply['saved']
    assert status['snapshot_count'] >= 1


def test_reset_zeroes_the_counters(board):
    with board.ws() as ws:
        board.command(ws, cmd='snapshot_now')
        assert board.command(ws, cmd='reset', id='r') == {'ok': True, 'counters': 'reset', 'id': 'r'}
        status = board.command(ws, cmd='status')['status']
    assert status['trigger_count'] == 0 and status['snapshot_count'] == 0

"""Settings changed at run time (WebSocket, MQTT as Home Assistant sends
them) are kept on the board's flash: back after a restart, applied to the
camera driver, written once for a burst of changes and never when nothing
changed; a config.json deployed with a new value wins."""
import json
import os
import time

from tools.broker import board_config
from tools.sim.harness import REPO

ID = 'c0ffee000025'
BASE = 'esp32cam/%s/' % ID
SAVED = 'settings: saved to flash'


def online(topic, payload):
    return topic == BASE + 'availability' and payload == b'online'


def mqtt_set(listener, key, value):
    mark = listener.mark()
    listener.publish(BASE + 'commands', json.dumps({'cmd': 'set', 'key': key, 'value': value}))
    return listener.wait_json(BASE + 'results', start=mark)


def wait_saved(board, count, timeout=20):
    deadline = time.monotonic() + timeout
    while board.output()[board.log_start:].count(SAVED) < count:
        assert time.monotonic() < deadline, board.output()[-3000:]
        time.sleep(0.2)


def test_settings_come_back_after_a_restart(make_board, broker, listener):
    board = make_board(config=board_config(broker), board_id=ID).start()
    board.wait_frame()
    listener.wait(online)
    with board.ws() as ws:
        for value in (55, 60, 70):              # a dragged slider
            assert board.command(ws, cmd='set', key='sensitivity', value=value)['ok']
        assert board.command(ws, cmd='set', key='framesize', value='QVGA')['ok']
        assert board.command(ws, cmd='set', key='brightness', value=-1)['ok']
    # Home Assistant's switch and light send the same commands over MQTT
    assert mqtt_set(listener, 'motion_armed', False)['ok']
    assert mqtt_set(listener, 'flash', 128)['ok']
    driver = board.sensor()
    wait_saved(board, 1)
    time.sleep(4)                               # longer than the wait for quiet
    assert board.output()[board.log_start:].count(SAVED) == 1      # one write for all
    board.stop()

    board.start()
    board.wait_frame()
    settings = board.status()['settings']
    assert (settings['sensitivity'], settings['framesize'], settings['brightness'],
            settings['motion_armed'], settings['flash']) == (70, 'QVGA', -1, False, 128)
    assert board.sensor() == driver             # what reached the driver, again
    # the same value again is no change: nothing is written
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='sensitivity', value=70)['ok']
    time.sleep(4)
    assert SAVED not in board.output()[board.log_start:]


def test_a_restart_right_after_a_change_keeps_it(make_board):
    board = make_board().start()
    board.wait_frame()
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='quality', value=20)['ok']
        assert board.command(ws, cmd='restart')['ok']
    deadline = time.monotonic() + 30
    while 'booting again' not in board.output()[board.log_start:]:
        assert time.monotonic() < deadline, board.output()[-3000:]
        time.sleep(0.2)
    assert board.wait_for(lambda s: s['camera'] == 'ok')['settings']['quality'] == 20


def test_a_new_value_in_config_json_wins_over_the_kept_one(make_board, tmp_path):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    board = make_board(config=config).start()
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='sensitivity', value=80)['ok']
        assert board.command(ws, cmd='set', key='quality', value=30)['ok']
    wait_saved(board, 1)
    board.stop()
    # the user deploys a config.json with another sensitivity
    flash = board.env['SIM_FLASH_DIR']
    config['motion']['sensitivity'] = 35
    with open(os.path.join(flash, 'config.json'), 'w') as f:
        json.dump(config, f)
    board.start()
    settings = board.status()['settings']
    assert settings['sensitivity'] == 35 and settings['quality'] == 30

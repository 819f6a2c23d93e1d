"""Boot paths on the simulator: config problems, Wi-Fi, safe mode, watchdog."""
import json
import os
import time

import pytest

from tools.sim.harness import REPO


def test_no_config_starts_the_access_point_and_serves(make_board):
    board = make_board(config='none').start()
    out = board.output()
    assert 'config: config.json not found' in out
    assert 'access point esp32cam-setup' in out
    board.wait_frame()


def test_broken_config_is_reported_and_the_board_still_serves(make_board):
    board = make_board(config='{"wifi": [oops').start()
    out = board.output()
    assert 'config: config.json is not valid JSON' in out
    assert 'access point' in out
    assert board.wait_for(lambda s: s['camera'] != 'starting')['camera'] == 'ok'


def test_a_time_lapse_interval_over_a_day_is_refused(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['clips'] = dict(config.get('clips', {}), timelapse_s=7 * 86400)
    board = make_board(config=config).start()
    assert 'config: clips.timelapse_s must be 0 to 86400 (a day)' in board.output()
    board.wait_frame()


def test_wrong_types_in_the_config_fall_back_to_defaults(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['camera'] = 'VGA please'
    config['motion']['sensitivity'] = 'high'
    board = make_board(config=config).start()
    out = board.output()
    assert 'config: camera must be an object' in out
    assert 'config: motion.sensitivity has the wrong type' in out
    assert board.status()['settings']['sensitivity'] == 50


def test_wifi_that_never_connects_falls_back_to_the_access_point(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['wifi'] = [{'ssid': 'first', 'password': 'x'}, {'ssid': 'second', 'password': 'y'}]
    config['wifi_timeout_s'] = 1
    board = make_board(config=config)
    board.set_faults(wifi_fail=True)
    board.start()
    out = board.output()
    assert out.index('connecting to first') < out.index('connecting to second') \
        < out.index('access point esp32cam-setup')


def test_second_network_is_used_when_the_first_fails(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['wifi'] = [{'ssid': 'first', 'password': 'x'}, {'ssid': 'second', 'password': 'y'}]
    config['wifi_timeout_s'] = 1
    board = make_board(config=config)
    board.set_faults(wifi_fail=['first'])
    board.start()
    out = board.output()
    assert 'connecting to second' in out and 'wifi: connected' in out
    assert 'access point' not in out


def test_the_example_config_is_valid(make_board):
    board = make_board(config=open(os.path.join(REPO, 'config.example.json')).read()).start()
    assert 'config:' not in board.output()


def test_config_json_is_never_served(make_board):
    board = make_board(config={'auth_token': None, 'hostname': 'secretcam'}).start()
    with board.http() as client:
        for path in ('/config.json', '/static/../config.json', '/static/config.json',
                     '/snaps/config.json', '/static/%2e%2e/config.json'):
            response = client.get(path)
            assert response.status_code in (400, 404) and 'secretcam' not in response.text


def test_safe_mode_skips_the_app(make_board, tmp_path):
    root = tmp_path / 'flash'
    root.mkdir()
    for name in ('boot.py', 'main.py', 'firmware', 'static'):
        os.symlink(os.path.join(REPO, name), root / name)
    os.mkdir(root / 'lib')
    import microdot
    os.symlink(os.path.dirname(microdot.__file__), root / 'lib' / 'microdot')
    (root / 'SAFE').write_text('')
    board = make_board(board_root=str(root))
    with pytest.raises(RuntimeError):
        board.start(timeout=10)             # it never serves
    assert 'safe mode (SAFE file found)' in board.output()


def test_safe_pin_held_low_at_power_on_skips_the_app(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['safe_pin'] = 12
    board = make_board(config=config)
    board.set_faults(pins_low=[12])         # a jumper from pin 12 to GND
    with pytest.raises(RuntimeError):
        board.start(timeout=10)             # it never serves
    deadline = time.monotonic() + 60        # a loaded host boots slowly
    while 'safe mode (pin 12 held low)' not in board.output():
        assert time.monotonic() < deadline, board.output()
        time.sleep(0.2)
    board.stop()
    board.set_faults(pins_low=[13])         # another pin low: pin 12 floats high
    board.start()
    assert 'safe mode' not in board.output()[board.log_start:]
    board.wait_frame()


def test_watchdog_resets_a_stalled_board_and_not_a_healthy_one(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['watchdog_s'] = 2
    board = make_board(config=config).start()
    board.wait_frame()
    import time
    time.sleep(3)
    assert 'watchdog' not in board.output()     # fed while the loop runs
    board.set_faults(camera_hang_s=3)           # the driver blocks the loop
    deadline = time.monotonic() + 30
    while 'board reset, booting again' not in board.output():
        assert time.monotonic() < deadline, board.output()
        time.sleep(0.2)
    assert 'watchdog: not fed' in board.output()
    board.set_faults()
    board.wait_for(lambda s: s['camera'] == 'ok', timeout=30)


def test_unknown_keys_and_values_out_of_range_are_reported_and_defaulted(make_board):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'] = {'sensitivty': 80, 'cooldown_s': -5}     # misspelt; below 0
    config['camera']['quality'] = 99                             # 4..63
    config['limits'] = {'heartbeat_s': 0}
    config['stream_fps'] = 5
    board = make_board(config=config).start()
    out = board.output()
    expected = ['motion.sensitivty is not a known key (did you mean sensitivity?)',
                'stream_fps is not a known key',
                'motion.cooldown_s must be 0 to 3600; 5 used',
                'camera.quality must be 4 to 63; 12 used',
                'limits.heartbeat_s must be 1 to 60; 5 used']
    for problem in expected:
        assert 'config: ' + problem in out, out
    status = board.status()
    assert sorted(status['config_problems']) == sorted(expected)
    # each falls back to its default, and the board runs on it
    assert status['settings']['quality'] == 12 and status['settings']['sensitivity'] == 50
    assert board.sensor()['quality'] == 87          # 12 on the camera API's 0..100 scale
    board.wait_frame()


def test_a_good_config_reports_nothing(make_board):
    board = make_board().start()
    assert 'config:' not in board.output()
    assert board.status()['config_problems'] == []

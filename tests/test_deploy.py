"""`make deploy` for real: mpremote against the simulated board's USB serial
port (a pseudo-terminal), onto its LittleFS2 flash image, which the board then
boots from. The image is checked with the unix port's own vfs.VfsLfs2."""
import json
import os
import re
import subprocess
import time

import httpx
import pytest

from flashboard import (bundle_hashes, checkout, copied_files, flash_files, flash_read,
                        in_terminal, make)
from tools.sim.harness import REPO

SIM_CONFIG = os.path.join(REPO, 'tools', 'sim', 'config.json')


@pytest.fixture
def user(tmp_path):
    """A user's checkout, their config.json and OTA key paths."""
    repo = checkout(tmp_path / 'repo')
    config = json.load(open(SIM_CONFIG))
    config['hostname'] = 'deployed-cam'
    config_path = tmp_path / 'my-config.json'
    config_path.write_text(json.dumps(config))
    return {'repo': repo, 'config': str(config_path), 'key': str(tmp_path / 'ota.key')}


@pytest.fixture
def usb_board(make_board, tmp_path):
    """A board with a blank flash on a serial port."""
    return make_board(flash=str(tmp_path / 'flash.img'), serial=True).start(serving=False)


def deploy(user, board, *extra):
    """make deploy as a user runs it; leaves the console once it is open.
    Returns mpremote's output."""
    start = len(board.output())
    status, out = in_terminal(make(user['repo'], 'deploy', 'PORT=' + board.serial_port,
                                   'ARCH=host', 'KEY=' + user['key'], *extra),
                              lambda console: True)
    assert status == 0, out
    board.log_start = start             # what the board said since
    return out


def wait_serving(board):
    with board.http() as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get('/').status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, board.output()[board.log_start:]
            time.sleep(0.2)


def mpremote(board, *args):
    return subprocess.run([os.path.join(REPO, '.venv', 'bin', 'mpremote'), 'connect',
                           board.serial_port, 'resume'] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_deploy_to_a_blank_board_then_only_what_changed(user, usb_board, tmp_path):
    out = deploy(user, usb_board, 'CONFIG=' + user['config'])
    bundle = os.path.join(user['repo'], 'build', 'board')
    expected = bundle_hashes(bundle)
    assert copied_files(out, expected) == sorted(expected)      # all of it, the first time
    wait_serving(usb_board)
    # the board serves the dashboard it was given
    with usb_board.http() as client:
        page = client.get('/', headers={'Accept-Encoding': 'identity'})
    assert page.status_code == 200
    assert page.content == open(os.path.join(bundle, 'static', 'index.html'), 'rb').read()
    usb_board.wait_for(lambda status: status['camera'] == 'ok')
    # a stale source and a module the bundle no longer has, left by an older install
    result = mpremote(usb_board, 'fs', 'cp', SIM_CONFIG, ':firmware/board.py', '+',
                      'fs', 'cp', SIM_CONFIG, ':firmware/retired.mpy')
    assert result.returncode == 0, result.stderr

    # one module changed: one file goes over the wire
    init = os.path.join(user['repo'], 'firmware', '__init__.py')
    text = open(init).read()
    open(init, 'w').write(re.sub(r"VERSION = '([^']+)'", r"VERSION = '\1-fix1'", text))
    out = deploy(user, usb_board)
    assert copied_files(out, expected) == ['firmware/__init__.mpy']
    assert 'Up to date: ota/key' in out
    wait_serving(usb_board)

    usb_board.stop()
    files = flash_files(usb_board.flash)
    bundle_now = bundle_hashes(bundle)
    for name, entry in bundle_now.items():
        assert files[name] == entry, name
    assert 'firmware/board.py' not in files and 'firmware/retired.mpy' not in files
    assert 'SAFE' not in files
    assert json.loads(flash_read(usb_board.flash, 'config.json'))['hostname'] == 'deployed-cam'
    assert flash_read(usb_board.flash, 'ota/key') == open(user['key'], 'rb').read()


def test_without_config_the_board_keeps_its_own(user, usb_board):
    deploy(user, usb_board, 'CONFIG=' + user['config'])
    out = deploy(user, usb_board)
    assert 'config.json' not in out
    usb_board.stop()
    assert json.loads(flash_read(usb_board.flash, 'config.json'))['hostname'] == 'deployed-cam'


def test_deploy_gets_through_to_a_board_whose_app_crashes_at_import(user, usb_board):
    board_py = os.path.join(user['repo'], 'firmware', 'board.py')
    good = open(board_py).read()
    open(board_py, 'w').write('raise RuntimeError("broken at import")\n' + good)
    deploy(user, usb_board, 'CONFIG=' + user['config'])
    deadline = time.monotonic() + 30
    while 'broken at import' not in usb_board.output()[usb_board.log_start:]:
        assert time.monotonic() < deadline, usb_board.output()
        time.sleep(0.2)
    open(board_py, 'w').write(good)
    out = deploy(user, usb_board)
    assert copied_files(out, bundle_hashes(os.path.join(user['repo'], 'build', 'board'))) \
        == ['firmware/board.mpy']
    wait_serving(usb_board)


def test_make_repl_exits_cleanly(user, usb_board):
    deploy(user, usb_board, 'CONFIG=' + user['config'])
    wait_serving(usb_board)
    # Ctrl-C stops the app, then a line at the REPL, then Ctrl-] leaves
    status, out = _repl(user, usb_board, b'\x03', b'print(6 * 7)\r',
                        lambda console: '42' in console)
    assert status == 0, out
    assert 'KeyboardInterrupt' in out and '>>> ' in out and '42' in out


def _raw_mode(terminal):
    import termios
    return not termios.tcgetattr(terminal)[3] & (termios.ISIG | termios.ICANON)


def _repl(user, board, interrupt, line, until):
    import pty
    import select
    import time
    master, slave = pty.openpty()
    proc = subprocess.Popen(make(user['repo'], 'repl', 'PORT=' + board.serial_port),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b''
    sent = []
    deadline = time.monotonic() + 180      # a loaded machine: deploy and REPL are slow
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            text = out.decode(errors='replace')
            if 'exit this shell' in text and not sent and _raw_mode(master):
                # (before mpremote sets its terminal raw, the line discipline
                # takes a Ctrl-C for itself: "^C" echoed, nothing sent)
                os.write(master, interrupt)
                sent.append(1)
            elif '>>> ' in text and len(sent) == 1:
                os.write(master, line)
                sent.append(2)
            elif len(sent) == 2 and until(text.split('print(6 * 7)', 1)[-1]):
                os.write(master, b'\x1d')
                sent.append(3)
        try:
            return proc.wait(timeout=30), out.decode(errors='replace')
        except subprocess.TimeoutExpired:
            raise AssertionError('make repl still running after step %d:\n%s' % (
                len(sent), out.decode(errors='replace')))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_soft_reset_and_machine_reset_reboot_through_boot_py(user, usb_board):
    deploy(user, usb_board, 'CONFIG=' + user['config'])
    wait_serving(usb_board)
    # without `resume` mpremote soft-resets (Ctrl-D in the raw REPL): boot.py
    # runs again, main.py not (as on the ESP32), so the app is stopped
    start = len(usb_board.output())
    result = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'mpremote'), 'connect',
                             usb_board.serial_port, 'exec', 'import os; print(os.listdir())'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'boot.py' in result.stdout and 'config.json' in result.stdout
    log = usb_board.output()[start:]
    assert 'MPY: soft reboot' in log and 'wifi: connected' in log.split('MPY: soft reboot')[1]
    with pytest.raises(httpx.TransportError):
        usb_board.http().get('/', timeout=3)
    # machine.reset() (mpremote reset): a power-on boot, the app serves again
    assert mpremote(usb_board, 'reset').returncode == 0
    wait_serving(usb_board)


def test_mpremote_stops_the_app_and_the_console_says_until_when(user, usb_board, tmp_path):
    config = json.load(open(user['config']))
    config['watchdog_s'] = 8
    config_path = tmp_path / 'watchdog-config.json'
    config_path.write_text(json.dumps(config))
    deploy(user, usb_board, 'CONFIG=' + str(config_path))
    wait_serving(usb_board)
    # as the README has it: mpremote needs the REPL, so Ctrl-C stops the app
    start = len(usb_board.output())
    result = mpremote(usb_board, 'fs', 'ls', '/')
    assert result.returncode == 0 and 'boot.py' in result.stdout, result.stderr
    stopped = time.monotonic()
    log = usb_board.output()[start:]
    assert 'app: stopped by Ctrl-C' in log and 'within 8 s' in log, log
    with pytest.raises(httpx.TransportError):
        usb_board.http().get('/', timeout=2)
    # the watchdog, unfed at the REPL, resets it and the app serves again
    usb_board.log_start = start
    wait_serving(usb_board)
    assert 'watchdog: not fed' in usb_board.output()[start:]
    print('app back %.1f s after mpremote stopped it' % (time.monotonic() - stopped))
    # `+ reset` (README) brings it back at once
    start = len(usb_board.output())
    result = mpremote(usb_board, 'fs', 'ls', '/', '+', 'reset')
    assert result.returncode == 0, result.stderr
    began = time.monotonic()
    wait_serving(usb_board)
    assert time.monotonic() - began < 8
    assert 'watchdog: not fed' not in usb_board.output()[start:]

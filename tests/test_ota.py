"""Over-the-air updates on a board that boots from its flash image: slots,
the signed manifest, health confirmation, rollback, cut uploads and power
cuts. The board is first set up the way a user does it (`make deploy` over
its serial port); updates go the way a user sends them (`make ota`, or a
POST of the file); the flash image is checked after each with VfsLfs2."""
import json
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time

import httpx
import pytest

from flashboard import bundle_hashes, checkout, flash_files, flash_read, in_terminal, make
from tools.sim.harness import REPO, SSE, Board

HEALTH_S = 6            # the config's ota_health_s for these boards
OLD = '0.2.0'


def set_version(repo, version):
    init = os.path.join(repo, 'firmware', '__init__.py')
    text = open(init).read()
    open(init, 'w').write(re.sub(r"VERSION = '[^']+'", "VERSION = '%s'" % version, text))


@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    """A flash image as `make deploy` leaves it (version OLD, an OTA key,
    ota_health_s = HEALTH_S), and the checkout it came from."""
    tmp = tmp_path_factory.mktemp('deployed')
    repo = checkout(tmp / 'repo')
    set_version(repo, OLD)
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['ota_health_s'] = HEALTH_S
    (tmp / 'config.json').write_text(json.dumps(config))
    board = Board(tmp, flash=str(tmp / 'flash.img'), serial=True).start(serving=False)
    try:
        status, out = in_terminal(make(repo, 'deploy', 'PORT=' + board.serial_port, 'ARCH=host',
                                       'KEY=' + str(tmp / 'ota.key'),
                                       'CONFIG=' + str(tmp / 'config.json')),
                                  lambda console: True)
        assert status == 0, out
    finally:
        board.stop()
    return {'image': str(tmp / 'flash.img'), 'key': str(tmp / 'ota.key'), 'repo': repo,
            'credentials': (board.password, board.token),
            'files': bundle_hashes(os.path.join(repo, 'build', 'board'))}


@pytest.fixture
def ota_board(make_board, deployed, tmp_path):
    """The deployed board, booted from a copy of its image."""
    image = str(tmp_path / 'flash.img')
    shutil.copy(deployed['image'], image)
    return make_board(flash=image, serial=True, credentials=deployed['credentials']).start()


def update_file(deployed, tmp_path, version, broken=False):
    """A signed update file of the checkout at `version` (broken: its app
    raises at import)."""
    repo = checkout(tmp_path / ('repo-' + version))
    set_version(repo, version)
    if broken:
        board_py = os.path.join(repo, 'firmware', 'board.py')
        text = open(board_py).read()
        open(board_py, 'w').write('raise RuntimeError("broken at import")\n' + text)
    out = str(tmp_path / (version + '.ota'))
    status, text = in_terminal(make(repo, 'bundle', 'ARCH=host'), lambda c: True)
    assert status == 0, text
    import subprocess
    import sys
    subprocess.run([sys.executable, os.path.join(repo, 'tools', 'ota.py'), '--key', deployed['key'],
                    '--bundle', os.path.join(repo, 'build', 'board'), '--out', out, '--pack-only'],
                   check=True, capture_output=True)
    return out, repo


def post(board, data):
    with httpx.Client(base_url=board.url, timeout=60, headers=board.auth_headers()) as client:
        return client.post('/ota', content=data,
                           headers={'Content-Type': 'application/octet-stream'})


def ota_status(board):
    with board.http() as client:
        return client.get('/ota').json()


def wait_ota(board, predicate, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = ota_status(board)
            if predicate(last):
                return last
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError('update status never matched: %r\n%s' % (last, board.output()[-3000:]))


def slot_pointer(image):
    files = flash_files(image)
    if 'ota/slot' not in files:
        return None
    return flash_read(image, 'ota/slot').decode().split()


def assert_root_untouched(image, deployed):
    files = flash_files(image)
    for name, entry in deployed['files'].items():
        assert files.get(name) == entry, name
    return files


def assert_slot_complete(image, slot, bundle):
    files = flash_files(image)
    want = {n: e for n, e in bundle_hashes(bundle).items() if n.startswith(('firmware/', 'static/', 'lib/'))}
    for name, entry in want.items():
        assert files.get('ota/%s/%s' % (slot, name)) == entry, name
    assert not [n for n in files if n.endswith('.part')]


def test_a_good_update_is_kept_once_healthy(ota_board, deployed, tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.3.0')
    sse = SSE(ota_board)
    assert sse.next_status()['update']['version'] == OLD
    bearer = ota_board.auth_headers().get('Authorization', '')
    token = ['TOKEN=' + bearer[7:]] if bearer.startswith('Bearer ') else []
    status, out = in_terminal(make(repo, 'ota', 'ARCH=host', 'HOST=127.0.0.1:%d' % ota_board.port,
                                   'KEY=' + deployed['key'], *token), lambda c: True)
    assert status == 0, out
    assert 'updated to 0.3.0' in out
    # SSE announced it while it was going on
    assert sse.until(lambda s: s['update']['busy'])['update']['last'] == 'receiving an update'
    sse.close()
    now = ota_status(ota_board)
    assert now['version'] == '0.3.0' and now['state'] == 'ok' and now['slot'] == 'a'
    with ota_board.http() as client:
        assert client.get('/').status_code == 200
    ota_board.stop()
    assert slot_pointer(ota_board.flash) == ['a', 'base', 'ok', '0', str(HEALTH_S)]
    assert_root_untouched(ota_board.flash, deployed)
    assert_slot_complete(ota_board.flash, 'a', os.path.join(repo, 'build', 'board'))


def test_a_tampered_file_is_refused_and_nothing_changes(ota_board, deployed, tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.3.1')
    data = bytearray(open(path, 'rb').read())
    data[-100] ^= 0x01                  # a byte of the last file (static/...)
    reply = post(ota_board, bytes(data))
    assert reply.status_code == 400 and 'SHA-256' in reply.json()['error']
    header_end = data.index(b'\n')
    manifest = bytearray(data)
    manifest[header_end + 20] ^= 0x01   # the manifest itself: the MAC does not match
    reply = post(ota_board, bytes(manifest))
    assert reply.status_code == 403 and 'signature' in reply.json()['error']
    now = ota_status(ota_board)
    assert now['version'] == OLD and now['slot'] == 'base' and 'refused' in now['last']
    ota_board.stop()
    assert slot_pointer(ota_board.flash) is None
    files = assert_root_untouched(ota_board.flash, deployed)
    assert not [n for n in files if n.startswith('ota/a')]



def test_every_file_is_checked_against_its_sha256_lib_included(ota_board, deployed, tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.3.3')
    data = open(path, 'rb').read()
    head, rest = data.split(b'\n', 1)
    size = int(head.split()[2])
    files = json.loads(rest[:size])['files']
    offset = len(head) + 1 + size
    first_of = {}               # folder -> (name, offset) of its first file in the bundle
    for name, length, _ in files:
        if length:
            first_of.setdefault(name.split('/', 1)[0], (name, offset))
        offset += length
    assert sorted(first_of) == ['firmware', 'lib', 'static'], sorted(first_of)
    for folder in ('lib', 'firmware', 'static'):
        name, at = first_of[folder]
        tampered = bytearray(data)
        tampered[at] ^= 0x01    # the MAC still holds: only this file's SHA-256 can tell
        reply = post(ota_board, bytes(tampered))
        assert reply.status_code == 400, (name, reply.status_code, reply.text)
        assert reply.json()['error'] == '%s does not match its SHA-256' % name
    assert ota_status(ota_board)['version'] == OLD
    ota_board.stop()
    assert slot_pointer(ota_board.flash) is None
    assert not [n for n in flash_files(ota_board.flash) if n.startswith('ota/a')]


def test_an_upload_cut_midway_changes_nothing_and_the_next_works(ota_board, deployed, tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.3.2')
    data = open(path, 'rb').read()
    sock = socket.create_connection(('127.0.0.1', ota_board.port))
    sock.sendall(('POST /ota HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n'
                  'Content-Type: application/octet-stream\r\n%s\r\n'
                  % (len(data), ota_board.raw_auth())).encode())
    sock.sendall(data[:len(data) // 2])
    time.sleep(1)
    sock.close()                        # the connection dies mid-upload
    now = wait_ota(ota_board, lambda s: not s['busy'])
    assert now['version'] == OLD and now['slot'] == 'base' and 'failed' in now['last']
    reply = post(ota_board, data)
    assert reply.status_code == 200, reply.text
    now = wait_ota(ota_board, lambda s: s['version'] == '0.3.2' and s['state'] == 'ok')
    ota_board.stop()
    assert slot_pointer(ota_board.flash)[:3] == ['a', 'base', 'ok']
    assert_root_untouched(ota_board.flash, deployed)
    assert_slot_complete(ota_board.flash, 'a', os.path.join(repo, 'build', 'board'))


def test_an_update_that_crashes_at_import_is_rolled_back_within_30_s(ota_board, deployed,
                                                                   tmp_path):
    # the default health time: the watchdog alone would take 3 x 120 s
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config.update(ota_health_s=120)
    (tmp_path / 'config.json').write_text(json.dumps(config))
    mpremote(ota_board, 'fs', 'cp', str(tmp_path / 'config.json'), ':config.json', '+', 'reset')
    wait_ota(ota_board, lambda s: s['version'] == OLD)
    path, repo = update_file(deployed, tmp_path, '0.4.0', broken=True)
    began = time.monotonic()
    reply = post(ota_board, open(path, 'rb').read())
    assert reply.status_code == 200, reply.text
    # boots on trial: each crashes at import and resets at once; the fourth goes back
    now = wait_ota(ota_board, lambda s: s['state'] == 'rolledback', timeout=30)
    offline_s = time.monotonic() - began
    print('a broken update rolled back %.1f s after its upload' % offline_s)
    assert offline_s < 30
    assert now['version'] == OLD and now['slot'] == 'base'
    assert 'rolled back' in now['last'] and '0.4.0' in now['last']
    assert ota_board.output().count('broken at import') == 3
    sse = SSE(ota_board)
    assert 'rolled back' in sse.next_status()['update']['last']
    sse.close()
    ota_board.stop()
    assert slot_pointer(ota_board.flash) == ['base', 'a', 'rolledback', '0', '120']
    assert_root_untouched(ota_board.flash, deployed)


def test_power_cuts_during_an_update_always_boot_a_complete_slot(make_board, deployed, tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.5.0')
    data = open(path, 'rb').read()
    bundle = os.path.join(repo, 'build', 'board')
    # how long a whole update takes here: upload, switch, restart, trial, confirm
    image = str(tmp_path / 'flash-timing.img')
    shutil.copy(deployed['image'], image)
    board = make_board(flash=image, serial=True, credentials=deployed['credentials']).start()
    began = time.monotonic()
    assert post(board, data).status_code == 200
    uploaded_s = time.monotonic() - began
    wait_ota(board, lambda s: s['version'] == '0.5.0' and s['state'] == 'ok', timeout=60)
    whole_s = time.monotonic() - began
    board.stop()
    rng = random.Random(14)
    outcomes = []
    for attempt in range(8):
        image = str(tmp_path / ('flash-%d.img' % attempt))
        shutil.copy(deployed['image'], image)
        board = make_board(flash=image, serial=True, credentials=deployed['credentials']).start()
        replies = []
        sender = threading.Thread(target=lambda: replies.append(_try_post(board, data)),
                                  daemon=True)
        # half the cuts during the upload itself, half in what follows it
        cut_s = rng.uniform(0, uploaded_s) if attempt % 2 == 0 else rng.uniform(0, whole_s)
        sender.start()
        time.sleep(cut_s)
        board.power_cut()
        sender.join(timeout=30)
        board.start()
        now = wait_ota(board, lambda s: s['state'] != 'trial' and not s['busy'])
        assert now['version'] in (OLD, '0.5.0')
        outcomes.append((round(cut_s, 2), replies[0] if replies else None, now['version']))
        board.stop()
        pointer = slot_pointer(image)
        if now['version'] == '0.5.0':
            assert pointer[:3] == ['a', 'base', 'ok']
            assert_slot_complete(image, 'a', bundle)
        else:
            assert pointer is None or pointer[0] == 'base'
        assert_root_untouched(image, deployed)
    print('update: uploaded in %.2f s, kept after %.2f s; cuts (s, reply, booted): %s'
          % (uploaded_s, whole_s, outcomes))


def _try_post(board, data):
    try:
        return post(board, data).status_code
    except httpx.HTTPError:
        return None


def test_the_dashboard_shows_the_version_and_sends_an_update(ota_board, deployed, tmp_path,
                                                             open_page):
    from playwright.sync_api import expect
    path, repo = update_file(deployed, tmp_path, '0.6.0')
    page = open_page(ota_board)
    expect(page.locator('#fw-version')).to_have_text(OLD)
    expect(page.locator('#update-btn')).to_be_disabled()        # no file chosen yet
    page.set_input_files('#update-file', path)
    page.click('#update-btn')
    # it restarts into the new slot, the page reconnects and shows the outcome
    expect(page.locator('#fw-version')).to_have_text('0.6.0 (slot a)', timeout=60000)
    expect(page.locator('#update-last')).to_have_text('updated to 0.6.0', timeout=60000)
    # while the board restarts nothing listens: the page's retries are refused
    assert not [e for e in page.errors if 'ERR_CONNECTION_REFUSED' not in e]


def mpremote(board, *args):
    import subprocess
    result = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'mpremote'), 'connect',
                             board.serial_port, 'resume'] + list(args),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_output(board, text, timeout=60):
    deadline = time.monotonic() + timeout
    while text not in board.output()[board.log_start:]:
        assert time.monotonic() < deadline, board.output()[-3000:]
        time.sleep(0.2)


def test_safe_mode_does_not_count_trial_boots_and_usb_deploy_takes_over(ota_board, deployed,
                                                                       tmp_path):
    path, repo = update_file(deployed, tmp_path, '0.7.0')
    assert post(ota_board, open(path, 'rb').read()).status_code == 200
    wait_ota(ota_board, lambda s: s['version'] == '0.7.0' and s['state'] == 'ok')
    # put slot a back on trial, in safe mode: the boots there are not counted
    ota_board.log_start = len(ota_board.output())
    mpremote(ota_board, 'exec', 'with open("ota/slot", "w") as f:\n'
             '    f.write("a base trial 2 %d")\nopen("SAFE", "w").close()' % HEALTH_S,
             '+', 'reset')
    wait_output(ota_board, 'safe mode (SAFE file found)')
    ota_board.log_start = len(ota_board.output())
    mpremote(ota_board, 'reset')
    wait_output(ota_board, 'simulator: board reset, booting again')
    wait_output(ota_board, 'safe mode (SAFE file found)')
    assert mpremote(ota_board, 'exec', 'print(open("ota/slot").read())').split() == \
        ['a', 'base', 'trial', '2', str(HEALTH_S)]
    # out of safe mode it is a boot on trial again, and healthy: kept
    mpremote(ota_board, 'exec', 'import os\nos.remove("SAFE")', '+', 'reset')
    wait_ota(ota_board, lambda s: s['version'] == '0.7.0' and s['state'] == 'ok')
    # a USB deploy of the old version: that is what runs now, whatever OTA did
    status, out = in_terminal(make(deployed['repo'], 'deploy', 'PORT=' + ota_board.serial_port,
                                   'ARCH=host', 'KEY=' + deployed['key']), lambda c: True)
    assert status == 0, out
    now = wait_ota(ota_board, lambda s: s['version'] == OLD)
    assert now['slot'] == 'base' and now['state'] == 'ok'
    ota_board.stop()
    assert slot_pointer(ota_board.flash) is None
    assert_root_untouched(ota_board.flash, deployed)


def test_an_update_is_kept_on_a_board_whose_own_watchdog_is_off(ota_board, deployed, tmp_path):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config.update(ota_health_s=HEALTH_S, watchdog_s=0)
    (tmp_path / 'config.json').write_text(json.dumps(config))
    mpremote(ota_board, 'fs', 'cp', str(tmp_path / 'config.json'), ':config.json', '+', 'reset')
    wait_ota(ota_board, lambda s: s['version'] == OLD)
    path, repo = update_file(deployed, tmp_path, '0.8.0')
    assert post(ota_board, open(path, 'rb').read()).status_code == 200
    wait_ota(ota_board, lambda s: s['version'] == '0.8.0' and s['state'] == 'ok')
    kept_at = len(ota_board.output())
    # the watchdog boot.py armed for the trial is still armed: the app feeds it
    time.sleep(3 * HEALTH_S)
    assert 'watchdog' not in ota_board.output()[kept_at:]
    assert ota_status(ota_board)['version'] == '0.8.0'


def _resigned_without_build(path, key_path):
    """The same update as an older tools/ota.py made it: no build number."""
    import hashlib
    import hmac
    data = open(path, 'rb').read()
    head, rest = data.split(b'\n', 1)
    size = int(head.split()[2])
    manifest = json.loads(rest[:size])
    del manifest['build']
    text = json.dumps(manifest, separators=(',', ':')).encode()
    key = bytes.fromhex(open(key_path).read().strip())
    mac = hmac.new(key, text, hashlib.sha256).hexdigest().encode()
    return b'ESP32CAM-OTA1 ' + mac + b' ' + str(len(text)).encode() + b'\n' + text + rest[size:]


def test_an_old_signed_update_sent_again_is_refused_unless_sent_as_a_downgrade(
        ota_board, deployed, tmp_path):
    # issue 24, finding 2: with 0.3.0 running, an old 0.1.0 file signed with
    # the same key (captured from plain HTTP, say) was taken and ran
    old_path, old_repo = update_file(deployed, tmp_path, '0.1.0')
    new_path, new_repo = update_file(deployed, tmp_path, '0.3.0')
    assert post(ota_board, open(new_path, 'rb').read()).status_code == 200
    wait_ota(ota_board, lambda s: s['version'] == '0.3.0' and s['state'] == 'ok')
    sse = SSE(ota_board)
    for data in (open(old_path, 'rb').read(),                       # the old file again
                 _resigned_without_build(old_path, deployed['key']),  # as older tools made it
                 open(new_path, 'rb').read()):                      # the same one: not newer
        reply = post(ota_board, data)
        assert reply.status_code == 409, reply.text
        assert 'is not newer than the running 0.3.0' in reply.json()['error']
        assert 'DOWNGRADE=1' in reply.json()['error']
        now = ota_status(ota_board)
        assert now['version'] == '0.3.0' and now['state'] == 'ok' and now['slot'] == 'a'
        assert now['last'] == 'refused: ' + reply.json()['error']
    # shown like the other refusals: on the dashboard's status stream
    assert sse.until(lambda s: s['update']['last'].startswith('refused: '))
    sse.close()
    ota_board.stop()
    assert slot_pointer(ota_board.flash)[:3] == ['a', 'base', 'ok']
    assert_slot_complete(ota_board.flash, 'a', os.path.join(new_repo, 'build', 'board'))
    # going back on purpose: signed as a downgrade, it is taken
    ota_board.start()
    bearer = ota_board.auth_headers().get('Authorization', '')
    token = ['TOKEN=' + bearer[7:]] if bearer.startswith('Bearer ') else []
    status, out = in_terminal(make(old_repo, 'ota', 'ARCH=host', 'DOWNGRADE=1',
                                   'HOST=127.0.0.1:%d' % ota_board.port,
                                   'KEY=' + deployed['key'], *token), lambda c: True)
    assert status == 0, out
    assert '(build 1000, a downgrade)' in out and 'updated to 0.1.0' in out
    now = ota_status(ota_board)
    assert now['version'] == '0.1.0' and now['state'] == 'ok' and now['slot'] == 'b'


def test_make_ota_passes_a_token_that_starts_with_a_dash():
    # a token is URL-safe base64: one in 64 starts with "-", which argparse
    # took for an option ("--token: expected one argument")
    printed = subprocess.run(['make', '--no-print-directory', '-n', '-o', 'bundle', '-C', REPO,
                              'ota', 'HOST=127.0.0.1:9', 'TOKEN=-oi2Xg_7DZ5eonANkZE5bcEf'],
                             capture_output=True, text=True, check=True).stdout
    line = next(cmd for cmd in printed.splitlines() if 'tools/ota.py' in cmd)
    args = shlex.split(line.replace('\\', ''))
    parsed = subprocess.run(args + ['--help'], cwd=REPO, capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr

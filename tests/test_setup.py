"""First boot: the WPA2 setup access point, its captive-portal DNS, the
/setup page, saving and the restart into the home network."""
import json
import os
import socket
import time

import httpx
import pytest
from playwright.sync_api import expect

from tools.sim.harness import REPO

NO_WIFI = {'hostname': 'esp32cam-sim'}       # a board fresh from the flasher


def restarted(board, boots=2, timeout=30):
    """Wait until the simulator has served `boots` times (a reset in between)."""
    deadline = time.monotonic() + timeout
    while board.output()[board.log_start:].count('Dashboard: http://') < boots:
        assert board.proc.poll() is None, board.output()
        assert time.monotonic() < deadline, 'the board did not restart:\n' + board.output()
        time.sleep(0.1)


def dns_query(port, name, qtype=1):
    query = b'\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
    query += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\x00'
    query += qtype.to_bytes(2, 'big') + b'\x00\x01'
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(query, ('127.0.0.1', port))
        return s.recvfrom(512)[0]


def setup_form(board, **fields):
    form = {'ssid': 'simnet', 'wifi_password': 'simulated', 'password': 'correct horse 9',
            'password2': 'correct horse 9'}
    form.update(fields)
    return form


def test_setup_end_to_end_in_chromium(make_board, browser):
    board = make_board(config=NO_WIFI, setup=False).start()
    out = board.output()
    # first boot: a WPA2 access point with the board's own password, on the console
    assert "sim: access point 'esp32cam-setup', WPA2-PSK, key '" in out
    assert 'wifi: no network; access point esp32cam-setup (WPA2, password ' in out
    assert 'setup: no dashboard password yet; open http://192.168.4.1/setup' in out
    context = browser.new_context()
    page = context.new_page()
    page.goto(board.url + '/')
    assert page.url == board.url + '/setup'
    found = page.get_by_role('list', name='Networks found')
    expect(found).to_contain_text('simnet')
    expect(found).to_contain_text('FRITZ!Box 7530 XY')
    # a network name is anyone's choice: shown as text, never as markup
    expect(found).to_contain_text('<b>cafe</b> & "free"')
    assert page.locator('#found b').count() == 0
    assert page.locator('#networks option').count() == 4       # simnet once
    page.get_by_label('Wi-Fi network').fill('simnet')
    page.get_by_label('Wi-Fi password').fill('simulated')
    page.get_by_label('New dashboard password (8 or more characters)').fill('correct horse 9')
    page.get_by_label('The same password again').fill('correct horse 9')
    page.get_by_role('button', name='Save and restart').click()
    expect(page.get_by_role('heading', name='Saved')).to_be_visible()
    token = page.locator('#token').inner_text()
    assert len(token) >= 20
    assert 'setup: saved; API token for scripts (shown once): ' + token in board.output()
    restarted(board)
    out = board.output()
    assert 'simulator: board reset, booting again' in out
    assert 'wifi: connected, ip 127.0.0.1' in out.split('booting again')[1]
    # the dashboard now asks for the password, and it works
    page.goto(board.url + '/')
    assert page.url == board.url + '/login'
    page.get_by_label('Dashboard password').fill('correct horse 9')
    page.get_by_role('button', name='Log in').click()
    page.wait_for_url(board.url + '/')
    expect(page.locator('#conn')).to_have_text('online')
    expect(page.locator('#live-state')).to_have_text('live')
    with httpx.Client(base_url=board.url, timeout=10) as c:
        assert c.get('/snaps', headers={'Authorization': 'Bearer ' + token}).status_code == 200
        assert c.get('/snaps').status_code == 401
        # the setup page is gone
        assert c.get('/setup').status_code in (401, 404)
    context.close()


def test_networks_found_strongest_first_and_a_tap_picks_one(make_board, browser):
    board = make_board(config=NO_WIFI, setup=False).start()
    page = browser.new_context(viewport={'width': 390, 'height': 844}, has_touch=True).new_page()
    page.goto(board.url + '/setup')
    found = page.get_by_role('list', name='Networks found')
    rows = found.get_by_role('button')
    # simnet once (its stronger access point), strongest first, signal and lock shown
    assert [' '.join(text.split()) for text in rows.all_inner_texts()] == [
        'simnet strong, -48 dBm, password', 'FRITZ!Box 7530 XY good, -63 dBm, password',
        'Neighbour-5G weak, -71 dBm, password', '<b>cafe</b> & "free" weak, -80 dBm, open']
    os.makedirs(os.path.join(REPO, 'build', 'screenshots'), exist_ok=True)
    page.screenshot(path=os.path.join(REPO, 'build', 'screenshots', 'setup-phone.png'))
    # a tap fills the network in and moves on to its password...
    found.get_by_role('button', name='FRITZ!Box 7530 XY').tap()
    expect(page.get_by_label('Wi-Fi network')).to_have_value('FRITZ!Box 7530 XY')
    expect(page.get_by_label('Wi-Fi password')).to_be_focused()
    # ...or, for an open one, to the dashboard password
    found.get_by_role('button', name='<b>cafe</b>').tap()
    expect(page.get_by_label('Wi-Fi network')).to_have_value('<b>cafe</b> & "free"')
    expect(page.get_by_label('New dashboard password (8 or more characters)')).to_be_focused()
    page.context.close()


def test_the_captive_portal_dns_answers_every_name_with_the_board(make_board):
    board = make_board(config=NO_WIFI, setup=False).start()
    for name in ('connectivitycheck.gstatic.com', 'captive.apple.com', 'example.org'):
        reply = dns_query(board.dns_port, name)
        assert reply[:2] == b'\xbe\xef' and reply[2] & 0x80        # our id, a response
        assert reply[6:8] == b'\x00\x01'                            # one answer
        assert reply[-4:] == bytes([192, 168, 4, 1])
    aaaa = dns_query(board.dns_port, 'example.org', qtype=28)
    assert aaaa[6:8] == b'\x00\x00'                                  # no IPv6 address
    # a phone's connectivity check, under its own name, is sent to the page
    with httpx.Client(base_url=board.url, timeout=10) as c:
        check = c.get('/generate_204', headers={'Host': 'connectivitycheck.gstatic.com'})
        assert check.status_code == 302
        assert check.headers['location'] == 'http://192.168.4.1/setup'
        foreign = c.post('/setup', data=setup_form(board),
                         headers={'Host': 'evil.example', 'Origin': 'http://evil.example'})
        assert foreign.status_code == 421
        saved = c.post('/setup', data=setup_form(board), headers={'Origin': board.url})
        assert saved.status_code == 200
    restarted(board)
    # setup is over: the responder's socket is gone
    with pytest.raises(socket.timeout):
        dns_query(board.dns_port, 'example.org')


def test_setup_on_the_home_network_refuses_bad_forms_and_other_sites(make_board):
    # Wi-Fi in config.json, no password yet: setup is all the board serves
    board = make_board(setup=False).start()
    assert 'access point' not in board.output()
    with httpx.Client(base_url=board.url, timeout=10) as c:
        page = c.get('/setup')
        assert page.status_code == 200 and 'required' not in page.text.split('id="ssid"')[1][:60]
        bad = [setup_form(board, password2='something else'), setup_form(board, password='short',
               password2='short'), setup_form(board, wifi_password='1234'), {}]
        for form in bad:
            reply = c.post('/setup', data=form, headers={'Origin': board.url})
            assert reply.status_code == 400 and 'role="alert"' in reply.text, form
        for headers in ({'Origin': 'http://evil.example'}, {'Sec-Fetch-Site': 'cross-site'},
                        {}):            # a page elsewhere, or no proof at all
            assert c.post('/setup', data=setup_form(board), headers=headers).status_code == 403
        assert c.get('/').headers['location'] == '/setup'           # nothing was saved
        # the Wi-Fi fields may stay empty: only the dashboard password is set
        done = c.post('/setup', data=setup_form(board, ssid='', wifi_password=''),
                      headers={'Origin': board.url})
        assert done.status_code == 200 and 'id="token"' in done.text
    restarted(board)
    with httpx.Client(base_url=board.url, timeout=10) as c:
        assert c.get('/').headers['location'] == '/login'
        assert c.post('/login', data={'password': 'correct horse 9'}).status_code == 302
        assert c.get('/snaps').status_code == 200
    assert 'wifi: connecting to simnet' in board.output().split('booting again')[1]


def test_the_wifi_is_saved_atomically_next_to_the_old_networks(make_board, tmp_path):
    config = {'wifi': [{'ssid': 'old', 'password': 'oldpass1'}], 'hostname': 'esp32cam-sim'}
    board = make_board(config=config, setup=False).start()
    with httpx.Client(base_url=board.url, timeout=10) as c:
        assert c.post('/setup', data=setup_form(board, ssid='Neighbour-5G'),
                      headers={'Origin': board.url}).status_code == 200
    restarted(board)
    # the board tries the new network first, then the old one
    assert 'wifi: connecting to Neighbour-5G' in board.output().split('booting again')[1]
    flash = [line for line in open('/proc/%d/task/%d/children' % (board.proc.pid, board.proc.pid))]
    assert flash        # the board runs; its flash folder is the micropython process's cwd
    cwd = os.readlink('/proc/%s/cwd' % flash[0].split()[0])
    saved = json.load(open(os.path.join(cwd, 'config.json')))
    assert saved['wifi'][0] == {'ssid': 'Neighbour-5G', 'password': 'simulated'}
    assert saved['wifi'][1] == {'ssid': 'old', 'password': 'oldpass1'}
    assert saved['hostname'] == 'esp32cam-sim'
    assert sorted(n for n in os.listdir(cwd) if n.endswith('.part')) == []
    credentials = open(os.path.join(cwd, 'auth.json')).read()
    assert 'correct horse' not in credentials


def test_make_sim_prints_how_to_log_in(tmp_path):
    # `make sim` with no settings: set up already, and it says how to get in
    import subprocess
    import sys
    from tools.sim.harness import SIMULATE, free_port
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith('SIM_')}
    proc = subprocess.Popen([sys.executable, SIMULATE, '--port', str(port), '--sdcard',
                             str(tmp_path / 'card.img')], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('Log in with the password'):
                break
        password = line.split()[5]
        token = line.rstrip(')\n').rsplit(' ', 1)[1]
        assert 'Dashboard: http://127.0.0.1:%d/' % port in ''.join(lines)
        with httpx.Client(base_url='http://127.0.0.1:%d' % port, timeout=10) as c:
            assert c.get('/snaps', headers={'Authorization': 'Bearer ' + token}).status_code == 200
            assert c.post('/login', data={'password': password}).status_code == 302
    finally:
        proc.terminate()
        proc.wait(timeout=15)

"""Origin and Host checks, rate limits, HTTPS/WSS (authentication: test_auth.py)."""
import json
import ssl
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from wsraw import RawWebSocket

def sim_config(**changes):
    config = json.load(open('tools/sim/config.json'))
    config.update(changes)
    return config


@pytest.mark.parametrize('origin, allowed', [
    ('http://evil.example', False),
    ('http://127.0.0.1:1', False),
    ('null', False),
    ('http://allowed.example:8000', True),
    ('http://allowed.example:8000.evil.example', False),
    (None, True),                   # not a browser: a script with the token
    ('same', True),
    ('same.evil.example', False),   # a prefix is not a match
])
def test_control_checks_the_origin(make_board, origin, allowed):
    board = make_board(config=sim_config(allowed_origins=['http://allowed.example:8000'])).start()
    headers = {}
    if origin and origin.startswith('same'):
        origin = 'http://127.0.0.1:%d' % board.port + origin[4:]
    if origin:
        headers['Origin'] = origin
    if allowed:
        with ws_connect(board.ws_url, open_timeout=10, origin=None,
                        additional_headers=dict(headers, **board.auth_headers())) as ws:
            ws.send('{"cmd": "status"}')
            assert json.loads(ws.recv(timeout=10))['ok'] is True
    else:
        extra = ''.join('%s: %s\r\n' % item for item in headers.items())
        assert RawWebSocket(board, headers=extra).status == 403


@pytest.mark.parametrize('host, status', [
    ('evil.example', 421), ('evil.example:8080', 421), ('10.0.0.99', 421),
    # malformed: the head parser's 400 (RFC 9112 §3.2), before any Host check
    ('[::1]evil.com', 400), ('[::1]:80evil', 400), ('127.0.0.1:80:80', 400),
    ('esp32cam-sim.local', 200), ('ESP32CAM-SIM', 200), ('127.0.0.1', 200), ('localhost:80', 200),
    ('[::1]:80', 200),
])
def test_foreign_host_header_is_refused(board, host, status):
    with board.http() as client:
        assert client.get('/', headers={'Host': host}).status_code == status


def test_snapshot_now_is_rate_limited_with_a_clear_reply(make_board):
    config = sim_config()
    config['motion']['sensitivity'] = 0         # only the snapshots we count
    # a token every 20 s: however slow the host, 40 requests outrun the refill
    config['snapshot_rate'] = {'burst': 30, 'per_s': 0.05}
    board = make_board(config=config).start()
    board.wait_frame()
    with board.ws() as ws:
        for i in range(40):
            ws.send(json.dumps({'cmd': 'snapshot_now', 'id': i}))
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(40)]
        limited = [r for r in replies if not r['ok']]
        assert len([r for r in replies if r['ok']]) >= 30
        assert limited and all(r['reason'] == 'rate limited' and r['retry_after_s'] > 0
                               for r in limited)
        # the refill comes with time: let the board's clock run ahead past it
        ahead = int(max(r['retry_after_s'] for r in limited)) + 2
        board.set_faults(jump_s=ahead)
        deadline = time.monotonic() + 30
        while 'simulator: %d s ahead' % ahead not in board.output()[board.log_start:]:
            assert time.monotonic() < deadline, 'the board never ran ahead'
            time.sleep(0.1)
    # (a new connection: past the jump the board may have closed this one as
    # silent, its pings unanswered in the no time the jump took)
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is True
    assert len(board.card_files()) == 40 - len(limited) + 1


@pytest.fixture
def certificate(tmp_path):
    key, cert = tmp_path / 'key.pem', tmp_path / 'cert.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', str(key), '-out', str(cert),
                    '-days', '2', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
                   check=True, capture_output=True)
    subprocess.run(['openssl', 'x509', '-in', str(cert), '-outform', 'der',
                    '-out', str(tmp_path / 'cert.der')], check=True)
    subprocess.run(['openssl', 'pkey', '-in', str(key), '-outform', 'der',
                    '-out', str(tmp_path / 'key.der')], check=True)
    return {'pem': str(cert), 'cert': str(tmp_path / 'cert.der'), 'key': str(tmp_path / 'key.der')}


def test_https_and_wss_with_a_verified_certificate(make_board, certificate):
    board = make_board(config=sim_config(tls={'cert': certificate['cert'],
                                              'key': certificate['key']}))
    board.start()
    context = ssl.create_default_context(cafile=certificate['pem'])
    url = 'https://127.0.0.1:%d' % board.port
    with httpx.Client(base_url=url, verify=context, timeout=20) as client:
        assert client.get('/').status_code == 302
        login = client.post('/login', data={'password': board.password})
        assert login.status_code == 302
        cookie = login.headers['set-cookie']
        assert '; Secure' in cookie and 'HttpOnly' in cookie and 'SameSite=Strict' in cookie
        page = client.get('/')
        assert page.status_code == 200 and 'snap-btn' in page.text
        # the browser's Origin under TLS is https://
        assert client.get('/control', params={'var': 'led_intensity', 'val': 5},
                          headers={'Origin': url}).status_code == 200
        assert client.get('/control', params={'var': 'led_intensity', 'val': 6},
                          headers={'Origin': 'http://127.0.0.1:%d' % board.port}
                          ).status_code == 403
    with ws_connect('wss://127.0.0.1:%d/control' % board.port, ssl=context,
                    open_timeout=20, additional_headers=board.auth_headers()) as ws:
        ws.send('{"cmd": "status", "id": "tls"}')
        assert json.loads(ws.recv(timeout=20))['id'] == 'tls'
    # a client that does not trust the certificate gets nowhere
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + '/', timeout=10)

"""Optional token auth, Origin and Host checks, rate limits, HTTPS/WSS."""
import json
import ssl
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from wsraw import RawWebSocket

TOKEN = 's3cret-Token-42'


def sim_config(**changes):
    config = json.load(open('tools/sim/config.json'))
    config.update(changes)
    return config


@pytest.fixture
def locked_board(make_board):
    board = make_board(config=sim_config(auth_token=TOKEN)).start()
    return board


PROTECTED = ['/events', '/snaps', '/snapshot.jpg', '/static/app.js', '/static/style.css',
             '/snaps/manual-20000101-000000-0000.jpg']


def test_without_the_token_nothing_is_served(locked_board):
    with httpx.Client(base_url=locked_board.url, timeout=10) as client:
        page = client.get('/')
        assert page.status_code == 302 and page.headers['location'] == '/login'
        for path in PROTECTED:
            assert client.get(path).status_code == 401, path
        assert client.delete('/snaps/manual-20000101-000000-0000.jpg').status_code == 401
        assert client.get('/', params={'token': 'wrong'}).status_code == 302
    assert RawWebSocket(locked_board.port).status == 401


def test_token_in_the_query_or_a_bearer_header(locked_board):
    with httpx.Client(base_url=locked_board.url, timeout=10) as client:
        assert client.get('/', params={'token': TOKEN}).status_code == 200
        assert client.get('/snaps', headers={'Authorization': 'Bearer ' + TOKEN}).status_code == 200
        assert client.get('/snaps', headers={'Authorization': 'Bearer nope'}).status_code == 401
        with client.stream('GET', '/events', params={'token': TOKEN}) as events:
            assert events.status_code == 200
    with ws_connect(locked_board.ws_url + '?token=' + TOKEN, open_timeout=10) as ws:
        ws.send('{"cmd": "status"}')
        assert json.loads(ws.recv(timeout=10))['ok'] is True


def test_login_form_sets_an_http_only_cookie_that_opens_everything(locked_board):
    with httpx.Client(base_url=locked_board.url, timeout=10) as client:
        form = client.get('/login')
        assert form.status_code == 200 and 'name="token"' in form.text
        wrong = client.post('/login', data={'token': 'guess'})
        assert wrong.status_code == 401 and 'camauth' not in wrong.headers.get('set-cookie', '')
        ok = client.post('/login', data={'token': TOKEN})
        assert ok.status_code == 302
        cookie = ok.headers['set-cookie']
        assert 'HttpOnly' in cookie and 'SameSite=Strict' in cookie
        value = client.cookies['camauth']
        assert value and TOKEN not in value
        assert client.get('/').status_code == 200
        assert client.get('/snaps').status_code == 200
    with ws_connect(locked_board.ws_url, open_timeout=10,
                    additional_headers={'Cookie': 'camauth=' + value}) as ws:
        ws.send('{"cmd": "status"}')
        status = json.loads(ws.recv(timeout=10))['status']
    assert TOKEN not in json.dumps(status)
    assert TOKEN not in locked_board.output()


def test_repeated_wrong_logins_lock_the_form_for_a_while(locked_board):
    with httpx.Client(base_url=locked_board.url, timeout=10) as client:
        for _ in range(5):
            assert client.post('/login', data={'token': 'guess'}).status_code == 401
        assert client.post('/login', data={'token': TOKEN}).status_code == 401
        # scripts holding the token are not locked out
        assert client.get('/snaps', params={'token': TOKEN}).status_code == 200


@pytest.mark.parametrize('origin, allowed', [
    ('http://evil.example', False),
    ('http://127.0.0.1:1', False),
    ('null', False),
    ('http://allowed.example:8000', True),
    (None, True),                   # not a browser
    ('same', True),
])
def test_control_checks_the_origin(make_board, origin, allowed):
    board = make_board(config=sim_config(allowed_origins=['http://allowed.example:8000'])).start()
    headers = {}
    if origin == 'same':
        origin = 'http://127.0.0.1:%d' % board.port
    if origin:
        headers['Origin'] = origin
    if allowed:
        with ws_connect(board.ws_url, open_timeout=10, origin=None,
                        additional_headers=headers) as ws:
            ws.send('{"cmd": "status"}')
            assert json.loads(ws.recv(timeout=10))['ok'] is True
    else:
        extra = ''.join('%s: %s\r\n' % item for item in headers.items())
        assert RawWebSocket(board.port, headers=extra).status == 403


@pytest.mark.parametrize('host, status', [
    ('evil.example', 421), ('evil.example:8080', 421), ('10.0.0.99', 421),
    ('esp32cam-sim.local', 200), ('ESP32CAM-SIM', 200), ('127.0.0.1', 200), ('localhost:80', 200),
])
def test_foreign_host_header_is_refused(board, host, status):
    with board.http() as client:
        assert client.get('/', headers={'Host': host}).status_code == status


def test_snapshot_now_is_rate_limited_with_a_clear_reply(board):
    with board.ws() as ws:
        for i in range(40):
            ws.send(json.dumps({'cmd': 'snapshot_now', 'id': i}))
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(40)]
        limited = [r for r in replies if not r['ok']]
        assert len([r for r in replies if r['ok']]) >= 30
        assert limited and all(r['reason'] == 'rate limited' and r['retry_after_s'] > 0
                               for r in limited)
        time.sleep(1.5)
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
        page = client.get('/')
        assert page.status_code == 200 and 'snap-btn' in page.text
    with ws_connect('wss://127.0.0.1:%d/control' % board.port, ssl=context,
                    open_timeout=20) as ws:
        ws.send('{"cmd": "status", "id": "tls"}')
        assert json.loads(ws.recv(timeout=20))['id'] == 'tls'
    # a client that does not trust the certificate gets nowhere
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + '/', timeout=10)

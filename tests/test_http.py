"""The dashboard, static files and what must stay unreachable."""
import socket

import pytest


def test_dashboard_and_assets(board):
    with board.http() as client:
        page = client.get('/')
        assert page.status_code == 200 and 'text/html' in page.headers['content-type']
        for marker in ('id="snap-btn"', 'id="reset-btn"', 'id="trigger-count"', 'type="range"'):
            assert marker in page.text
        js = client.get('/static/app.js')
        assert js.status_code == 200 and 'javascript' in js.headers['content-type']
        css = client.get('/static/style.css')
        assert css.status_code == 200 and 'text/css' in css.headers['content-type']


@pytest.mark.parametrize('path', [
    '/static/../boot.py', '/static/..%2fboot.py', '/static/%2e%2e/main.py',
    '/static/..\\boot.py', '/static//etc/passwd', '/static/.hidden',
    '/static/firmware/app.py', '/snaps/../../config.json', '/snaps/..%2f..%2fconfig.json',
    '/snaps/%2e%2e%2fboot.py', '/config.json', '/boot.py', '/static/' + 'a' * 300,
])
def test_nothing_outside_static_and_snaps_is_reachable(board, path):
    sock = socket.create_connection(('127.0.0.1', board.port), timeout=10)
    sock.sendall(('GET %s HTTP/1.0\r\n%s\r\n' % (path, board.raw_auth())).encode())
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    status = data.split(b' ', 2)[1]
    assert status in (b'400', b'404', b'414'), data[:200]
    assert b'firmware' not in data and b'root:' not in data and b'import' not in data

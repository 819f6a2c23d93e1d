"""HTTP head limits: long lines, big or many headers, bodies, garbage, TLS."""
import socket

import pytest


def exchange(board, data, timeout=20):
    sock = socket.create_connection(('127.0.0.1', board.port), timeout=timeout)
    sock.sendall(data)
    answer = b''
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return answer


def status_of(answer):
    return int(answer.split(b' ', 2)[1]) if answer else None


@pytest.mark.parametrize('data, status', [
    (b'GET /' + b'a' * 2000 + b' HTTP/1.1\r\n\r\n', 414),
    (b'GET /' + b'a' * 8000, 414),                                   # no line end at all
    (b'GET / HTTP/1.1\r\nX-Big: ' + b'b' * 5000 + b'\r\n\r\n', 431),
    (b'GET / HTTP/1.1\r\n' + b''.join(b'X-%d: y\r\n' % i for i in range(40)) + b'\r\n', 431),
    (b'POST /snaps HTTP/1.1\r\nContent-Length: 100000\r\n\r\n', 413),
    (b'HELLO\r\n\r\n', 400),
    (b'GET / HTTP/9.9\r\n\r\n', 400),
    (b'GET  / HTTP/1.1\r\n\r\n', 400),
    (b'get / HTTP/1.1\r\n\r\n', 400),
    (b'GET nothing HTTP/1.1\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nNo colon here\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400),
    (b'\x00\x01\x02\r\n\r\n', 400),
])
def test_bad_heads_get_a_clear_status(board, data, status):
    assert status_of(exchange(board, data)) == status


def test_tls_hello_on_the_plain_port_is_dropped_quietly(board):
    hello = bytes.fromhex('16030100a5010000a10303') + b'\x00' * 160
    assert exchange(board, hello) == b''
    assert 'Traceback' not in board.output()


def test_the_board_still_serves_after_garbage(board):
    for data in [b'\xff' * 3000, b'GET /' + b'%' * 900 + b' HTTP/1.1\r\n\r\n',
                 b'GET /%zz HTTP/1.1\r\n\r\n', b'GET /snaps/%ff%fe.jpg HTTP/1.1\r\n\r\n']:
        answer = exchange(board, data)
        assert status_of(answer) in (400, 404, 414, 431), answer[:100]
    with board.http() as client:
        assert client.get('/').status_code == 200
    assert 'Traceback' not in board.output()

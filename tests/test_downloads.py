"""Downloads of snapshots and clips (firmware/download.py): Content-Length on
every file, ranges, and a DELETE during a slow download that never leaves
the client a silent short file (issue 13, finding 4)."""
import socket
import threading
import time

from test_clips import config, record, wait_clips


def slow_get(board, path, started, out, pause=0.05):
    """GET path over a raw socket with a small receive buffer, reading
    slowly; out gets (head, body, complete) where complete is False when the
    connection ended early."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(('127.0.0.1', board.port))
    sock.settimeout(15)
    sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                  % (path, board.raw_auth())).encode())
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += sock.recv(1024)
    head, body = buf.split(b'\r\n\r\n', 1)
    head = head.decode()
    length = int(head.lower().split('content-length: ')[1].split('\r\n')[0])
    started.set()
    try:
        while len(body) < length:
            time.sleep(pause)
            chunk = sock.recv(1024)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    sock.close()
    out.append((head, body, len(body) == length))


def test_delete_of_a_clip_being_downloaded_is_refused_until_it_is_done(board):
    record(board, 3)
    name = wait_clips(board)[0]['name']
    with board.http() as client:
        whole = client.get('/clips/' + name).content
    assert len(whole) > 100000      # far more than the socket buffers hold
    started = threading.Event()
    out = []
    reader = threading.Thread(target=slow_get, args=(board, '/clips/' + name, started, out))
    reader.start()
    assert started.wait(15)
    with board.http() as client:
        r = client.delete('/clips/' + name)
        assert r.status_code == 409, r.text
        assert r.json()['error'].startswith('being downloaded')
        assert client.get('/clips/' + name, headers={'Range': 'bytes=0-9'}).status_code == 206
    reader.join()
    head, body, complete = out[0]
    assert head.startswith('HTTP/1.0 200') and complete
    assert body == whole
    with board.http() as client:
        deadline = time.monotonic() + 10
        while (r := client.delete('/clips/' + name)).status_code == 409:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert r.status_code == 200
        assert client.get('/clips/' + name).status_code == 404


def test_delete_of_a_snapshot_during_its_download_never_gives_a_short_file(board):
    name = _snapshot_name(board)
    with board.http() as client:
        r = client.get('/snaps/' + name)
        assert r.headers['content-length'] == str(len(r.content))
        whole = r.content
        r = client.get('/snaps/' + name, headers={'Range': 'bytes=2-5'})
        assert r.status_code == 206 and r.content == whole[2:6]
        assert client.get('/snaps/' + name, headers={'Range': 'bytes=99999999-'}).status_code == 416
    started = threading.Event()
    out = []
    reader = threading.Thread(target=slow_get, args=(board, '/snaps/' + name, started, out, 0.2))
    reader.start()
    assert started.wait(15)
    with board.http() as client:
        status = client.delete('/snaps/' + name).status_code
    reader.join()
    head, body, complete = out[0]
    # either the download finished first (the file was whole in flight) or
    # the DELETE was refused; in no case a short body under a 200
    assert status in (200, 409)
    assert complete and body == whole


def test_a_card_pulled_during_a_download_is_a_visible_failure(make_board):
    board = make_board(config=config()).start()
    board.wait_frame()
    record(board, 3)
    name = wait_clips(board)[0]['name']
    started = threading.Event()
    out = []
    reader = threading.Thread(target=slow_get, args=(board, '/clips/' + name, started, out, 0.1))
    reader.start()
    assert started.wait(15)
    board.set_faults(sd_removed=True)
    reader.join()
    head, body, complete = out[0]
    assert not complete         # fewer bytes than Content-Length: the client knows


def test_too_many_readers_are_told_to_come_back(board):
    record(board, 3)
    name = wait_clips(board)[0]['name']
    readers = []
    for _ in range(4):
        started = threading.Event()
        out = []
        t = threading.Thread(target=slow_get, args=(board, '/clips/' + name, started, out, 0.1))
        t.start()
        assert started.wait(15)
        readers.append((t, out))
    with board.http() as client:
        r = client.get('/clips/' + name)
        assert r.status_code == 503 and r.headers['retry-after']
    for t, out in readers:
        t.join()
        assert out[0][2]
    with board.http() as client:
        assert client.get('/clips/' + name).status_code == 200



def test_a_range_past_the_end_of_the_file_is_clamped_to_it(board):
    name = _snapshot_name(board)
    with board.http() as client:
        r = client.get('/snaps/' + name)
        assert r.headers['accept-ranges'] == 'bytes'
        whole = r.content
        size = len(whole)
        for first in (0, 10):
            asked = {'Range': 'bytes=%d-%d' % (first, size * 10)}
            with client.stream('GET', '/snaps/' + name, headers=asked) as r:
                # the head first: an unclamped range promises bytes the file lacks
                assert r.status_code == 206
                assert r.headers['content-range'] == 'bytes %d-%d/%d' % (first, size - 1, size)
                assert r.headers['content-length'] == str(size - first)
                assert r.read() == whole[first:]


def _snapshot_name(board):
    """Save a snapshot; its file name."""
    with board.ws() as ws:
        return board.command(ws, cmd='snapshot_now')['saved'].rsplit('/', 1)[1]

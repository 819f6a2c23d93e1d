"""/events: status at once, pushed on change, coalesced, heartbeats."""
import socket

from tools.sim.harness import SSE


def test_new_listener_gets_status_at_once(board):
    sse = SSE(board)
    try:
        status = sse.next_status()
        for field in ('trigger_count', 'snapshot_count', 'last_snapshot', 'sd_free',
                      'uptime_s', 'free_heap', 'camera', 'clients'):
            assert field in status
        assert status['clients'] >= 1
    finally:
        sse.close()


def test_reset_and_snapshot_are_pushed_to_a_listener(board):
    sse = SSE(board)
    try:
        sse.next_status()
        with board.ws() as ws:
            board.command(ws, cmd='reset')
            sse.until(lambda s: s['trigger_count'] == 0 and s['snapshot_count'] == 0)
            saved = board.command(ws, cmd='snapshot_now')['saved']
            status = sse.until(lambda s: s['last_snapshot'] == saved)
            assert status['snapshot_count'] == 1        # one snapshot, counted once
            board.command(ws, cmd='reset')
            sse.until(lambda s: s['trigger_count'] == 0 and s['snapshot_count'] == 0)
            board.command(ws, cmd='set', key='sensitivity', value=33)
            sse.until(lambda s: s['settings']['sensitivity'] == 33)
    finally:
        sse.close()


def test_events_are_not_cached_or_buffered_by_a_proxy(board):
    # a proxy (nginx) that buffers or caches the stream would hold every event
    with board.http() as client:
        with client.stream('GET', '/events') as response:
            assert response.headers['content-type'] == 'text/event-stream'
            assert response.headers['cache-control'] == 'no-cache'
            assert response.headers['x-accel-buffering'] == 'no'


def test_camera_failure_is_pushed(board):
    sse = SSE(board)
    try:
        board.set_faults(camera_capture_fail=True)
        sse.until(lambda s: s['camera'].startswith('error'))
        board.set_faults()
        sse.until(lambda s: s['camera'] == 'ok')
    finally:
        sse.close()


def test_slow_listener_gets_the_newest_state_not_a_backlog(board):
    # A listener with a tiny receive window that does not read while 1000
    # changes happen: the board's writes to it block, and when it reads again
    # it gets the newest state, not a backlog of 1000 events. The whole
    # backlog is read: up to the first heartbeat after the newest state, which
    # the stream sends only once it has nothing newer to send.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(('127.0.0.1', board.port))
    sock.sendall(('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                  % board.raw_auth()).encode())
    with board.ws() as ws:
        for i in range(1000):
            board.command(ws, cmd='set', key='sensitivity', value=i % 100)
        board.command(ws, cmd='set', key='sensitivity', value=77)
    sock.settimeout(30)
    data = b''
    while True:
        newest = data.find(b'"sensitivity": 77')
        if newest >= 0 and data.find(b': heartbeat', newest) >= 0:
            break
        chunk = sock.recv(65536)
        assert chunk, 'stream closed'
        data += chunk
    sock.close()
    events = data.count(b'event: status')
    after = data[newest:].count(b'event: status')
    print('events received:', events, 'after the newest state:', after)
    # the newest setting, then the control connection's close (clients - 1)
    assert after <= 3, '%d events after the newest state: a backlog' % after
    assert events < 100, '%d events were queued for a listener that did not read' % events


def test_clients_count_follows_connections(board):
    base = board.status()['clients']   # the status query's own WebSocket
    sse = SSE(board)
    sse.next_status()
    with board.ws() as ws:
        assert board.command(ws, cmd='status')['status']['clients'] == base + 1
    sse.close()
    board.wait_for(lambda s: s['clients'] == base, timeout=30)

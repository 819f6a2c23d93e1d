"""lwIP's 10 sockets as a product feature: the simulated board has the same
budget (tools/sim/socket.py), and dashboards share it: a hidden tab holds
none, a visible idle one two (events and stream), /control opens on demand."""
import re
import socket
import threading
import time

import httpx
from playwright.sync_api import expect
from websockets.exceptions import InvalidHandshake


LOOSE = {'limits': {'max_connections': 20}}     # only lwIP's budget stops clients


def open_events(board):
    sock = socket.create_connection(('127.0.0.1', board.port), timeout=10)
    sock.sendall(('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                  % board.raw_auth()).encode())
    return sock


def answer(sock):
    try:
        return sock.recv(64)
    except ConnectionResetError:
        return b''


def status(board, timeout=30):
    """The board's status, waiting for a free connection if it has none."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return board.status()
        except (OSError, InvalidHandshake):
            assert time.monotonic() < deadline, 'the board never had a connection free'
            time.sleep(0.1)


def wait_status(board, predicate, timeout=30):
    """Status until predicate(status) holds (a closed peer is noticed at the
    board's next write: a frame, or the events heartbeat)."""
    deadline = time.monotonic() + timeout
    while True:
        now = status(board)
        if predicate(now):
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.2)


def test_the_eleventh_socket_fails_as_on_lwip(make_board):
    board = make_board(config=LOOSE).start()
    clients = [open_events(board) for _ in range(9)]    # + the listener = 10
    assert all(answer(c).startswith(b'HTTP/1.0 200') for c in clients)
    extra = open_events(board)
    assert answer(extra) == b''          # accept() failed (ENFILE): dropped unanswered
    extra.close()
    clients.pop().close()
    status_after = None
    for _ in range(100):                 # the board notices the closed one...
        late = open_events(board)
        if answer(late).startswith(b'HTTP/1.0 200'):
            status_after = 'served'
            break
        late.close()
        time.sleep(0.2)
    assert status_after == 'served'      # ...and its socket serves the next client
    for c in clients + [late]:
        c.close()
    assert 'Traceback' not in board.output()


def test_without_the_budget_more_clients_fit(make_board):
    board = make_board(config=LOOSE, sockets=0).start()
    clients = [open_events(board) for _ in range(12)]
    assert all(answer(c).startswith(b'HTTP/1.0 200') for c in clients)
    for c in clients:
        c.close()


def set_hidden(page, hidden):
    """What the page sees when its tab goes to the background (headless
    Chromium keeps every page visible, so the page is told as a tab is)."""
    page.evaluate("""hidden => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
            get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


def frames_change(page):
    src = page.locator('#live').get_attribute('src')
    page.wait_for_function("src => document.getElementById('live').src !== src", arg=src)


def test_three_dashboards_two_hidden_tabs_and_a_poller_on_ten_sockets(make_board, still_frames,  # noqa: F811
                                                                      open_page):  # noqa: F811
    board = make_board(frames=still_frames, sockets=10).start()    # max_connections 7
    board.wait_frame()
    hidden = []
    for _ in range(2):
        page = open_page(board)
        expect(page.locator('#live-state')).to_have_text('live')
        set_hidden(page, True)
        hidden.append(page)
    # the hidden tabs gave back their stream and events sockets
    wait_status(board, lambda s: s['clients'] == 1)     # just this status command
    visible = []
    for _ in range(3):
        page = open_page(board)
        expect(page.locator('#live-state')).to_have_text('live')
        visible.append(page)

    stop = threading.Event()
    answers = []

    def poll_capture():
        with board.http() as client:
            while not stop.is_set():
                try:
                    answers.append(client.get('/capture').status_code)
                except httpx.HTTPError:
                    answers.append('failed')
                time.sleep(0.2)

    poller = threading.Thread(target=poll_capture)
    poller.start()
    try:
        for page in visible:
            frames_change(page)
            expect(page.locator('#live-state')).to_have_text('live')
            expect(page.locator('#conn')).to_have_text('online')
        now = status(board)
        # events + stream of three dashboards and this status command; the
        # poller's /capture may be in flight too; hidden tabs and idle control
        # sockets hold nothing
        assert now['clients'] == 7, now
        assert now['connections'] in (7, 8), now
        while answers.count(200) < 5:
            assert len(answers) < 200, answers
            time.sleep(0.2)
        for page in visible:
            frames_change(page)
    finally:
        stop.set()
        poller.join()
    assert 'failed' not in answers                  # 503 at worst, never a dropped socket

    # a fourth dashboard shown now finds the board full and says so plainly...
    back = hidden[0]
    set_hidden(back, False)
    expect(back.locator('#conn, #live-state').filter(has_text=re.compile('board busy'))).to_have_count(1)
    for page in visible:
        expect(page.locator('#live-state')).to_have_text('live')
    # ...and gets in once another tab goes to the background
    set_hidden(visible[0], True)
    expect(back.locator('#conn')).to_have_text('online', timeout=40000)
    expect(back.locator('#live-state')).to_have_text('live', timeout=40000)
    frames_change(back)

    # a command opens /control on demand, and it works
    visible[1].click('#snap-btn')
    expect(visible[1].locator('#message')).to_have_text(re.compile('^Saved '))
    for page in visible + hidden:
        assert [e for e in page.errors if not re.search('503|net::ERR_', e)] == []

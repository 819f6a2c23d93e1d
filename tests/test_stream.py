"""/stream: MJPEG to several viewers; a slow one does not hold back the others."""
import json
import os
import subprocess
import sys
import threading

import microdot
import pytest

from tools.sim.harness import REPO, frame_set, read_mjpeg


@pytest.fixture
def fast_board(make_board):
    config = json.load(open('tools/sim/config.json'))
    config['stream_max_fps'] = 30
    config['camera']['fps'] = 25
    board = make_board(config=config, fps=25).start()
    board.wait_frame()
    return board


def test_three_viewers_get_whole_frames_and_a_slow_one_holds_nobody_back(fast_board):
    board = fast_board
    got = [[], [], []]
    viewers = [threading.Thread(target=read_mjpeg, args=(board, 4, got[i], i == 2))
               for i in range(3)]
    before = board.status()['frames']
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.join()
    produced = board.status()['frames'] - before
    frames = frame_set()
    for received in got:
        assert received and all(f in frames for f in received)
    fast = [len(got[0]), len(got[1])]
    print('camera frames: %d, viewers got: %s' % (produced, [len(g) for g in got]))
    # the fast viewers see most camera frames though a third one barely reads
    assert min(fast) >= 0.6 * produced, (fast, produced)
    assert len(got[2]) < min(fast)
    board.wait_for(lambda s: s['clients'] == 1)     # all three released


def test_fps_query_caps_a_viewer(fast_board):
    capped, free = [], []
    a = threading.Thread(target=read_mjpeg, args=(fast_board, 3, capped, False, '/stream?fps=2'))
    b = threading.Thread(target=read_mjpeg, args=(fast_board, 3, free))
    a.start(), b.start()
    a.join(), b.join()
    assert 0 < len(capped) < len(free) / 3


def test_bad_fps_is_refused(board):
    with board.http() as client:
        assert client.get('/stream?fps=lots').status_code == 400


def test_capture_and_snapshot_are_not_cached(board):
    with board.http() as client:
        for path in ('/capture', '/snapshot.jpg'):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers['cache-control'] == 'no-store'
            assert response.content in frame_set()


def test_writes_the_socket_takes_whole_go_on_without_a_turn_up_to_eight():
    # Each turn of the loop waits a round of every ready task (a tenth of a
    # second on a busy board): a frame is three writes and a response's head
    # six, so a write the socket took whole goes on at once, and the loop
    # gets a turn after eight of them, or as soon as the socket is full.
    code = """
import sys, asyncio
sys.path.insert(0, %r)
from firmware import server
class Writer:
    full = False
    out_buf = b''
    drains = 0
    def write(self, data):
        self.out_buf = b'rest' if self.full else b''
    async def drain(self):
        self.drains += 1
        self.out_buf = b''
class Server:
    head_timeout_ms = write_timeout_ms = 1000
async def main():
    writer = Writer()
    conn = server.Connection(Server(), None, writer, b'')
    turns = []
    for _ in range(20):
        await conn.awrite(b'x' * 100)
        turns.append(writer.drains)
        assert conn.write_deadline is None
    writer.drains = 0
    await conn.awrite(bytes(30000))             # a frame: six slices, taken whole
    frame = writer.drains
    writer.drains = 0
    writer.full = True
    await conn.awrite(b'x' * 100)
    await conn.awrite(bytes(30000))
    print(turns.index(1) + 1, turns.index(2) + 1, turns[-1], frame, writer.drains)
asyncio.run(main())
""" % REPO
    env = dict(os.environ, MICROPYPATH='.frozen:' + os.path.dirname(os.path.dirname(microdot.__file__)))
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'micropython'), '-c', code],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    # 20 whole writes: a turn at the 8th and the 16th, no more; a frame's six
    # slices after them: one at the 4th (the count goes on); a full socket:
    # a wait for room after each write, each of the frame's slices too
    assert out.stdout.split() == ['8', '16', '2', '1', '7'], out.stdout

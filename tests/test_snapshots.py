"""Snapshots on the card: names, bursts, restarts, full and missing cards."""
import json
import os
import re
import subprocess
import sys

import pytest

from tools.sim.harness import MTOOLS_ENV, REPO, card_paths, frame_set, strip_comment

NAME = re.compile(r'^(manual|motion)-\d{8}-\d{6}-\d{4,}\.jpg$')


def burst(board, ws, count):
    for i in range(count):
        ws.send(json.dumps({'cmd': 'snapshot_now', 'id': i}))
    return [json.loads(ws.recv(timeout=30)) for _ in range(count)]


def test_burst_of_25_in_one_second_gives_25_whole_files(board):
    with board.ws() as ws:
        replies = burst(board, ws, 25)
    assert [r['id'] for r in replies] == list(range(25))
    assert all(r['ok'] for r in replies), replies
    saved = [r['saved'].rsplit('/', 1)[1] for r in replies]
    assert len(set(saved)) == 25
    assert saved == sorted(saved), 'names sort in the order they were taken'
    files = board.card_files()
    frames = frame_set()
    for name in saved:
        assert NAME.match(name), name
        assert files[name] in frames, name + ' is not a whole camera frame'
    # (a motion snapshot of the walking frames may be on its way meanwhile)
    assert not [n for n in saved if n + '.part' in files]


def test_restart_keeps_snapshots_and_never_reuses_a_name(make_board):
    board = make_board().start()
    board.wait_frame()
    with board.ws() as ws:
        first = {r['saved'] for r in burst(board, ws, 5)}
    # delete the newest one: its name must still never come back
    newest = sorted(first)[-1].rsplit('/', 1)[1]
    with board.http() as client:
        assert client.delete('/snaps/' + newest).status_code == 200
    board.stop()
    board.start()
    board.wait_frame()
    with board.ws() as ws:
        second = {r['saved'] for r in burst(board, ws, 5)}
    assert not first & second
    files = board.card_files()
    assert {p.rsplit('/', 1)[1] for p in first} - {newest} <= set(files)
    seqs = [int(p[-8:-4]) for p in sorted(first | second)]
    assert len(set(seqs)) == 10


def test_stale_part_files_are_removed_at_start_up(make_board, tmp_path):
    board = make_board().start()
    board.wait_frame()
    board.stop()
    stale = tmp_path / 'stale.part'
    stale.write_bytes(b'half a jpeg')
    # one flat in the top folder (older firmware), one in its numbered folder
    subprocess.run(['mmd', '-i', board.sdcard, '::/snaps/0000'], env=MTOOLS_ENV)
    for path in ('/snaps/manual-20000101-000000-0099.jpg.part',
                 '/snaps/0000/manual-20000101-000000-0098.jpg.part'):
        subprocess.run(['mcopy', '-i', board.sdcard, str(stale), '::' + path],
                       check=True, env=MTOOLS_ENV)
    assert len([p for p in card_paths(board.sdcard, '/snaps') if p.endswith('.part')]) == 2
    board.start()
    board.wait_frame()
    assert not [p for p in card_paths(board.sdcard, '/snaps') if p.endswith('.part')]


def test_no_card(make_board):
    board = make_board(sdcard=None).start()
    board.wait_frame()
    status = board.status()
    assert status['sd_free'] is None
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now', id=1) == \
            {'ok': False, 'reason': 'no sd card', 'id': 1}
    with board.http() as client:
        assert client.get('/snaps').json() == []


@pytest.fixture
def small_card(tmp_path):
    """A 360 KB card, formatted as a card reader would (mformat)."""
    path = str(tmp_path / 'small.img')
    subprocess.run(['mformat', '-C', '-i', path, '-f', '360', '::'], check=True, env=MTOOLS_ENV)
    return path


def test_full_card_gives_clear_errors_and_no_partial_files(make_board, small_card):
    config = json.load(open('tools/sim/config.json'))
    config['snapshot_rate'] = {'burst': 100, 'per_s': 100}
    board = make_board(sdcard=small_card, config=config).start()
    board.wait_frame()
    with board.ws() as ws:
        replies = burst(board, ws, 80)
    saved = [r for r in replies if r['ok']]
    refused = [r for r in replies if not r['ok']]
    assert saved and refused
    assert {r['reason'] for r in refused} == {'sd card full'}
    files = board.card_files()
    frames = frame_set()
    assert len(files) == len(saved)
    assert all(data in frames for data in files.values())
    assert not [n for n in files if n.endswith('.part')]
    assert board.status()['sd_free'] < 40000


def test_write_error_leaves_no_file(make_board, still_frames):
    board = make_board(frames=still_frames).start()     # no motion snapshot
    board.wait_frame()
    with board.ws() as ws:
        board.set_faults(sd_write_error=True)
        reply = board.command(ws, cmd='snapshot_now')
        assert reply['ok'] is False and reply['reason'].startswith('write failed: ')
        board.set_faults()
    # an I/O error drops the card; the board mounts it again by itself
    board.wait_for(lambda s: s['sd_free'] is not None, timeout=30)
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is True
    files = board.card_files()
    assert len(files) == 1 and all(NAME.match(n) for n in files)


def test_clock_not_set_names_are_still_unique(make_board):
    board = make_board()
    board.set_faults(ntp_fail=True)
    board.start()
    board.wait_frame()
    assert board.status()['clock_set'] is False
    with board.ws() as ws:
        names = [r['saved'] for r in burst(board, ws, 10)]
    assert all('-2000' in n for n in names)
    assert len(set(names)) == 10


def test_snaps_list_get_and_delete(board):
    with board.ws() as ws:
        saved = [r['saved'].rsplit('/', 1)[1] for r in burst(board, ws, 3)]
    with board.http() as client:
        listing = client.get('/snaps').json()
        assert [item['name'] for item in listing] == saved[::-1]
        response = client.get('/snaps/' + saved[0])
        assert response.status_code == 200
        assert response.headers['content-type'] == 'image/jpeg'
        assert strip_comment(response.content) in frame_set()
        assert client.delete('/snaps/' + saved[0]).json() == {'ok': True, 'deleted': saved[0]}
        assert client.get('/snaps/' + saved[0]).status_code == 404
        assert client.delete('/snaps/' + saved[0]).status_code == 404
    assert saved[0] not in board.card_files()


def test_a_save_cancelled_after_its_rename_still_counts_the_snapshot():
    # After the rename the save waits a turn (on a board the rename read the
    # folder twice). A connection cancelled there (the server makes room, a
    # deadline) no longer gets the reply, but the snapshot is on the card
    # under its name: it is counted and told all the same, at once.
    code = """
import sys, asyncio, os, vfs
sys.path.insert(0, %r)
from firmware import snapstore
class RamCard:
    def __init__(self, blocks):
        self.data = bytearray(blocks * 512)
    def readblocks(self, n, buf):
        buf[:] = self.data[n * 512:n * 512 + len(buf)]
    def writeblocks(self, n, buf):
        self.data[n * 512:n * 512 + len(buf)] = buf
    def ioctl(self, op, arg):
        return len(self.data) // 512 if op == 4 else 512 if op == 5 else 0
card = RamCard(2048)
vfs.VfsFat.mkfs(card)
vfs.mount(card, '/sdcard')
at_news = asyncio.Event()
async def turn(held):
    if store.recent:                    # renamed and indexed: wait here to be cancelled
        at_news.set()
        await asyncio.sleep(60)
snapstore.turn = turn
told = []
store = snapstore.SnapshotStore('/sdcard', 'snaps', True)
store.on_recovered = lambda path, kind: told.append((path, kind))
store.open()
async def main():
    task = asyncio.create_task(store.save('manual', bytes([0xFF, 0xD8]) + bytes(9000)))
    await asyncio.wait_for(at_news.wait(), 10)
    task.cancel()
    try:
        await task
        print('not cancelled')
    except asyncio.CancelledError:
        pass
    saved = [name for name in os.listdir('/sdcard/snaps/0000') if name.endswith('.jpg')]
    print(len(saved), told == [('/sdcard/snaps/0000/' + saved[0], 'manual')], store.lock.locked())
asyncio.run(main())
""" % REPO
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'micropython'), '-c', code],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['1', 'True', 'False'], out.stdout

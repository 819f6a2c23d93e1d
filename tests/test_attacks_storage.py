"""Issue #13, findings 3 and 9, written as the attack: power cuts at every
block write of a `.seq` renewal, and the card pulled at every block write of
a motion snapshot. The card is read with mtools, as a card reader does."""
import json
import os
import threading
import time

from tools.sim.harness import REPO, SSE, folder_of, seq_of


def _config(**motion):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'].update(sensitivity=0, **motion)       # only the saves we ask for
    return config


def _snapshot_through_a_cut(board, n):
    """Boot with the power cut after n block writes and ask for a snapshot:
    its reply, or None when the cut came first."""
    board.set_faults(sd_cut_after_writes=n)
    try:
        board.start()
        board.wait_frame()
        with board.ws() as ws:
            return board.command(ws, cmd='snapshot_now')
    except Exception:
        return None     # the cut came first


def _finish(board):
    """Stop the board, or reap it if the simulated cut already killed it."""
    if board.proc and board.proc.poll() is None:
        board.stop()
    elif board.proc:
        board.proc.wait()
        board.log.close()
        board.proc = None


def test_3_a_cut_at_every_block_write_of_a_seq_renewal_never_reuses_a_number(make_board):
    board = make_board(config=_config())
    board.start()
    board.wait_frame()
    used = set()
    with board.ws() as ws:
        for _ in range(3):
            reply = board.command(ws, cmd='snapshot_now')
            assert reply['ok'] is True, reply
            used.add(seq_of(reply['saved']))
    # the owner deletes them all: from now on only .seq remembers the numbers
    with board.http() as client:
        for name in [item['name'] for item in client.get('/snaps').json()]:
            assert client.delete('/snaps/' + name).status_code == 200
    board.stop()
    for n in range(12):
        # the first save after a boot renews .seq: cut the power after n
        # block writes, within the boot, the renewal or the save after it
        reply = _snapshot_through_a_cut(board, n)
        if reply and reply['ok']:
            number = seq_of(reply['saved'])
            assert number not in used, ('reused before the cut at write %d' % n, number)
            used.add(number)
        _finish(board)
        board.set_faults()
        board.start()
        board.wait_frame()
        with board.ws() as ws:
            reply = board.command(ws, cmd='snapshot_now')
        assert reply['ok'] is True, reply
        number = seq_of(reply['saved'])
        assert number not in used, ('a number came back after a cut at write %d' % n,
                                    number, sorted(used))
        used.add(number)
        # and nothing on the card names a number twice
        names = [name for name in board.card_files() if name.endswith('.jpg')]
        assert len({seq_of(name) for name in names}) == len(names), names
        with board.http() as client:
            for name in [item['name'] for item in client.get('/snaps').json()]:
                assert client.delete('/snaps/' + name).status_code == 200
        board.stop()


class Announcements(threading.Thread):
    """Every `snapshot` event the board announces on /events."""

    def __init__(self, board):
        super().__init__(daemon=True)
        self.sse = SSE(board, timeout=300)
        self.paths = []

    def run(self):
        try:
            while True:
                data = self.sse.next_event('snapshot')
                if data is None:
                    return
                self.paths.append(data['path'])
        except Exception:
            return


def test_9_a_motion_snapshot_counts_if_and_only_if_its_file_is_on_the_card(make_board,
                                                                          still_frames):
    board = make_board(frames=still_frames,
                       config=_config(pir_pin=13, pir_debounce_ms=0, cooldown_s=0))
    board.start()
    board.wait_frame()
    announced = Announcements(board)
    announced.start()
    pulses = 0
    ahead = 0           # run-ahead seconds: the card watcher's 3 s pass at once
    # A rename is one directory-sector write unless the old and new names'
    # entries lie in two sectors: every whole save moves the next names on by
    # four 32-byte entries, so four rounds meet every alignment in a sector.
    for round_ in range(5):
        for n in range(60):     # a save into a new folder: mkdir and its MARK first
            # a PIR edge: a motion snapshot, the card pulled after n block writes
            pulses += 1
            failed_before = board.output().count('snapshot not saved')
            board.set_faults(pir_pulses=pulses, sd_pull_after_writes=[n, pulses], jump_s=ahead)
            board.wait_for(lambda s: s['trigger_count'] == pulses and
                           board.output().count('snapshot not saved') +
                           s['snapshot_count'] >= pulses, timeout=30)
            failed = board.output().count('snapshot not saved') > failed_before
            ahead += 3          # the card goes back in; the watcher looks 3 s later
            board.set_faults(pir_pulses=pulses, jump_s=ahead)
            board.wait_for(lambda s: s['sd_free'] is not None, timeout=30)
            files = sorted('/sdcard/snaps/%s/%s' % (folder_of(name), name)
                           for name in board.card_files() if name.startswith('motion-'))
            status = board.status()
            assert status['snapshot_count'] == len(files), \
                (round_, n, status['snapshot_count'], files)
            deadline = time.monotonic() + 10
            while sorted(announced.paths) != files and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sorted(announced.paths) == files, (round_, n, announced.paths, files)
            if not failed:
                break           # the pull came after the whole save
        assert not failed, 'a save needs more than 60 block writes?'
    announced.sse.close()


def _card_seq(board):
    import subprocess
    from tools.sim.harness import MTOOLS_ENV
    out = subprocess.run(['mcopy', '-i', board.sdcard, '-n', '::/snaps/.seq', '-'],
                         capture_output=True, env=MTOOLS_ENV)
    return out.stdout if out.returncode == 0 else None


def _put_legacy_seq(board, number):
    # what an older firmware left: the number at its natural width
    import subprocess
    from tools.sim.harness import MTOOLS_ENV
    legacy = board.tmp / 'legacy-seq'
    legacy.write_text('%d' % number)
    subprocess.run(['mcopy', '-i', board.sdcard, '-o', '-n', str(legacy), '::/snaps/.seq'],
                   check=True, env=MTOOLS_ENV)


def test_24_5_a_cut_at_every_block_write_of_an_old_seq_migration_never_reuses_a_number(
        make_board):
    # issue 24, finding 5: a card from an older firmware keeps .seq at its
    # natural width; the first renewal rewrites it in the fixed form, and a
    # cut there must not leave the card without its number
    board = make_board(config=_config())
    board.start()
    board.wait_frame()
    with board.ws() as ws:
        assert board.command(ws, cmd='snapshot_now')['ok'] is True
    board.stop()
    used_below = 0          # every number under this one was (or may have been) used
    migrations = 0
    for n in range(32):         # the migration and its save (a new folder: ~29 block writes)
        # the older firmware's card: all snapshots deleted, only .seq remembers
        from tools.sim.harness import MTOOLS_ENV, card_paths
        paths = [p for p in card_paths(board.sdcard, '/snaps') or () if p.endswith('.jpg')]
        used_below = max([used_below] + [seq_of(p.rsplit('/', 1)[1]) + 1 for p in paths])
        if paths:
            import subprocess
            subprocess.run(['mdel', '-i', board.sdcard] + ['::' + p for p in paths],
                           check=True, env=MTOOLS_ENV)
        seq = _card_seq(board)
        used_below = max(used_below, int(seq) if seq and seq.strip().isdigit() else 0) + 37
        _put_legacy_seq(board, used_below)
        reply = _snapshot_through_a_cut(board, n)
        if reply and reply['ok']:
            assert seq_of(reply['saved']) >= used_below, ('reused before the cut', n, reply)
            migrations += 1
        _finish(board)
        board.set_faults()
        board.start()
        board.wait_frame()
        with board.ws() as ws:
            reply = board.command(ws, cmd='snapshot_now')
        assert reply['ok'] is True, reply
        assert seq_of(reply['saved']) >= used_below, (
            'a number came back after a cut at write %d' % n, reply['saved'], used_below)
        assert len(_card_seq(board)) == 10          # migrated to the fixed form
        board.stop()
    assert migrations >= 1          # the last cuts come after the whole save

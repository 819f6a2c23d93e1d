"""Power cuts during bursts of snapshots: SIGKILL the board at random
moments, boot it again on the same card, and check the card as a card
reader and fsck see it."""
import json
import random
import re
import subprocess
import threading
import time

from websockets.exceptions import ConnectionClosed, InvalidMessage

from tools.sim.harness import MTOOLS_ENV, card_paths, frame_set

# what tools/simulate.py exits with when the board process was SIGKILLed
# (the cut): the child's status -9 as its own exit status
CUT_EXIT = 256 - 9

CUTS = 50
# The board gives back, at its next mount, clusters a cut left marked used
# with no file owning them (firmware/cardcheck.py): after a boot, fsck finds
# nothing at all.
BENIGN = re.compile(r'^(fsck\.fat .*|Leaving filesystem unchanged\.|'
                    r'.*: \d+ files, \d+/\d+ clusters|)$')


def fsck_problems(image):
    """What `fsck.vfat -n` finds, and how many clusters it would reclaim."""
    out = subprocess.run(['fsck.vfat', '-n', image], capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    orphans = sum(int(m.group(1)) for m in map(re.compile(r'Reclaimed (\d+)').match, lines) if m)
    return [line for line in lines if not BENIGN.match(line)], orphans


def card_free(image):
    """Free bytes as a card reader counts them (the FAT's free clusters)."""
    listing = subprocess.run(['mdir', '-i', image, '::/'], capture_output=True, text=True,
                             env=MTOOLS_ENV, check=True).stdout
    return int(re.search(r'([\d ]+) bytes free', listing).group(1).replace(' ', ''))


def used_and_free_clusters(image):
    """(clusters fsck finds owned by files and folders, clusters free as
    mtools counts them (FSInfo's count on FAT32), cluster size, clusters)."""
    out = subprocess.run(['fsck.vfat', '-n', image], capture_output=True, text=True).stdout
    used, total = map(int, re.search(r'(\d+)/(\d+) clusters', out).groups())
    info = subprocess.run(['minfo', '-i', image, '::'], capture_output=True, text=True,
                          env=MTOOLS_ENV, check=True).stdout
    cluster = 512 * int(re.search(r'cluster size: (\d+) sectors', info).group(1))
    return used, card_free(image) // cluster, cluster, total


def burst_until_cut(board, oks, ended):
    """Send snapshot_now every 0.1 s; count the ok replies that arrive.
    `ended` gets how the burst ended: only the cut's dropped connection is
    expected; anything else fails the test."""
    try:
        with board.ws() as ws:
            for i in range(500):
                ws.send(json.dumps({'cmd': 'snapshot_now', 'id': i}))
                if json.loads(ws.recv(timeout=30))['ok']:
                    oks.append(i)
                time.sleep(0.1)         # the card keeps room for the clips
        ended.append('burst finished before the cut')
    except (ConnectionClosed, ConnectionError, InvalidMessage) as exc:
        ended.append(exc)   # the board died under us (mid-handshake too): that is the point
    except Exception as exc:
        ended.append('burst failed: %r' % exc)


def test_power_cuts_never_leave_a_broken_snapshot_or_lost_space(make_board, tmp_path):
    """Cuts at random moments while snapshots are saved, a clip is written
    and retention deletes old clips to keep the card's floor."""
    config = json.load(open('tools/sim/config.json'))
    config['snapshot_rate'] = {'burst': 1000, 'per_s': 1000}
    config['motion']['sensitivity'] = 0         # only the snapshots we count
    config['sd'] = {'min_free_bytes': 28 * 1024 * 1024}     # of a 32 MB card (FAT16)
    board = make_board(config=config, fps=25)
    rng = random.Random(7)
    frames = frame_set()
    total_ok = 0
    recorded = 0
    for cut in range(CUTS):
        board.start()
        board.wait_frame()
        if cut == 0:
            board.stop()
            before = used_and_free_clusters(board.sdcard)
            board.start()
            board.wait_frame()
        with board.ws() as ws:
            recorded += board.command(ws, cmd='record_start')['ok']
        oks = []
        ended = []
        worker = threading.Thread(target=burst_until_cut, args=(board, oks, ended))
        worker.start()
        time.sleep(rng.uniform(0.05, 1.0))
        assert worker.is_alive(), ended     # the cut comes in the middle of the burst
        assert board.power_cut() == CUT_EXIT
        worker.join()
        assert not isinstance(ended[0], str), ended[0]
        total_ok += len(oks)
        # after each cut: nothing under a final name is less than a whole frame
        files = board.card_files()
        broken = [n for n, data in files.items() if n.endswith('.jpg') and data not in frames]
        assert not broken, broken
    board.start()       # the boot after the last cut removes stale .part files
    board.wait_frame()
    board.wait_for(lambda s: s.get('clips_ready'))      # and repairs the clip it cut
    board.stop()
    files = board.card_files()
    assert not [n for n in files if not n.endswith('.jpg')], 'stale .part files left'
    assert all(data in frames for data in files.values())
    # every ok reply is a file; at most the one in flight per cut is extra
    assert total_ok <= len(files) <= total_ok + CUTS, (total_ok, len(files))
    assert recorded == CUTS
    clips = [p for p in card_paths(board.sdcard, '/clips') if p.endswith('.avi')]
    assert len(clips) < CUTS, 'retention never ran'
    problems, orphans = fsck_problems(board.sdcard)
    assert not problems and not orphans, problems
    # every cluster no file or folder owns is free again
    used, free, cluster, _ = used_and_free_clusters(board.sdcard)
    assert free == before[1] - (used - before[0]), (before, (used, free))
    print('after %d cuts: %d snapshots, %d clips, %d KB in files, %d KB free'
          % (CUTS, len(files), len(clips), used * cluster // 1024, free * cluster // 1024))


def test_a_cut_after_every_single_block_write_of_a_save(make_board):
    """Deterministic cuts: the simulated card stops the board after exactly
    N block writes, for every N through boot repair, a snapshot and its
    rename; the next boot must leave a card with only whole pictures."""
    config = json.load(open('tools/sim/config.json'))
    config['motion']['sensitivity'] = 0
    board = make_board(config=config)
    frames = frame_set()
    saved = set()
    board.start()       # format the card and boot once without faults
    board.wait_frame()
    board.stop()
    fired = []
    uncut = 0
    for n in range(45):
        board.set_faults(sd_cut_after_writes=n)
        try:
            board.start()
            board.wait_frame()
            with board.ws() as ws:
                for _ in range(2):
                    reply = board.command(ws, cmd='snapshot_now')
                    if reply['ok']:
                        saved.add(reply['saved'].rsplit('/', 1)[1])
        except Exception:
            # only the cut may stop this: the board process must have been
            # killed by it (tools/simulate.py exits with the SIGKILL status)
            assert board.proc.wait(timeout=10) == CUT_EXIT, board.output()[-2000:]
        cut = board.proc.poll() is not None
        if not cut:
            board.stop()            # no cut: this many writes were not reached
        else:
            assert board.proc.returncode == CUT_EXIT, board.output()[-2000:]
            fired.append(n)
            board.log.close()
            board.proc = None
        files = board.card_files()
        broken = [n for n, data in files.items() if n.endswith('.jpg') and data not in frames]
        assert not broken, (n, broken)
        uncut = 0 if cut else uncut + 1
        if uncut == 3:
            break                   # three in a row: the saves need fewer writes
    print('cuts fired after', fired, 'block writes')
    # a cut fired for every N from 0 up: boot repair, the saves and renames
    assert fired == list(range(len(fired))) and len(fired) >= 20, fired
    board.set_faults()
    board.start()
    board.wait_frame()
    board.stop()
    files = board.card_files()
    assert saved <= set(files), 'an acknowledged snapshot was lost'
    assert all(name.endswith('.jpg') and data in frames for name, data in files.items())
    problems, orphans = fsck_problems(board.sdcard)
    assert not problems and not orphans, problems

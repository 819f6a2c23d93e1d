"""A card written by older firmware (every snapshot flat in /snaps) moves
into the numbered folders of firmware/cardlayout.py at boot, and a power
cut at any point of that loses no file and leaves none twice.

The migration runs in MicroPython's own FatFs on the card image held in
memory (through the simulated card it takes minutes for 10,000 names: each
move looks the name up in the crowded folder from its start). A cut is a
hard stop after N block writes: what was written before stays, nothing
after; the next "boot" mounts what is there and goes on."""
import os
import random
import shutil
import subprocess
import sys

from tests.fatimage import make_flat_card
from tools.sim.harness import REPO, card_paths, folder_of

_MIGRATE = '''
import asyncio, os, sys, vfs
sys.path.append(sys.argv[3])
from firmware.cardcheck import reclaim
from firmware.cardlayout import NumberedFolder
from firmware.snapstore import SnapshotStore


class Cut(BaseException):
    pass        # the power going: no `except Exception` on the board catches it


class Ram:
    """The card image in memory; after `left` block writes the power goes."""
    def __init__(self, data, left):
        self.data = data
        self.left = left
    def readblocks(self, n, buf, off=0):
        if self.left == 0:
            raise Cut()
        buf[:] = memoryview(self.data)[n * 512 + off:n * 512 + off + len(buf)]
    def writeblocks(self, n, buf, off=0):
        if self.left == 0:
            raise Cut()
        if self.left > 0:
            self.left -= 1
        self.data[n * 512 + off:n * 512 + off + len(buf)] = buf
    def ioctl(self, op, arg):
        return len(self.data) // 512 if op == 4 else 512 if op == 5 else 0


data = bytearray(os.stat(sys.argv[1])[6])
with open(sys.argv[1], 'rb') as f:
    f.readinto(data)
for boot, left in enumerate([int(n) for n in sys.argv[2].split(',')] + [-1]):
    dev = Ram(data, left)
    try:
        reclaim(dev)            # as the board's mount does (firmware/card.py)
    except Cut:
        print('boot', boot, 'cut after', left, 'writes')
        continue
    vfs.mount(dev, '/sd')
    store = SnapshotStore('/sd', 'snaps', True)
    store.moving = True         # migrate() is run below, not as a task of open()
    try:
        store.open()            # repairs what a cut left
        asyncio.run(store.migrate())
        print('boot', boot, 'done')
        break
    except Cut:
        print('boot', boot, 'cut after', left, 'writes')
    try:
        vfs.umount('/sd')
    except Cut:
        pass
assert not store.tree.flat and not store.tree.migrating
vfs.umount('/sd')
with open(sys.argv[1], 'wb') as f:
    f.write(data)
'''


def _micropython():
    return shutil.which('micropython', path=os.path.dirname(sys.executable)) \
        or shutil.which('micropython')


def _flat_files(count):
    files = []
    for seq in range(count):
        kind = 'manual' if seq % 10 == 3 else 'motion'
        name = '%s-20260101-%06d-%04d.jpg' % (kind, seq % 86400, seq)
        files.append((name, b'\xff\xd8' + seq.to_bytes(4, 'big') + bytes(100 + seq % 900)))
    return files


def _migrate(tmp_path, files, cuts):
    image = str(tmp_path / 'card.img')
    make_flat_card(image, 32, 'snaps', files + [('.seq', b'%010d' % (len(files) + 100))])
    script = tmp_path / 'migrate.py'
    script.write_text(_MIGRATE)
    out = subprocess.run([_micropython(), '-X', 'heapsize=48M', str(script), image,
                          ','.join(str(n) for n in cuts), REPO],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return image, out.stdout


def _check(image, files):
    paths = card_paths(image, '/snaps')
    kept = [p for p in paths if not p.rsplit('/', 1)[1].startswith('.')]
    # every file once, in its numbered folder, byte for byte
    assert sorted(p.rsplit('/', 1)[1] for p in kept) == sorted(n for n, _ in files)
    for path in kept:
        name = path.rsplit('/', 1)[1]
        assert path == '/snaps/%s/%s' % (folder_of(name), name)
    want = dict(files)
    for path in random.Random(2).sample(kept, 50):
        data = subprocess.run(['mcopy', '-i', image, '-n', '::' + path, '-'], check=True,
                              capture_output=True, env=dict(os.environ, MTOOLS_SKIP_CHECK='1')).stdout
        assert data == want[path.rsplit('/', 1)[1]]
    # no broken chain or entry, no cluster left to no file (given back at
    # the next mount). A cut inside the removal of a flat name whose entries straddle two
    # sectors leaves a long-name fragment no FAT driver shows (the older
    # firmware's folder is not aligned; only a raw directory edit removes it)
    fsck = subprocess.run(['fsck.vfat', '-n', image], capture_output=True, text=True)
    problems = [line for line in fsck.stdout.splitlines()[1:-1]
                if line and line != 'Leaving filesystem unchanged.'
                and not (line.startswith('Long filename fragment "') and
                         line.endswith('" found outside a LFN sequence.'))
                and line not in ('  (Maybe the start bit is missing on the last fragment)',
                                 '  Not auto-correcting this.')]
    assert not problems and not fsck.stderr, fsck.stdout + fsck.stderr


def test_10000_flat_snapshots_move_into_folders_through_random_cuts(tmp_path):
    files = _flat_files(10000)
    rng = random.Random(26)
    # a move writes a few blocks: cuts early, in the middle and late
    cuts = sorted(rng.randrange(1, 20000) for _ in range(3))     # a whole migration: ~25,000 writes
    cuts = [b - a for a, b in zip([0] + cuts, cuts)]
    image, out = _migrate(tmp_path, files, cuts)
    assert out.count('cut after') == 3, out
    # this schedule cuts inside a flat name's removal: the short name left
    # on the moved file's clusters is parted from it at the next boot
    assert 'shared clusters after a cut; parted' in out, out
    _check(image, files)


def test_a_cut_at_each_of_the_first_block_writes_of_a_migration(tmp_path):
    # every early stop: the marker written, the first folder made, a move,
    # its second entry half done...
    files = _flat_files(150)
    image, out = _migrate(tmp_path, files, [1] * 60)
    assert out.count('cut after') == 60, out
    _check(image, files)

"""The card's sector cache (firmware/card.py, Mount): FatFs reads a folder
from its start for every name it looks up, one card command a sector, and
a save looks up several names in the same numbered folder. The mount keeps
the last sectors it read or wrote; writes still go to the card at once.

Run under MicroPython's own VfsFat on RAM cards: the cached mount must
leave the card exactly as an uncached one does, serve what the card holds
after any write, forget what a failed write touched, and stay bounded."""
import os
import subprocess
import sys

from tools.sim.harness import REPO

_PRELUDE = """
import sys, os, vfs
sys.path.insert(0, %r)
from firmware import card
class RamCard:
    def __init__(self, blocks):
        self.data = bytearray(blocks * 512)
        self.reads = 0
        self.fail_writes = 0
    def readblocks(self, n, buf):
        self.reads += len(buf) // 512
        buf[:] = memoryview(self.data)[n * 512:n * 512 + len(buf)]
    def writeblocks(self, n, buf):
        if self.fail_writes:
            self.fail_writes -= 1
            return -5
        self.data[n * 512:n * 512 + len(buf)] = buf
    def ioctl(self, op, arg):
        return len(self.data) // 512 if op == 4 else 512 if op == 5 else 0
""" % REPO


def _run(code):
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'micropython'),
                          '-X', 'heapsize=24M', '-c', _PRELUDE + code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout.split()


def test_a_cached_card_ends_byte_for_byte_as_an_uncached_one():
    # The same seeded mix on both: new files, appends, overwrites in place
    # of sectors read before (one sector and many at once), renames,
    # deletions, folders; every read must agree, and so must the images.
    out = _run("""
import random
plain, cached = RamCard(16384), RamCard(16384)
for dev in (plain, cached):
    vfs.VfsFat.mkfs(dev)
vfs.mount(plain, '/a')
vfs.mount(card.Mount(cached), '/b')
random.seed(7)
names = []
mismatch = 0
for step in range(900):
    op = random.getrandbits(3)
    size = random.getrandbits(15 if op == 4 else 13)   # past the cache's 40 sectors too
    fill = bytes((step & 255,)) * size
    if op < 3 or not names:
        folder = '%04d' % random.getrandbits(1)
        name = folder + '/snapshot-with-a-long-name-%d.jpg' % step
        for root in ('/a', '/b'):
            try:
                os.mkdir(root + '/' + folder)
            except OSError:
                pass
            with open(root + '/' + name + '.part', 'wb') as f:
                f.write(fill)
            os.rename(root + '/' + name + '.part', root + '/' + name)
        names.append(name)
        continue
    name = names[random.getrandbits(16) % len(names)]
    at = random.getrandbits(12)
    got = []
    for root in ('/a', '/b'):
        path = root + '/' + name
        if op == 3:                     # a few bytes: FatFs reads one sector
            with open(path, 'rb') as f:
                f.seek(at)
                got.append(f.read(37))
        elif op == 4:                   # overwrite in place, the read sectors too
            with open(path, 'r+b') as f:
                f.seek(at)
                f.write(fill)
            with open(path, 'rb') as f:
                got.append(f.read())
        elif op == 5:
            with open(path, 'ab') as f:
                f.write(fill)
            got.append(os.stat(path)[6])
        elif op == 6:
            os.remove(path)
            got.append(sorted(os.listdir(root + '/' + name.split('/')[0])))
        else:
            got.append(sorted(os.listdir(root + '/' + name.split('/')[0])))
    if op == 6:
        names.remove(name)
    if got[0] != got[1]:
        mismatch += 1
vfs.umount('/a')
vfs.umount('/b')
print(mismatch, plain.data == cached.data, len(names) > 50)
""")
    assert out == ['0', 'True', 'True']


def test_a_save_in_a_full_numbered_folder_reads_each_sector_about_once():
    # A folder of 100 snapshots as the board names them, then a save's
    # steps: create the .part, write, close, rename. Uncached, FatFs reads
    # the folder's 26 sectors again for each name it looks up.
    out = _run("""
def fill(dev):
    vfs.VfsFat.mkfs(dev)
    vfs.mount(dev, '/sd')
    os.mkdir('/sd/0042')
    with open('/sd/0042/.dir', 'wb'):
        pass
    for seq in range(4200, 4299):
        with open('/sd/0042/motion-20261207-101500-%04d.jpg' % seq, 'wb') as f:
            f.write(bytes(3000))
    vfs.umount('/sd')
def save(dev):
    vfs.mount(dev, '/sd')
    reads = dev.card if hasattr(dev, 'card') else dev
    reads.reads = 0
    path = '/sd/0042/manual-20261207-101600-4299.jpg'
    with open(path + '.part', 'wb') as f:
        f.write(bytes(30000))
    os.rename(path + '.part', path)
    vfs.umount('/sd')
    return reads.reads
plain, cached = RamCard(8192), RamCard(8192)
fill(plain)
fill(cached)
print(save(plain), save(card.Mount(cached)))
""")
    plain, cached = (int(n) for n in out)
    assert plain >= 100, plain            # the uncached save's figure: several scans
    assert cached <= 40, (plain, cached)  # each of the folder's sectors about once


def test_a_failed_write_is_not_served_from_the_cache_and_the_cache_stays_bounded():
    out = _run("""
import gc
class NoCard:
    def readblocks(self, n, buf):
        return -5
buf = bytearray(512)
gc.collect()
before = gc.mem_alloc()
nothing = card.Mount(NoCard())
nothing.readblocks(0, buf)                          # no card in the slot
cardless = gc.mem_alloc() - before < 1024           # no 20 KB for a cache of nothing
dev = RamCard(4096)
mount = card.Mount(dev)
mount.readblocks(100, buf)
dev.reads = 0
mount.readblocks(100, buf)
hit = dev.reads == 0
dev.fail_writes = 1
failed = mount.writeblocks(100, b'x' * 512)
dev.reads = 0
mount.readblocks(100, buf)
asked = dev.reads == 1 and buf == bytes(512)       # the card's, not the failed write's
mount.writeblocks(100, b'y' * 512)               # kept as written
mount.writeblocks(96, bytearray(512 * 8))         # then replaced by a write of many
dev.reads = 0
mount.readblocks(100, buf)
fresh = buf == bytes(512) and dev.reads == 1
for n in [90] + list(range(115, 154)):           # a cluster of 64 sectors is written at once
    mount.readblocks(n, buf)
mount.writeblocks(90, b'z' * 512 * 64)
dev.reads = 0
mount.readblocks(90, buf)
fresh = fresh and buf == b'z' * 512
mount.readblocks(153, buf)
fresh = fresh and buf == b'z' * 512 and dev.reads == 2
for n in range(1000):
    mount.readblocks(n, buf)
kept = len(mount.slot_of) if cardless else -2
other = RamCard(8)
gc.collect()
before = gc.mem_alloc()
card.Mount(other)                                  # a mount tried again: no new slab
kept = kept if gc.mem_alloc() - before < 1024 else -1
mount.lose()
lost = mount.readblocks(999, buf)            # read just before: the card's gone all the same
print(hit, failed, asked, fresh, kept, lost)
""")
    hit, failed, asked, fresh, kept, lost = out
    assert (hit, failed, asked, fresh, lost) == ('True', '-5', 'True', 'True', '-5'), out
    assert 0 < int(kept) <= 40, kept

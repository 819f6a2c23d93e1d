"""Moving a card written by older firmware into numbered folders.

Older firmware kept every snapshot (and clip) flat in one folder. At boot
the files that lie flat are moved, a few at a time, into the numbered
folders of cardlayout.py, yielding to the event loop between moves, so the
board serves meanwhile (the store finds a file in either place).

A move is one FatFs rename across folders: the new entry is written, then
the old one is removed. A cut between the two leaves both names on one
cluster chain: deleting either would free clusters the other still uses,
and FAT's rename onto an existing name deletes that name first. So a move
never renames onto an existing name; it finds such a pair, copies the
picture out (NAME.fix), drops both names and renames the copy. While a
migration is under way the top folder holds .migrating: opening such a card
repairs what a cut left in every folder before anything is written, the
same .fix rule as after a cut inside a save's rename.

FatFs removes the old entry long-name parts first: when they lie in two
sectors, a cut between the two writes leaves the old short name alone
(MOTION~1.JPG) on the moved file's clusters; untwin() finds such a name by
its content and parts the two the same way.
"""
import asyncio
import os
from micropython import const
from firmware.cardfiles import CHUNK, copy_steps, file_size, remove_quietly
from firmware.cardlayout import MIGRATING
from firmware.cardnames import seq_of

_BATCH = const(64)          # names read from the top folder per pass
_MAX_STUCK = const(8)       # files that cannot move, left where they are
_ENOENT = const(2)
_MAX_ORPHANS = const(4)     # short names looked at per boot: a cut leaves one


async def migrate(tree, lock=None, busy=None):
    """Move every numbered file lying flat in tree.root into its folder;
    one move at a time under `lock` (if given), skipping files busy(path)
    says are being read. Clears tree.flat when done. OSError if the card
    fails (the rest is moved after the next boot)."""
    stuck = []
    moved = 0
    marker = tree.root + '/' + MIGRATING
    if tree.flat and file_size(marker) is None:
        open(marker, 'wb').close()
    while tree.flat:
        batch = []
        count = 0
        for entry in os.ilistdir(tree.root):
            count += 1
            if count % 32 == 0:
                await asyncio.sleep_ms(0)
            name = entry[0]
            if entry[1] != 0x4000 and name.endswith(tree.ext) and seq_of(name) >= 0 \
                    and name not in stuck:
                batch.append(name)
                if len(batch) >= _BATCH:
                    break
        if not batch:
            tree.flat = False
            break
        skipped = 0
        for name in batch:
            await asyncio.sleep_ms(0)
            if busy is not None and busy(tree.root + '/' + name):
                skipped += 1
                continue
            if lock is not None:
                async with lock:
                    done = move(tree, name)
            else:
                done = move(tree, name)
            if done:
                moved += 1
            elif len(stuck) < _MAX_STUCK:
                stuck.append(name)
            else:
                print('sd: %s: files that cannot move stay in the top folder' % tree.root)
                return moved
        if skipped == len(batch):
            await asyncio.sleep_ms(1000)        # all being read: try again later
    remove_quietly(marker)      # every folder repaired at open(), every file moved
    tree.migrating = False
    if moved:
        print('sd: %s: moved %d files into numbered folders' % (tree.root, moved))
    return moved


def move(tree, name):
    """Move the flat file `name` into its folder; False if it cannot go
    (a different file already has its name there)."""
    # every lookup in the crowded top folder reads it up to the name: the
    # rename is the only one unless a cut left a pair
    src = tree.root + '/' + name
    dst = tree.folder_for(seq_of(name)) + '/' + name
    there = file_size(dst)
    if there is None:
        try:
            os.rename(src, dst)
        except OSError as exc:
            if exc.args[0] != _ENOENT:
                raise
        return True                 # (ENOENT: deleted meanwhile)
    if there != file_size(src):
        return file_size(src) is None
    # a cut inside an earlier move: both names share one cluster chain
    for _ in _part(src, dst):
        pass
    return True


def _part(twin, path):
    # twin and path share one cluster chain: copy path out, drop both
    # names, the copy takes path's name; yields between chunks
    remove_quietly(path + '.fix')       # a copy a cut interrupted: start again
    for _ in copy_steps(path, path + '.fix'):
        yield
    os.remove(twin)
    os.remove(path)
    os.rename(path + '.fix', path)


def _short_name(name):
    # what FatFs lists for an entry without its long name: upper-case 8.3
    base, _, ext = name.partition('.')
    return 0 < len(base) <= 8 and len(ext) <= 3 and name == name.upper() \
        and not name.startswith('.')


def _size(entry):
    return entry[3] if len(entry) > 3 else -1      # ilistdir: FAT gives the size


def _same_content(a, b):
    buf_a = bytearray(CHUNK)
    buf_b = bytearray(CHUNK)
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        while True:
            n = fa.readinto(buf_a)
            if n != fb.readinto(buf_b) or buf_a[:n] != buf_b[:n]:
                return False
            if not n:
                return True


def untwin(tree):
    """Part each short name a cut inside a move left in the top folder from
    the moved file it shares clusters with (a generator: one step per chunk
    copied). Only while a migration is under way; before the .fix rule runs."""
    if not tree.migrating:
        return
    orphans = []            # (size, path)
    for entry in os.ilistdir(tree.root):
        if entry[1] != 0x4000 and _short_name(entry[0]) and len(orphans) < _MAX_ORPHANS:
            orphans.append((_size(entry), tree.root + '/' + entry[0]))
    for size, orphan in orphans:
        for number in tree.numbers:
            folder = tree.folder(number)
            twin = None
            for entry in os.ilistdir(folder):
                if _size(entry) == size and entry[0].endswith(tree.ext) \
                        and _same_content(orphan, folder + '/' + entry[0]):
                    twin = folder + '/' + entry[0]
                    break
            if twin is not None:
                print('sd: %s and %s shared clusters after a cut; parted' % (orphan, twin))
                for _ in _part(orphan, twin):
                    yield
                break

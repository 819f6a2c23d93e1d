"""The snapshot folder on the card: names, crash-safe writes, free space,
retention, list/delete, start-up recovery.

Snapshots live in numbered folders of at most 100 (cardlayout.py):
/sdcard/snaps/0042/manual-20261124-101500-4213.jpg, so a save or delete
reads a small folder whatever the card holds.

A snapshot appears under its final name only when complete: it is written
as NAME.part in chunks, closed, then renamed, yielding to the event loop
whenever its card calls have held it a slice (ticks.turn). Stale .part
files are removed when the card is opened.

A card can hold thousands of snapshots: directory walks yield to the event
loop every few entries, and the newest ones are kept in a small index that
saves and deletes update, so listing them reads no directory at all.
"""
import asyncio
import os
import time
from micropython import const
from firmware import download
from firmware.card import unmount_card
from firmware.cardfiles import copy_now, file_size, remove_quietly
from firmware.cardlayout import NumberedFolder
from firmware.cardmigrate import migrate, untwin
from firmware.cardnames import insert_sorted, keep_newest, seq_of, stamp, valid_name
from firmware.jpegcomment import comment_segment, write_jpeg
from firmware.ticks import turn

_RESERVE = const(16384)        # keep this much free for FAT metadata
_SEQ_BLOCK = const(100)        # sequence numbers reserved per write of .seq
_SEQ_FILE = '.seq'
_SEQ_FORMAT = '%010d'          # fixed width: renewing .seq rewrites one sector in place
_ENOSPC = const(28)
_EIO = const(5)
_ENODEV = const(19)
_WATCH_MS = const(3000)
_MAX_DELETIONS = const(16)     # per snapshot: keep one save short
_RECENT = const(100)           # newest snapshots kept in memory for listings
_MAX_IN_DOUBT = const(4)       # failed renames remembered until the card is back


def _reason(exc):
    if exc.args and exc.args[0] == _ENOSPC:
        return 'sd card full'
    return 'write failed: ' + ('I/O error' if exc.args and exc.args[0] == _EIO
                               else str(exc))


class SaveError(Exception):
    """A snapshot could not be saved; args[0] is the reason for the reply."""


class SnapshotStore:
    """Owns the snapshot folder on a mounted card (or knows there is none)."""

    def __init__(self, mount_point, folder, mounted, on_change=None, tz_offset_s=0,
                 min_free=0, on_delete=None):
        self.mount_point = mount_point
        self.min_free = min_free
        self.on_delete = on_delete or (lambda names: None)
        self.tz_offset_s = tz_offset_s
        self.tree = NumberedFolder(mount_point + '/' + folder, '.jpg')
        self.snapshot_dir = self.tree.root      # .seq lives here
        self.mounted = mounted
        self.on_change = on_change or (lambda store: None)
        self.lock = asyncio.Lock()
        self.next_seq = 0
        self.reserved_seq = 0
        self.seq_part = False       # .seq.part is on the card (a migration cut short)
        self.recent = []            # (seq, name, size) of the newest, oldest first
        self.recent_valid = False   # False: rebuild from the card before use
        self.recent_capped = False  # the card may hold older ones not in it
        self.changes = 0            # counts saves and deletes: a walk that saw one is stale
        # (name, kind) of saves whose rename failed: the card may still have
        # taken it; settled when the card is opened again
        self.in_doubt = []
        self.moving = False         # migrate() runs
        self.on_recovered = lambda path, kind: None
        self.reclaim = self._no_recordings   # async fn(floor) -> free: recordings go first

    def open(self):
        """Make the folder, repair what a power cut left, find the next number,
        index the newest snapshots."""
        if not self.mounted:
            self.on_change(self)
            return
        tree = self.tree
        flat = []           # (seq, name, size) of older firmware's files, flat in the top
        leftovers = []      # (folder, name): a power cut leaves at most a couple

        self.seq_part = False

        def on_flat(entry):
            name = entry[0]
            if name == _SEQ_FILE + '.part':
                self.seq_part = True    # may hold the only record: _store_seq drops it
            elif name.endswith('.part') or name.endswith('.fix'):
                leftovers.append((tree.root, name))
            else:
                keep_newest(flat, (seq_of(name), name, entry[3] if len(entry) > 3 else 0),
                            _RECENT)
        tree.open(on_flat)
        for _ in untwin(tree):      # small files: at once
            pass
        # a cut inside a save leaves its .part in the newest folder, one
        # inside a migration's move in any: then every folder is read
        numbers = tree.numbers if tree.migrating or tree.flat else tree.numbers[-2:]
        for number in numbers:
            folder = tree.folder(number)
            for entry in os.ilistdir(folder):
                if entry[0].endswith('.part') or entry[0].endswith('.fix'):
                    leftovers.append((folder, entry[0]))
        leftovers.sort(key=lambda item: not item[1].endswith('.fix'))
        # a cut inside a migration of .seq (or an older firmware's renewal
        # through .seq.part) can leave the number only there
        seq_part = self._read_reserved(_SEQ_FILE + '.part')
        for folder, name in leftovers:
            self._repair(folder, name)
        recent, capped = self._newest_now(flat)
        top = recent[-1][0] if recent else -1
        self.next_seq = max(top + 1, self._read_reserved(_SEQ_FILE), seq_part)
        self.reserved_seq = self.next_seq
        self._set_recent(recent, capped)
        self._settle_in_doubt()
        self.on_change(self)
        if (tree.flat or tree.migrating) and not self.moving:
            self.moving = True
            asyncio.create_task(self.migrate())

    def _newest_now(self, flat):
        # the newest _RECENT from the numbered folders, newest first until
        # they hold enough (a folder's numbers are all below the next one's),
        # and older firmware's flat files; at once, at open()
        best = list(flat)
        capped = len(flat) >= _RECENT
        for number in self.tree.numbers[::-1]:
            if len(best) >= _RECENT and best[0][0] >= (number + 1) * 100:
                capped = True
                break
            for entry in os.ilistdir(self.tree.folder(number)):
                if entry[0].endswith('.jpg'):
                    item = (seq_of(entry[0]), entry[0], entry[3] if len(entry) > 3 else 0)
                    capped = keep_newest(best, item, _RECENT) or capped
        return best, capped

    async def migrate(self):
        """Move older firmware's snapshots into their numbered folders, a
        few at a time, yielding; the board serves meanwhile (open() starts
        it when the card needs it)."""
        try:
            await migrate(self.tree, self.lock, download.busy)
        except OSError as exc:
            print('sd: moving snapshots into folders stopped:', exc)
        finally:
            self.moving = False

    def _settle_in_doubt(self):
        # a card pulled inside a rename can keep the new name although the
        # rename failed: such a snapshot counts now, since it is there
        doubts = self.in_doubt
        self.in_doubt = []
        for name, kind in doubts:
            path = self.tree.path_of(name)
            if file_size(path) is not None:
                self.on_recovered(path, kind)

    def _set_recent(self, recent, capped):
        self.changes += 1           # a walk under way is out of date
        self.recent = recent
        self.recent_capped = capped
        self.recent_valid = True

    def _forget(self, name):
        # a snapshot left the card: drop it from the index; if the index
        # was full, the next one down is unknown until the card is read
        self.changes += 1
        for i, item in enumerate(self.recent):
            if item[1] == name:
                self.recent.pop(i)
                if self.recent_capped:
                    self.recent_valid = False
                return

    def _repair(self, folder, name):
        # A cut inside FatFs's rename can leave NAME.jpg and NAME.jpg.part as
        # two entries of one cluster chain: deleting either frees clusters the
        # other still uses. Copy the picture out first, then drop both.
        # (A move of the migration leaves such a pair across two folders:
        # the copy's twin is then the flat file; cardmigrate.py.)
        folder += '/'
        if name.endswith('.fix'):
            final = folder + name[:-4]
            if file_size(final + '.part') is not None \
                    or file_size(self.tree.root + '/' + name[:-4]) is not None:
                os.remove(folder + name)        # cut while copying: start again
            else:
                remove_quietly(final)          # cut after the copy: finish it
                os.rename(folder + name, final)
            return
        part = folder + name
        final = part[:-5]
        if not name.endswith('.jpg.part') or file_size(final) is None \
                or file_size(final) != file_size(part):
            remove_quietly(part)               # an unfinished write
            return
        copy_now(final, final + '.fix')
        os.remove(part)
        os.remove(final)
        os.rename(final + '.fix', final)

    def _read_reserved(self, name):
        try:
            with open(self.snapshot_dir + '/' + name) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def _take_seq(self):
        # Reserve numbers in blocks so a name is never reused, even after
        # the newest files were deleted, at one small write per block. The
        # number is rewritten in place at a fixed width: one sector, no
        # size change, so a cut leaves the old number or the new one. (A
        # .part and rename would also move .seq's directory entries and let
        # later snapshot names straddle two directory sectors, where a cut
        # can tear a long file name.)
        if self.next_seq >= self.reserved_seq:
            reserved = self.next_seq + _SEQ_BLOCK
            self._store_seq((_SEQ_FORMAT % reserved).encode())
            self.reserved_seq = reserved
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _store_seq(self, text):
        # .seq in its fixed form is rewritten in place. Any other form (an
        # older firmware's, a missing or torn one) is replaced without ever
        # truncating the file that holds the card's highest number: if that
        # is .seq, the new number goes to .seq.part first (open() reads both
        # and keeps .seq.part), then .seq is written whole, then .seq.part goes.
        path = self.snapshot_dir + '/' + _SEQ_FILE
        part = path + '.part'
        if file_size(path) == len(text) and not self.seq_part:
            with open(path, 'r+b') as f:
                f.write(text)
            return
        if self._read_reserved(_SEQ_FILE + '.part') < self._read_reserved(_SEQ_FILE):
            with open(part, 'wb') as f:
                f.write(text)
            self.seq_part = True
        with open(path, 'wb') as f:
            f.write(text)
        remove_quietly(part)
        self.seq_part = False

    def free_bytes(self):
        """Free bytes on the card, or None without one. Cheap: mount_card()
        made FatFs count the free clusters, and it keeps the count since."""
        if not self.mounted:
            return None
        try:
            st = os.statvfs(self.mount_point)
        except OSError:
            return None
        return st[0] * st[4]

    async def save(self, kind, jpeg, trigger_count=0, cause=None, note=None):
        """Write jpeg as KIND-YYYYMMDD-HHMMSS-NNNN.jpg with a JPEG comment
        (time, cause, trigger count, sequence, and `note`, e.g. where the
        motion was); return (path, file size)."""
        if not self.mounted:
            raise SaveError('no sd card')
        async with self.lock:
            free = await self._make_room(len(jpeg))
            held = time.ticks_ms()
            if free is None:
                raise SaveError('no sd card')
            if free < len(jpeg) + _RESERVE:
                raise SaveError('sd card full')
            try:
                seq = self._take_seq()
            except OSError as exc:
                raise self._failure(exc)
            # every open, stat and rename reads the folder: on a crowded card
            # each is slow, so the loop runs between them once they held it a slice
            await turn(held)
            when = stamp(self.tz_offset_s)
            name = '%s-%s-%04d.jpg' % (kind, when, seq)
            text = 'esp32cam time=%s trigger=%s count=%d seq=%d' % (
                when, cause or kind, trigger_count, seq)
            comment = comment_segment(text + ' ' + note if note else text)
            renaming = False
            path = self.tree.folder_for(seq) + '/' + name
            try:
                size = await write_jpeg(path + '.part', jpeg, comment)
                # not by time: the rename walks the folder's entries for three
                # names, ~20 ms of a board even with its blocks in the mount's cache
                await asyncio.sleep_ms(0)
                renaming = True
                held = time.ticks_ms()
                os.rename(path + '.part', path)
                self.changes += 1
                self.recent_capped = keep_newest(self.recent, (seq, name, size), _RECENT) \
                    or self.recent_capped
                try:
                    await turn(held)    # the rename walked the folder: the news after a turn
                except asyncio.CancelledError:
                    self.on_recovered(path, kind)   # saved all the same: counted and told now
                    raise
            except OSError as exc:
                remove_quietly(path + '.part')
                if renaming and len(self.in_doubt) < _MAX_IN_DOUBT:
                    self.in_doubt.append((name, kind))
                raise self._failure(exc)
            finally:
                self.on_change(self)
        return path, size

    async def _no_recordings(self, floor):
        return self.free_bytes()

    def take_seq(self):
        """The next sequence number: recordings share the snapshots' one."""
        return self._take_seq()

    async def make_room(self, size):
        """_make_room() under the store's lock (for recordings)."""
        async with self.lock:
            return await self._make_room(size)

    async def _make_room(self, size):
        """Delete the oldest motion snapshots while free space is under the
        floor; manual ones are never deleted. Returns the free bytes."""
        free = self.free_bytes()
        if free is not None and free < max(self.min_free, size + _RESERVE):
            free = await self.reclaim(max(self.min_free, size + _RESERVE))
        deleted = []
        while free is not None and free < max(self.min_free, size + _RESERVE) \
                and len(deleted) < _MAX_DELETIONS:
            oldest = await self._oldest('motion-', _MAX_DELETIONS - len(deleted))
            if not oldest:
                break
            for path in oldest:
                await asyncio.sleep_ms(0)       # each remove reads the folder
                os.remove(path)
                name = path[path.rindex('/') + 1:]
                self._forget(name)
                deleted.append(name)
                free = self.free_bytes()
                if free >= max(self.min_free, size + _RESERVE):
                    break
        if deleted:
            print('sd: low space, deleted', len(deleted), 'motion snapshots')
            self.on_delete(deleted)
        return free

    async def _oldest(self, prefix, limit):
        """Paths of up to `limit` snapshots whose names start with prefix,
        oldest first, bounded memory; yields to the loop while it reads the
        folders (oldest first, removing emptied ones)."""
        best = []

        def visit(folder, entry):
            name = entry[0]
            if name.startswith(prefix) and name.endswith('.jpg'):
                path = folder + '/' + name
                if download.busy(path):
                    return              # one being downloaded stays
                item = (seq_of(name), path)
                if len(best) < limit:
                    insert_sorted(best, item)
                elif item < best[-1]:
                    best.pop()
                    insert_sorted(best, item)
        await self.tree.each(False, visit, lambda: len(best) >= limit, prune=True)
        return [path for _, path in best]

    def _failure(self, exc):
        if exc.args and exc.args[0] in (_EIO, _ENODEV):
            self._lost()
        return SaveError(_reason(exc))

    def _lost(self):
        # the card stopped answering: forget it until watch() finds it again
        self.mounted = False
        self.recent_valid = False
        unmount_card(self.mount_point)
        print('sd: card lost')
        self.on_change(self)

    async def watch(self, mount):
        """Mount a card inserted after boot; notice one that went away."""
        while True:
            await asyncio.sleep_ms(_WATCH_MS)
            if self.mounted:
                if self.free_bytes() is None:
                    self._lost()
            elif mount():
                self.mounted = True
                print('sd: card mounted')
                try:
                    self.open()
                except OSError:
                    self._lost()

    async def newest(self, limit):
        """Up to `limit` (name, bytes) pairs, newest first, in bounded memory.
        From the index when it holds them; else the folder is read, yielding
        to the loop, and the index rebuilt."""
        if not self.mounted:
            return []
        if not (self.recent_valid and limit <= _RECENT):
            best = await self._walk_newest(max(limit, _RECENT))
            if best is None:
                return []
        else:
            best = self.recent
        return [(name, size) for _, name, size in best[:-limit - 1:-1]]

    async def _walk_newest(self, limit):
        # (seq, name, size) of the newest `limit`, oldest first; None if the
        # card went away meanwhile. Installed as the index unless a save or
        # delete happened during the walk (it may or may not have seen it).
        changes = self.changes
        best = []

        def visit(folder, entry):
            name = entry[0]
            if name.endswith('.jpg'):
                item = (seq_of(name), name, entry[3] if len(entry) > 3 else 0)
                if self.tree.flat and item in best:
                    return      # seen flat, then moved into its folder while the walk yielded
                keep_newest(best, item, limit)
        try:
            await self.tree.each(True, visit, lambda: len(best) >= limit)
        except OSError:
            return None
        capped = len(best) >= limit     # a folder not read may hold older ones
        if changes == self.changes and self.mounted and limit == _RECENT:
            self._set_recent(best, capped)
        return best

    def path_of(self, name):
        """The board path of an existing snapshot, or None."""
        if not self.mounted or not valid_name(name):
            return None
        return self.tree.find(name)

    async def delete(self, name):
        """Delete a snapshot; True if it existed."""
        async with self.lock:       # a migration's move is not under way
            path = self.path_of(name)
            if path is None:
                return False
            await asyncio.sleep_ms(0)   # each of the two reads the folder
            try:
                os.remove(path)
            except OSError:
                return False            # another request deleted it meanwhile
        self._forget(name)
        self.on_change(self)
        return True

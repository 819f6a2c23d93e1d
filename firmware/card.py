"""The SD card itself: mount it, and forget it once it stops answering.

Nothing here knows the folders on the card: snapstore.py owns /snaps,
clips.py /clips, cardfiles.py the file operations they share.
"""
import os
from micropython import const

from firmware.cardcheck import reclaim, transfer_done

_card = None    # the one machine.SDCard: the SD host lives as long as the board
_mount = None   # the Mount of the card mounted now
_slots = []     # the sector cache's 512-byte views, made at the first block kept: shared
_SECTOR = const(512)
_CACHED = const(40)        # sectors kept: a folder of 100 is 26 (20 KB of heap)
_IOCTL_ERASE = const(6)    # MP_BLOCKDEV_IOCTL_BLOCK_ERASE


class Mount:
    """The card as one mount sees it. VfsFat keeps an unmounted filesystem
    alive, so a file left open on a lost card is closed later by the GC,
    flushing its stale buffers: once lost, this mount fails every transfer
    (EIO) and lets only such a close finish, writing nowhere, never onto a
    card inserted since. The driver's own answer (False: a failed transfer)
    is passed on.

    It keeps the last _CACHED single sectors read or written: FatFs reads a
    folder from its start for every name it looks up, and a save looks up
    four or five (the .part's, the new name's, a short name's) in the same
    folder, one card command a sector; a numbered folder of 100 is 26
    sectors. Writes go to the card at once (a power cut finds what it
    found before); a failed write forgets its sectors. The slots are one
    slab for the board's life, made when the first block is read (a board
    without a card never pays its 20 KB), used by one mount at a time
    (mount_card() loses the one before)."""

    def __init__(self, card):
        self.card = card
        self.slot_of = {}                   # sector -> its slot (lose() empties it:
                                            # a lost mount never reads the shared slots)
        self.sector_in = [-1] * _CACHED     # slot -> the sector it was filled with
        self.next = 0                       # the slot filled next: oldest first

    def lose(self):
        self.card = None
        self.slot_of = {}

    def readblocks(self, n, buf):
        card = self.card
        if card is None:
            return _lost_transfer()
        if len(buf) != _SECTOR:
            return card.readblocks(n, buf)
        slot = self.slot_of.get(n)
        if slot is not None:
            try:
                buf[:] = _slots[slot]
                return None
            except MemoryError:         # a slice with the heap locked (the GC's close)
                pass
        failed = card.readblocks(n, buf)
        if transfer_done(failed):
            self._keep(n, buf)
        return failed

    def writeblocks(self, n, buf):
        card = self.card
        if card is None:
            return _lost_transfer()
        slot_of = self.slot_of
        if slot_of:                     # no allocation here: the GC's close writes too
            end = n + len(buf) // _SECTOR
            if end - n > _CACHED:
                for sector in self.sector_in:
                    if n <= sector < end:
                        slot_of.pop(sector, None)
            else:
                sector = n
                while sector < end:
                    slot_of.pop(sector, None)
                    sector += 1
        failed = card.writeblocks(n, buf)
        if len(buf) == _SECTOR and transfer_done(failed):
            self._keep(n, buf)
        return failed

    def ioctl(self, op, arg):
        card = self.card
        if op == _IOCTL_ERASE:
            self.slot_of.pop(arg, None)
        return card.ioctl(op, arg) if card is not None else 0

    def _keep(self, n, buf):
        if not _slots:
            try:                    # once: a mount tried every few seconds makes no garbage
                slab = memoryview(bytearray(_CACHED * _SECTOR))
                _slots[:] = [slab[i * _SECTOR:(i + 1) * _SECTOR] for i in range(_CACHED)]
            except MemoryError:     # the heap is locked (the GC's close) or full: not kept
                return
        slot_of = self.slot_of
        slot = slot_of.get(n)
        if slot is None:
            slot = self.next
            self.next = (slot + 1) % _CACHED
            old = self.sector_in[slot]
            if slot_of.get(old) == slot:
                del slot_of[old]
            self.sector_in[slot] = n
        try:
            _slots[slot][:] = buf
        except MemoryError:             # a slice with the heap locked (the GC's close)
            slot_of.pop(n, None)
            return
        slot_of[n] = slot


def _lost_transfer():
    # -EIO (an int: every VfsFat reads ints, not all read bools); 0 for the
    # GC's close of a stale file, which runs with the heap locked
    try:
        bytearray(1)
    except MemoryError:
        return 0
    return -5


def mount_card(mount_point, width=1, quiet=False):
    """Mount the SD card; True when mounted. Never raises.

    The SDCard object is made once and kept: a second live one fails on the
    ESP32 (ESP_ERR_INVALID_STATE), and a dropped one, when collected,
    deinits the host under the mount. Remounts reuse it."""
    global _card, _mount
    try:
        import machine
        import vfs
        if _card is None:
            _card = machine.SDCard(slot=1, width=width)
        if _mount is not None:
            _mount.lose()           # a mount that failed before: one live mount shares the slots
        _mount = Mount(_card)
        given = reclaim(_mount)         # before anything can write to it
        if given:
            print('sd: gave back %d KB that power cuts had left to no file' % (given // 1024))
        vfs.mount(_mount, mount_point)
    except Exception as exc:
        if not quiet:
            print('sd: no card:', exc)
        return False
    try:
        # FatFs counts the free clusters on the first statvfs after a mount
        # (FAT16 always; FAT32 only when reclaim() could not set FSInfo's
        # count): seconds on a big card. Here, at mount time,
        # that happens before the app serves (or when a card is inserted),
        # not in a save; FatFs then keeps the count as files come and go.
        os.statvfs(mount_point)
    except OSError:
        pass            # a card that fails here is found lost by watch()
    return True


def unmount_card(mount_point):
    """Forget the mounted card (it stopped answering); never raises."""
    global _mount
    if _mount is not None:
        _mount.lose()
        _mount = None
    try:
        import vfs
        vfs.umount(mount_point)
    except Exception:
        pass

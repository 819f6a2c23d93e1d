"""The SD card itself: mount it, and forget it once it stops answering.

Nothing here knows the folders on the card: snapstore.py owns /snaps,
clips.py /clips, cardfiles.py the file operations they share.
"""
import os

from firmware.cardcheck import reclaim

_card = None    # the one machine.SDCard: the SD host lives as long as the board
_mount = None   # the _Mount of the card mounted now


class _Mount:
    """The card as one mount sees it. VfsFat keeps an unmounted filesystem
    alive, so a file left open on a lost card is closed later by the GC,
    flushing its stale buffers: once lost, this mount fails every transfer
    (EIO) and lets only such a close finish, writing nowhere, never onto a
    card inserted since. The driver's own answer (False: a failed transfer)
    is passed on."""

    def __init__(self, card):
        self.card = card

    def lose(self):
        self.card = None

    def readblocks(self, n, buf):
        card = self.card
        if card is not None:
            return card.readblocks(n, buf)
        return _lost_transfer()

    def writeblocks(self, n, buf):
        card = self.card
        if card is not None:
            return card.writeblocks(n, buf)
        return _lost_transfer()

    def ioctl(self, op, arg):
        card = self.card
        return card.ioctl(op, arg) if card is not None else 0


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
        _mount = _Mount(_card)
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

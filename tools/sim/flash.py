# Simulator only, never goes onto a board: the ESP32's internal flash as a
# LittleFS2 image file, mounted as the board's root the way the firmware's
# _boot.py mounts its "vfs" partition; the host's files stay reachable under
# HOST_MOUNT for the simulator's own stand-ins (frames, card image, faults).
import os
import vfs

BLOCK = 4096                        # the ESP32's flash sector: LittleFS block size
SIZE = 2 * 1024 * 1024              # the "vfs" partition of a 4 MB ESP32 layout
HOST_MOUNT = '/simhost'


class FlashBlockDev:
    """esp32.Partition's block protocol (extended: offset writes, erase)
    on an image file."""

    def __init__(self, path):
        self.file = open(path, 'r+b')
        self.file.seek(0, 2)
        self.blocks = self.file.tell() // BLOCK

    def readblocks(self, block, buf, offset=0):
        self.file.seek(block * BLOCK + offset)
        self.file.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:          # the simple protocol erases first, as Partition does
            for i in range(len(buf) // BLOCK):
                self.ioctl(6, block + i)
            offset = 0
        self.file.seek(block * BLOCK + offset)
        self.file.write(buf)

    def ioctl(self, op, arg):
        if op == 4:                 # block count
            return self.blocks
        if op == 5:                 # block size
            return BLOCK
        if op == 6:                 # erase a block: flash erases to ones
            self.file.seek(arg * BLOCK)
            self.file.write(b'\xff' * BLOCK)
            return 0
        if op == 3:                 # sync
            self.file.flush()
        return 0


def create(path, size=SIZE):
    """An erased flash image, formatted as LittleFS2 (a new board's flash)."""
    with open(path, 'wb') as f:
        erased = b'\xff' * BLOCK
        for _ in range(size // BLOCK):
            f.write(erased)
    dev = FlashBlockDev(path)
    vfs.VfsLfs2.mkfs(dev)
    dev.file.close()        # flushed: the device that mounts it next reads the file


def open_fs(path):
    """The image's file system, formatting it first when it is new or holds
    none (as the firmware does with a blank partition)."""
    try:
        os.stat(path)
    except OSError:
        create(path)
    dev = FlashBlockDev(path)
    try:
        return vfs.VfsLfs2(dev)
    except OSError:
        print('flash: no file system, formatting')
        vfs.VfsLfs2.mkfs(dev)
        return vfs.VfsLfs2(dev)


def mount_as_root(path):
    """Make the image the root file system, the host's one HOST_MOUNT."""
    fs = open_fs(path)
    vfs.umount('/')
    vfs.mount(vfs.VfsPosix(), HOST_MOUNT)
    vfs.mount(fs, '/')
    os.chdir('/')

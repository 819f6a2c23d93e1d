"""File operations on the card shared by the snapshot and clip folders:
a file's size, a quiet remove, and copies that yield to the event loop."""
import asyncio
import os
from micropython import const

CHUNK = const(4096)         # one card write: eight whole sectors


def file_size(path):
    """A file's size, or None if it is not there."""
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def remove_quietly(path):
    """Remove path if it is there; never raises."""
    try:
        os.remove(path)
    except OSError:
        pass


def copy_steps(src, dst):
    # a generator: one chunk copied per step, so a caller can yield between
    buf = bytearray(CHUNK)
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        while True:
            n = fin.readinto(buf)
            if not n:
                break
            fout.write(buf[:n] if n < CHUNK else buf)
            yield


def copy_now(src, dst):
    """Copy a small file (a snapshot) at once."""
    for _ in copy_steps(src, dst):
        pass


async def copy_file(src, dst):
    """Copy a file of any size, the event loop running between chunks."""
    for _ in copy_steps(src, dst):
        await asyncio.sleep_ms(0)

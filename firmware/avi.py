"""AVI files of Motion-JPEG frames (RIFF, one video stream, an idx1 index).

The layout is fixed so a file can be repaired from its frames alone: a
512-byte header (hdrl, then JUNK up to the movi list), frames as `00dc`
chunks from byte 512, then idx1. While a clip is written it lives as
NAME.part; every second the header (frame count, rate) is rewritten and
the file flushed, so a power cut or a pulled card loses at most the last
second, and repair() at boot rebuilds index and header from the frames
that are whole and renames it. README.md, "Recordings", describes them.
"""
import asyncio
import os
import struct
from array import array
from micropython import const
from firmware.cardfiles import copy_file, file_size

HEADER = const(512)         # frames start here: a sector boundary
_MOVI = const(508)          # where 'movi' is; idx1 offsets count from it
_CHUNK = const(4096)
_SYNC_MS = const(1000)      # header + flush this often while writing
_AVIF_HASINDEX = const(0x10)
_KEYFRAME = const(0x10)
_INDEX_BATCH = const(256)   # idx1 entries per write (4 KB)


def jpeg_size(jpeg):
    """(width, height) from a JPEG's SOF marker, or (0, 0)."""
    i = 2
    n = len(jpeg)
    while i + 9 < n:
        if jpeg[i] != 0xFF:
            return 0, 0
        marker = jpeg[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            return (jpeg[i + 7] << 8 | jpeg[i + 8]), (jpeg[i + 5] << 8 | jpeg[i + 6])
        i += 2 + (jpeg[i + 2] << 8 | jpeg[i + 3])
    return 0, 0


def header(frames, us_per_frame, width, height, movi_bytes, riff_bytes, biggest):
    """The 512 bytes before the first frame."""
    rate = 1000000 // max(1, us_per_frame)
    avih = struct.pack('<14I', us_per_frame, min(0xFFFFFFFF, biggest * rate), 0, _AVIF_HASINDEX, frames, 0,
                       1, biggest, width, height, 0, 0, 0, 0)
    # dwScale/dwRate = us_per_frame/1e6: the measured rate, not a rounded one
    strh = b'vidsMJPG' + struct.pack('<IHHIIIIIIIIhhhh', 0, 0, 0, 0, us_per_frame, 1000000,
                                     0, frames, biggest, 0xFFFFFFFF, 0, 0, 0, width, height)
    strf = struct.pack('<IiiHH4sIiiII', 40, width, height, 1, 24, b'MJPG',
                       width * height * 3, 0, 0, 0, 0)
    strl = b'strl' + b'strh' + struct.pack('<I', 56) + strh + b'strf' + struct.pack('<I', 40) + strf
    hdrl = (b'hdrl' + b'avih' + struct.pack('<I', 56) + avih
            + b'LIST' + struct.pack('<I', len(strl)) + strl)
    head = b'RIFF' + struct.pack('<I', riff_bytes) + b'AVI ' + b'LIST' + \
        struct.pack('<I', len(hdrl)) + hdrl
    junk = _MOVI - 8 - len(head) - 8
    return (head + b'JUNK' + struct.pack('<I', junk) + bytes(junk)
            + b'LIST' + struct.pack('<I', movi_bytes) + b'movi')


def read_header(data):
    """(frames, us_per_frame, width, height) of one of our headers, or None."""
    if len(data) < HEADER or data[:4] != b'RIFF' or data[8:12] != b'AVI ' \
            or data[_MOVI:HEADER] != b'movi' or data[24:28] != b'avih':
        return None
    us, _, _, _, frames = struct.unpack_from('<5I', data, 32)
    width, height = struct.unpack_from('<2I', data, 64)
    return frames, us, width, height


_first = bytearray(_CHUNK)     # shared: a write is done before the next add() builds one


class AviWriter:
    """One clip being written as PATH.part; close() renames it to PATH.

    add() writes a frame in chunks that yield to the event loop. Frames are
    counted in a bounded array of sizes (4 bytes each): full() says when
    `max_frames` are in, and the caller starts another clip."""

    def __init__(self, path, us_per_frame, max_frames):
        self.path = path
        self.us_per_frame = us_per_frame
        self.max_frames = max_frames
        self.sizes = array('I')
        self.width = self.height = 0
        self.biggest = 0
        self.end = HEADER       # where the next chunk goes
        self.file = None
        self.first_ms = None
        self.last_ms = None
        self.synced_ms = None
        self.fixed_rate = False

    async def open(self):
        self.file = open(self.path + '.part', 'wb')
        self.file.write(self._header())
        await asyncio.sleep_ms(0)   # each card operation is a turn of its own
        self.file.flush()       # the name and the header are on the card from now

    def full(self):
        return len(self.sizes) >= self.max_frames

    def duration_ms(self):
        return 0 if self.first_ms is None else self.last_ms - self.first_ms

    def _header(self):
        movi = self.end - _MOVI
        return header(len(self.sizes), self.us_per_frame, self.width, self.height, movi,
                      self.end + 16 * len(self.sizes), self.biggest)

    async def add(self, jpeg, stamp_ms):
        """Append one JPEG taken at stamp_ms (ticks.now_ms)."""
        f = self.file
        size = len(jpeg)
        if not self.sizes:
            self.width, self.height = jpeg_size(jpeg)
            self.first_ms = stamp_ms
        view = memoryview(jpeg)
        # the chunk head and the start of the frame in one write
        start = min(size, _CHUNK - 8)
        _first[:4] = b'00dc'
        struct.pack_into('<I', _first, 4, size)
        _first[8:8 + start] = view[:start]
        f.write(memoryview(_first)[:8 + start])
        while start < size:
            await asyncio.sleep_ms(0)
            f.write(view[start:start + _CHUNK])
            start += _CHUNK
        if size & 1:
            f.write(b'\0')      # RIFF chunks are word aligned
        self.end += 8 + size + (size & 1)
        self.sizes.append(size)
        self.biggest = max(self.biggest, size)
        self.last_ms = stamp_ms
        if not self.fixed_rate and len(self.sizes) > 1:
            self.us_per_frame = max(1, (self.last_ms - self.first_ms) * 1000
                                    // (len(self.sizes) - 1))
        if self.synced_ms is None or stamp_ms - self.synced_ms >= _SYNC_MS:
            self.synced_ms = stamp_ms
            await self.sync()

    async def sync(self):
        """Header with the count so far, then flush: what repair() finds."""
        f = self.file
        await asyncio.sleep_ms(0)
        f.seek(0)
        f.write(self._header())
        await asyncio.sleep_ms(0)
        f.seek(self.end)
        f.flush()

    async def close(self):
        """Write the index and header, close, rename to the final name;
        returns (path, bytes)."""
        f = self.file
        await _write_index(f, self.sizes)
        f.seek(0)
        f.write(self._header())
        await asyncio.sleep_ms(0)
        f.close()
        self.file = None
        await asyncio.sleep_ms(0)
        os.rename(self.path + '.part', self.path)
        return self.path, self.end + 8 + 16 * len(self.sizes)

    def abandon(self):
        """Close without finishing (the card went away): repair() later."""
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


async def _write_index(f, sizes):
    # idx1 in batches of whole entries, yielding between them
    f.write(b'idx1' + struct.pack('<I', 16 * len(sizes)))
    offset = 4
    batch = bytearray(16 * _INDEX_BATCH)
    i = 0
    while i < len(sizes):
        n = min(_INDEX_BATCH, len(sizes) - i)
        for k in range(n):
            size = sizes[i + k]
            struct.pack_into('<4sIII', batch, 16 * k, b'00dc', _KEYFRAME, offset, size)
            offset += 8 + size + (size & 1)
        f.write(memoryview(batch)[:16 * n])
        i += n
        await asyncio.sleep_ms(0)


async def repair(part):
    """Finish PATH.part cut short: keep the frames that are whole, write
    their index and header, rename to PATH. Returns the final path, or None
    when nothing whole was in it (then it is removed).

    The whole frames are copied into PATH.fix and the torn file removed:
    a cut between two flushes leaves the file's cluster chain longer than
    its recorded size, which only removing the file gives back (FAT has
    no truncate through the VFS). Without room for the copy, the clip is
    finished in place (it plays; fsck would report the stale tail)."""
    final = part[:-5]
    size = file_size(part)
    if size is None:
        return None
    if file_size(final) is not None:
        # a cut inside the rename: both names share one cluster chain
        if file_size(final) == size:
            await copy_file(final, final + '.fix')
            os.remove(part)
            os.remove(final)
            os.rename(final + '.fix', final)
            return final
        os.remove(final)        # never ours: a final name only comes from a rename
    with open(part, 'rb') as f:
        found, sizes, biggest = await _whole_frames(f, size)
    if found is None or not sizes:
        os.remove(part)
        return None
    pos = HEADER + sum(8 + n + (n & 1) for n in sizes)
    if _free(final) > pos + 16 * len(sizes) + 65536:
        await _copy_frames(part, final + '.fix', pos, found, sizes, biggest)
        os.remove(part)         # frees its whole chain, the stale tail too
        os.rename(final + '.fix', final)
        return final
    with open(part, 'r+b') as f:
        f.seek(pos)
        await _write_index(f, sizes)
        end = pos + 8 + 16 * len(sizes)
        # what is left of the torn tail becomes a JUNK chunk
        rest = size - end
        if rest > 0:
            junk = max(8, rest + (rest & 1))
            f.write(b'JUNK' + struct.pack('<I', junk - 8))
            if junk > rest:
                f.seek(max(size, end + 8))      # lengthen the file to the chunk's end
                f.write(bytes(end + junk - max(size, end + 8)))
            end += junk
        f.seek(0)
        f.write(header(len(sizes), found[1], found[2], found[3], pos - _MOVI, end - 8,
                       biggest))
    await asyncio.sleep_ms(0)
    os.rename(part, final)
    return final


async def _whole_frames(f, size):
    # (header fields, sizes of the whole frames from the start, biggest)
    found = read_header(f.read(HEADER))
    sizes = array('I')
    biggest = 0
    if found is None:
        return found, sizes, biggest
    pos = HEADER
    mark = bytearray(2)
    while pos + 8 <= size:
        f.seek(pos)
        head = f.read(8)
        n = struct.unpack_from('<I', head, 4)[0]
        if head[:4] != b'00dc' or n < 4 or pos + 8 + n > size:
            break
        f.readinto(mark)
        if mark != b'\xff\xd8':
            break
        f.seek(pos + 6 + n)
        f.readinto(mark)
        if mark != b'\xff\xd9':
            break
        sizes.append(n)
        biggest = max(biggest, n)
        pos += 8 + n + (n & 1)
        if len(sizes) % 16 == 0:
            await asyncio.sleep_ms(0)
    return found, sizes, biggest


async def _copy_frames(src, dst, pos, found, sizes, biggest):
    buf = bytearray(_CHUNK)
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        fout.write(header(len(sizes), found[1], found[2], found[3], pos - _MOVI,
                          pos + 16 * len(sizes), biggest))
        fin.seek(HEADER)
        left = pos - HEADER
        while left > 0:
            n = fin.readinto(memoryview(buf)[:min(_CHUNK, left)])
            if not n:
                raise OSError(5)
            fout.write(memoryview(buf)[:n])
            left -= n
            await asyncio.sleep_ms(0)
        await _write_index(fout, sizes)


def _free(path):
    try:
        st = os.statvfs(path[:path.rindex('/')])
        return st[0] * st[4]
    except OSError:
        return 0

"""Give back the card's lost clusters: space that a power cut left marked
used with no file or folder owning it.

FatFs changes the FAT and the folder entry in two writes (a new file's
clusters before its entry, a deleted file's entry before its clusters), so a
cut in between loses those clusters for good; nothing in FatFs looks for
them. This runs at each mount, before vfs.mount(), when nothing else can
write: one pass over the FAT, one over the folders, all per-entry work in
viper. FAT16 and FAT32 (every SD card; not FAT12, only on cards under
16 MB), on a bare volume or the first FAT partition.
"""
import struct

import micropython
from micropython import const

_SECTOR = const(512)
_CHUNK = const(32)          # sectors per read (16 KB)
_MAX_FOLDERS = const(4096)  # folders waiting to be read: a card of ours has ~200


@micropython.viper
def _fat_pass(buf, first: int, n: int, fat32: int, ends: int, used, ref) -> int:
    # n FAT entries from cluster `first`: used[c] for each allocated cluster,
    # ref[v] for each cluster an entry points to (and for bad clusters, which
    # nobody may take); returns how many are free
    b16 = ptr16(buf)
    b32 = ptr32(buf)
    u = ptr8(used)
    r = ptr8(ref)
    bad = 0xFFF7
    if fat32:
        bad = 0x0FFFFFF7
    free = 0
    for i in range(n):
        c = first + i
        if c < 2 or c >= ends:
            continue
        if fat32:
            v = b32[i] & 0x0FFFFFFF
        else:
            v = b16[i]
        if v == 0:
            free += 1
            continue
        u[c >> 3] = u[c >> 3] | (1 << (c & 7))
        if v == bad:
            r[c >> 3] = r[c >> 3] | (1 << (c & 7))
        elif v >= 2 and v < ends:
            r[v >> 3] = r[v >> 3] | (1 << (v & 7))
    return free


@micropython.viper
def _folder_pass(buf, n: int, fat32: int, ends: int, ref, found) -> int:
    # n folder entries: ref[c] for each one's first cluster; the folders met
    # for the first time go to found; returns how many, or -1 - how many when
    # the folder's end mark came
    b = ptr8(buf)
    h = ptr16(buf)
    r = ptr8(ref)
    out = ptr32(found)
    k = 0
    for i in range(n):
        e = i * 32
        mark = b[e]
        if mark == 0:
            return -1 - k
        attr = b[e + 11]
        if mark == 0xE5 or (attr & 0x3F) == 0x0F or (attr & 0x08):
            continue            # deleted, a long-name piece, the volume label
        if mark == 0x2E and (attr & 0x10):
            continue            # "." and "..": this folder and its parent
        c = h[(e + 26) >> 1]
        if fat32:
            c = c | (h[(e + 20) >> 1] << 16)
        if c < 2 or c >= ends:
            continue
        bit = 1 << (c & 7)
        if (attr & 0x10) and not (r[c >> 3] & bit):
            out[k] = c
            k += 1
        r[c >> 3] = r[c >> 3] | bit
    return k


@micropython.viper
def _unowned(used, ref, n: int):
    # used becomes the heads of lost chains: allocated, pointed to by nothing
    u = ptr8(used)
    r = ptr8(ref)
    for i in range(n):
        u[i] = u[i] & (0xFF ^ r[i])


@micropython.viper
def _next_set(bits, start: int, ends: int) -> int:
    b = ptr8(bits)
    c = start
    while c < ends:
        if b[c >> 3] == 0:
            c = (c | 7) + 1
        elif b[c >> 3] & (1 << (c & 7)):
            return c
        else:
            c += 1
    return -1


def transfer_done(answer):
    """True for a block device's answer to a transfer that worked: None or
    0 (VfsFat's block devices, which answer a failure with a negative
    errno), True (the ESP32's SDCard, which answers one with False)."""
    return answer is None or answer is True or answer is not False and answer == 0


def _read(dev, at, buf):
    if not transfer_done(dev.readblocks(at, buf)):
        raise OSError(5)


def _write(dev, at, buf):
    if not transfer_done(dev.writeblocks(at, buf)):
        raise OSError(5)


class _Volume:
    """A FAT volume's layout, and its FAT through a one-sector cache."""

    def __init__(self, dev, base, boot):
        self.dev = dev
        # the BPB: sectors per cluster, reserved, FATs, root entries, total
        # (16 bit), FAT size (16 bit); FAT32's total and FAT size at 32, 36
        spc, reserved, self.copies, root_entries, total, _, fat16 = \
            struct.unpack_from('<BHBHHBH', boot, 13)
        total32, fat32_size, _, _, root_cluster, fsinfo = struct.unpack_from('<IIHHIH', boot, 32)
        self.fat_size = fat16 or fat32_size
        total = total or total32
        self.fat_start = base + reserved
        self.root_start = self.fat_start + self.copies * self.fat_size
        self.root_sectors = (root_entries * 32 + _SECTOR - 1) // _SECTOR
        self.data_start = self.root_start + self.root_sectors
        clusters = (total - (self.data_start - base)) // spc
        self.spc = spc
        self.ends = clusters + 2            # cluster numbers run 2 .. ends - 1
        self.fat12 = clusters <= 4085       # a card under ~16 MB: not looked at
        self.fat32 = 1 if clusters > 65525 else 0
        self.width = 4 if self.fat32 else 2
        self.root_cluster = root_cluster if self.fat32 else 0
        self.fsinfo = base + fsinfo if self.fat32 else None
        self.sector = bytearray(_SECTOR)
        self.cached = None
        self.dirty = False

    def _load(self, at):
        if at != self.cached:
            self.flush()
            _read(self.dev, at, self.sector)
            self.cached = at

    def flush(self):
        if self.dirty:
            for copy in range(self.copies):
                _write(self.dev, self.cached + copy * self.fat_size, self.sector)
            self.dirty = False

    def get(self, c):
        at = c * self.width
        self._load(self.fat_start + at // _SECTOR)
        at %= _SECTOR
        if self.fat32:
            return struct.unpack_from('<I', self.sector, at)[0] & 0x0FFFFFFF
        return struct.unpack_from('<H', self.sector, at)[0]

    def free(self, c):
        at = c * self.width
        self._load(self.fat_start + at // _SECTOR)
        at %= _SECTOR
        if self.fat32:             # the top four bits are reserved: kept
            kept = struct.unpack_from('<I', self.sector, at)[0] & 0xF0000000
            struct.pack_into('<I', self.sector, at, kept)
        else:
            struct.pack_into('<H', self.sector, at, 0)
        self.dirty = True

    def chain(self, c):
        """The sectors of the chain from cluster c, in order."""
        for _ in range(self.ends):
            if c < 2 or c >= self.ends:
                return
            first = self.data_start + (c - 2) * self.spc
            for s in range(self.spc):
                yield first + s
            c = self.get(c)


def _volume(dev):
    """The FAT16/32 volume on the card (sector 0, or the first partition
    that holds one, as FatFs looks for it), or None."""
    boot = bytearray(_SECTOR)
    _read(dev, 0, boot)
    if _is_fat(boot):
        return _Volume(dev, 0, boot)
    for base in struct.unpack_from('<I12xI12xI12xI', boot, 446 + 8):
        if base:
            _read(dev, base, boot)
            if _is_fat(boot):
                return _Volume(dev, base, boot)
    return None


def _is_fat(boot):
    return (boot[510] == 0x55 and boot[511] == 0xAA and boot[0] in (0xEB, 0xE9)
            and struct.unpack_from('<H', boot, 11)[0] == _SECTOR and boot[13] and boot[16])


def _scan_fat(vol, used, ref):
    # returns the free clusters
    buf = bytearray(_CHUNK * _SECTOR)
    per_sector = _SECTOR // vol.width
    sectors = (vol.ends * vol.width + _SECTOR - 1) // _SECTOR
    free = 0
    for s in range(0, sectors, _CHUNK):
        n = min(_CHUNK, sectors - s)
        view = memoryview(buf)[:n * _SECTOR]
        _read(vol.dev, vol.fat_start + s, view)
        free += _fat_pass(view, s * per_sector, n * per_sector, vol.fat32, vol.ends, used, ref)
    return free


def _scan_folders(vol, ref):
    # marks the first cluster of every file and folder; False when the
    # folders cannot all be followed (then nothing may be given back)
    buf = bytearray(_SECTOR)
    found = bytearray(4 * (_SECTOR // 32))
    if vol.fat32:
        c = vol.root_cluster
        ref[c >> 3] |= 1 << (c & 7)
        waiting = [vol.chain(c)]
    else:
        waiting = [range(vol.root_start, vol.root_start + vol.root_sectors)]
    while waiting:
        for sector in waiting.pop():
            _read(vol.dev, sector, buf)
            k = _folder_pass(buf, _SECTOR // 32, vol.fat32, vol.ends, ref, found)
            for i in range(k if k >= 0 else -1 - k):
                if len(waiting) >= _MAX_FOLDERS:
                    return False
                waiting.append(vol.chain(struct.unpack_from('<I', found, 4 * i)[0]))
            if k < 0:
                break
    return True


def _give_back(vol, lost):
    # frees each lost chain from its head; returns the clusters freed
    freed = 0
    head = _next_set(lost, 2, vol.ends)
    while head >= 0:
        c = head
        for _ in range(vol.ends):
            nxt = vol.get(c)
            if nxt == 0:
                break               # already free: chains never merge, but stop
            vol.free(c)
            freed += 1
            if nxt < 2 or nxt >= vol.ends:
                break               # the chain's end (or a bad mark)
            c = nxt
        head = _next_set(lost, head + 1, vol.ends)
    vol.flush()
    return freed


def _set_free_count(vol, free):
    # FAT32 keeps a free count in FSInfo: make it the true one, so FatFs
    # trusts it instead of counting the whole FAT on the first statvfs
    info = bytearray(_SECTOR)
    _read(vol.dev, vol.fsinfo, info)
    lead, mark, count = struct.unpack_from('<I480xII', info, 0)
    if lead == 0x41615252 and mark == 0x61417272 and count != free:
        struct.pack_into('<I', info, 488, free)
        _write(vol.dev, vol.fsinfo, info)


def reclaim(dev):
    """Free the clusters on the card (a block device, not yet mounted) that
    no file or folder owns. Returns how many bytes were given back, or None
    when the card was not looked at (not FAT16/32, or too little memory for
    its cluster maps: 2 bits per cluster). Never raises."""
    try:
        vol = _volume(dev)
        if vol is None or vol.fat12:
            return None
        size = (vol.ends + 7) // 8
        used = bytearray(size)
        ref = bytearray(size)
        free = _scan_fat(vol, used, ref)
        if not _scan_folders(vol, ref):
            return None
        _unowned(used, ref, size)
        del ref
        freed = _give_back(vol, used)
        if vol.fat32:
            _set_free_count(vol, free + freed)
        return freed * vol.spc * _SECTOR
    except Exception:
        # a failed transfer, too little memory, or a boot sector that only
        # looks like FAT (sizes that do not add up): vfs.mount() decides
        return None

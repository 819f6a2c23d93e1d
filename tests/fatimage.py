"""A FAT16 card image holding many files in one folder, written directly
(mcopy or FatFs take minutes for 10,000 names: each new name is looked up
in the folder from its start). The folder is laid out as FatFs writes one:
a long name's entries, then its 8.3 entry; one cluster chain per file."""
import struct
import subprocess


def _lfn_checksum(short):
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _entries(name, short, cluster, size, attr=0x20):
    """The directory entries of one file: LFN pieces (last first), then 8.3."""
    out = []
    check = _lfn_checksum(short)
    chars = [ord(c) for c in name] + [0]
    chars += [0xFFFF] * (-len(chars) % 13)
    pieces = [chars[i:i + 13] for i in range(0, len(chars), 13)]
    for order in range(len(pieces), 0, -1):
        p = pieces[order - 1]
        seq = order | (0x40 if order == len(pieces) else 0)
        out.append(struct.pack('<B10sBBB12sH4s', seq, struct.pack('<5H', *p[:5]), 0x0F, 0, check,
                               struct.pack('<6H', *p[5:11]), 0, struct.pack('<2H', *p[11:13])))
    out.append(struct.pack('<11sBBBHHHHHHHI', short, attr, 0, 0, 0, 0x5C21, 0,
                           cluster >> 16, 0, 0x5C21, cluster & 0xFFFF, size))
    return out


def make_flat_card(image, size_mb, folder, files):
    """mkfs.vfat (FAT16) a card of size_mb and write `files` ([(name, bytes)],
    in that order) into the top-level `folder`."""
    subprocess.run(['mkfs.vfat', '-F', '16', '-C', image, str(size_mb * 1024)], check=True,
                   capture_output=True)
    with open(image, 'r+b') as f:
        boot = f.read(512)
        sector, per_cluster, reserved, fats, root_entries, _, _, fat_sectors = \
            struct.unpack('<HBHBHHBH', boot[11:24])
        assert sector == 512
        cluster_bytes = sector * per_cluster
        fat_start = reserved * sector
        root_start = fat_start + fats * fat_sectors * sector
        data_start = root_start + root_entries * 32
        f.seek(fat_start)
        fat = bytearray(f.read(fat_sectors * sector))
        next_cluster = [2]

        def chain(nbytes):
            count = max(1, -(-nbytes // cluster_bytes))
            first = next_cluster[0]
            for c in range(first, first + count):
                struct.pack_into('<H', fat, c * 2, c + 1 if c < first + count - 1 else 0xFFFF)
            next_cluster[0] += count
            return first

        def write(cluster, data):
            f.seek(data_start + (cluster - 2) * cluster_bytes)
            f.write(data)

        entries = []
        for i, (name, data) in enumerate(files):
            short = ('F%07d' % i).encode() + name.rsplit('.', 1)[1].upper().encode()[:3].ljust(3)
            cluster = chain(len(data))
            write(cluster, data)
            entries += _entries(name, short, cluster, len(data))
        dir_bytes = (len(entries) + 2) * 32
        dir_cluster = chain(dir_bytes)
        dot = struct.pack('<11sBBBHHHHHHHI', b'.          ', 0x10, 0, 0, 0, 0x5C21, 0, 0, 0,
                          0x5C21, dir_cluster, 0)
        dotdot = struct.pack('<11sBBBHHHHHHHI', b'..         ', 0x10, 0, 0, 0, 0x5C21, 0, 0, 0,
                             0x5C21, 0, 0)
        body = dot + dotdot + b''.join(entries)
        body += bytes(-len(body) % cluster_bytes)
        write(dir_cluster, body)
        top = bytearray(_entries(folder, folder.upper().encode().ljust(11)[:11], dir_cluster, 0,
                                 0x10)[-1])
        top[12] = 0x08          # shown in lower case, as written
        f.seek(root_start)
        f.write(top)
        for copy in range(fats):
            f.seek(fat_start + copy * fat_sectors * sector)
            f.write(fat)
    assert next_cluster[0] < fat_sectors * sector // 2

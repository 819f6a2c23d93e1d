"""Clusters a power cut left marked used with no file owning them come back
at the next mount (firmware/cardcheck.py). Cards made by mkfs.vfat and
mtools as a PC makes them, with the two kinds of loss FatFs leaves planted
by hand; the board boots on them, and fsck and mtools read the result."""
import os
import re
import struct
import subprocess

import pytest

from test_power_cut import fsck_problems, used_and_free_clusters
from tools.sim.harness import MTOOLS_ENV

PARTITION_AT = 2048         # sectors: where a card from the shop has its volume


def _volume(image, partitioned):
    # the mtools/fsck name of the volume in the image
    return image + '@@%d' % (PARTITION_AT * 512) if partitioned else image


def _make_card(image, fat, partitioned):
    size_mb = 48 if fat == 16 else 80
    sectors = size_mb * 2048
    with open(image, 'wb') as f:
        f.truncate((sectors + (PARTITION_AT if partitioned else 0)) * 512)
    cmd = ['mkfs.vfat', '-F', str(fat), '-s', '1' if fat == 32 else '4']
    if partitioned:
        mbr = bytearray(512)
        mbr[446 + 4] = 0x0C if fat == 32 else 0x06
        struct.pack_into('<II', mbr, 446 + 8, PARTITION_AT, sectors)
        mbr[510:512] = b'\x55\xaa'
        with open(image, 'r+b') as f:
            f.write(mbr)
        cmd += ['--offset', str(PARTITION_AT)]
    subprocess.run(cmd + [image, str(sectors // 2)], check=True, capture_output=True)
    vol = _volume(image, partitioned)
    files = {'/keep/a.jpg': os.urandom(30000), '/keep/b.jpg': os.urandom(70000),
             '/victim.bin': os.urandom(50000)}
    subprocess.run(['mmd', '-i', vol, '::/keep'], check=True, env=MTOOLS_ENV)
    for path, data in files.items():
        subprocess.run(['mcopy', '-i', vol, '-', '::' + path], input=data, check=True,
                       env=MTOOLS_ENV)
    return files


def _plant_losses(image, partitioned, fat):
    """A delete cut after its entry went (the whole chain left behind) and a
    save cut after its FAT write (one cluster marked end-of-chain)."""
    base = PARTITION_AT * 512 if partitioned else 0
    with open(image, 'r+b') as f:
        f.seek(base)
        boot = f.read(512)
        reserved, fats = struct.unpack_from('<HB', boot, 14)
        fat_sectors = struct.unpack_from('<H', boot, 22)[0] or struct.unpack_from('<I', boot, 36)[0]
        data = bytearray(f.read(4 * 1024 * 1024))
        entry = data.find(b'VICTIM  BIN')
        assert entry > 0
        f.seek(base + 512 + entry)
        f.write(b'\xe5')
        width = fat // 8
        lone = 5000
        for copy in range(fats):
            at = base + (reserved + copy * fat_sectors) * 512 + lone * width
            f.seek(at)
            assert f.read(width) == bytes(width)    # a free cluster
            f.seek(at)
            f.write(b'\xff\xff' if fat == 16 else b'\xff\xff\xff\x0f')


def _bare_volume(vol):
    """A file holding just the volume (fsck.vfat reads a volume, not a disk)."""
    if '@@' not in vol:
        return vol
    image, offset = vol.split('@@')
    with open(image, 'rb') as src, open(image + '.vol', 'wb') as dst:
        src.seek(int(offset))
        dst.write(src.read())
    return image + '.vol'


@pytest.mark.parametrize('fat,partitioned', [(16, False), (32, True)],
                         ids=['fat16-bare', 'fat32-partitioned'])
def test_the_space_power_cuts_left_to_no_file_comes_back_at_boot(make_board, tmp_path, fat,
                                                                 partitioned):
    image = str(tmp_path / 'card.img')
    files = _make_card(image, fat, partitioned)
    vol = _volume(image, partitioned)
    _plant_losses(image, partitioned, fat)
    _, lost = fsck_problems(_bare_volume(vol))
    owned, free, cluster, total = used_and_free_clusters(_bare_volume(vol))
    assert lost * cluster > 50000, 'the planted loss is not there'
    assert free < total - owned             # lost: neither in a file nor free
    board = make_board(sdcard=image)
    board.start()
    board.wait_frame()
    with board.ws() as ws:
        saved = board.command(ws, cmd='snapshot_now')['saved'][len('/sdcard'):]
    board.stop()
    console = board.output()
    given = re.search(r'sd: gave back (\d+) KB that power cuts had left to no file', console)
    assert given and int(given.group(1)) == lost * cluster // 1024, console
    problems, orphans = fsck_problems(_bare_volume(vol))
    assert not problems and not orphans, problems
    owned, free, _, _ = used_and_free_clusters(_bare_volume(vol))
    assert owned + free == total            # every cluster no file owns is free
    for path, data in files.items():
        if path != '/victim.bin':
            got = subprocess.run(['mcopy', '-i', vol, '-n', '::' + path, '-'],
                                 capture_output=True, check=True, env=MTOOLS_ENV).stdout
            assert got == data, path
    assert subprocess.run(['mdir', '-i', vol, '::' + saved], capture_output=True,
                          env=MTOOLS_ENV).returncode == 0
    # a second boot finds nothing to give back
    board.start()
    board.wait_frame()
    board.stop()
    assert len(re.findall('gave back', board.output())) == 1

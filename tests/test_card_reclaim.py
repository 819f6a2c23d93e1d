"""Clusters a power cut left marked used with no file owning them come back
at the next mount (firmware/cardcheck.py). Cards made by mkfs.vfat and
mtools as a PC makes them, with the two kinds of loss FatFs leaves planted
by hand; the board boots on them, and fsck and mtools read the result."""
import os
import re
import struct
import subprocess

import pytest

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


def _fsck(vol):
    if '@@' in vol:         # fsck.vfat reads the volume, not the disk
        image, offset = vol.split('@@')
        part = image + '.vol'
        with open(image, 'rb') as src, open(part, 'wb') as dst:
            src.seek(int(offset))
            dst.write(src.read())
        vol = part
    out = subprocess.run(['fsck.vfat', '-n', vol], capture_output=True, text=True)
    return out.stdout + out.stderr


def _owned_and_free(vol):
    """(clusters fsck finds owned by files and folders, clusters in all,
    clusters free as mtools reads the card: FSInfo's count on FAT32)."""
    owned, total = map(int, re.search(r'(\d+)/(\d+) clusters', _fsck(vol)).groups())
    info = subprocess.run(['minfo', '-i', vol, '::'], capture_output=True, text=True,
                          env=MTOOLS_ENV, check=True).stdout
    cluster = 512 * int(re.search(r'cluster size: (\d+) sectors', info).group(1))
    listing = subprocess.run(['mdir', '-i', vol, '::/'], capture_output=True, text=True,
                             env=MTOOLS_ENV, check=True).stdout
    free = int(re.search(r'([\d ]+) bytes free', listing).group(1).replace(' ', ''))
    return owned, total, free // cluster


@pytest.mark.parametrize('fat,partitioned', [(16, False), (32, True)],
                         ids=['fat16-bare', 'fat32-partitioned'])
def test_the_space_power_cuts_left_to_no_file_comes_back_at_boot(make_board, tmp_path, fat,
                                                                 partitioned):
    image = str(tmp_path / 'card.img')
    files = _make_card(image, fat, partitioned)
    vol = _volume(image, partitioned)
    _plant_losses(image, partitioned, fat)
    lost = re.search(r'Reclaimed (\d+) unused clusters? \((\d+) bytes\)', _fsck(vol))
    assert lost and int(lost.group(2)) > 50000, 'the planted loss is not there'
    owned, total, free = _owned_and_free(vol)
    assert free < total - owned             # lost: neither in a file nor free
    board = make_board(sdcard=image)
    board.start()
    board.wait_frame()
    with board.ws() as ws:
        saved = board.command(ws, cmd='snapshot_now')['saved'][len('/sdcard'):]
    board.stop()
    console = board.output()
    given = re.search(r'sd: gave back (\d+) KB that power cuts had left to no file', console)
    assert given and int(given.group(1)) == int(lost.group(2)) // 1024, console
    report = _fsck(vol)
    assert 'Reclaimed' not in report and len(report.strip().splitlines()) == 2, report
    owned, total, free = _owned_and_free(vol)
    assert free == total - owned            # every cluster no file owns is free
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

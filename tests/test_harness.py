"""The harness's card reader: an empty card reads as empty, a broken one
fails the test that asked instead of passing for "nothing on the card"."""
import subprocess

import pytest

from tools.sim.harness import MTOOLS_ENV, Board


@pytest.fixture
def card(tmp_path):
    path = str(tmp_path / 'card.img')
    subprocess.run(['mformat', '-C', '-i', path, '-f', '1440', '::'], check=True, env=MTOOLS_ENV)
    return path


def test_a_card_without_the_folder_yet_is_empty(tmp_path, card):
    assert Board(tmp_path, sdcard=card).card_files() == {}
    subprocess.run(['mmd', '-i', card, '::/snaps'], check=True, env=MTOOLS_ENV)
    assert Board(tmp_path, sdcard=card).card_files() == {}


def test_a_broken_or_missing_card_fails_loudly(tmp_path, card):
    with open(card, 'r+b') as f:
        f.write(b'\0' * 4096)               # the boot sector and FAT gone
    with pytest.raises(AssertionError, match='unreadable'):
        Board(tmp_path, sdcard=card).card_files()
    with pytest.raises(AssertionError, match='unreadable'):
        Board(tmp_path, sdcard=str(tmp_path / 'no-such.img')).card_files()

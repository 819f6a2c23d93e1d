"""Where a numbered file lives on the card: folders of at most 100.

Snapshots and clips go into folders named by their sequence number's
hundreds: /sdcard/snaps/0042/manual-20261124-101500-4213.jpg. FatFs reads a
folder from its start for every name it looks up, so small folders keep
each save, open and delete cheap however full the card is. The name
carries the number, so the name alone gives the folder: the HTTP API, MQTT
and the dashboard keep using bare names.

A card written by older firmware has its files flat in the top folder:
cardmigrate.py moves them into their folders in the background, and until
then the top folder is searched too.
"""
import asyncio
import os
from micropython import const
from firmware.cardfiles import file_size, remove_quietly
from firmware.cardnames import seq_of

PER_FOLDER = const(100)
_DIR = const(0x4000)          # ilistdir's type of a folder
_YIELD_EVERY = const(32)      # directory entries read between yields to the loop
MIGRATING = '.migrating'      # in the top folder while older firmware's files move
# Made first in each numbered folder: ".", ".." and this name take four
# directory entries, so every file name after them (31 characters: three
# long-name entries and a short one) starts on a four-entry boundary and never
# straddles two sectors, where a power cut can tear a long name.
MARK = '.dir'


def folder_of(seq):
    """The folder name for sequence number seq: its hundreds, 4 digits or more."""
    return '%04d' % (seq // PER_FOLDER)


class NumberedFolder:
    """A top folder (snaps, clips) of numbered folders holding files of one
    extension; knows its folders, and whether older firmware left files flat."""

    def __init__(self, root, ext):
        self.root = root
        self.ext = ext
        self.numbers = []       # the numbered folders there, ascending
        self.flat = False       # numbered files lie flat in root (older firmware)
        self.migrating = False  # a migration was under way: repair every folder
        self.marked = None      # the folder whose MARK was seen this mount

    def open(self, on_flat=None):
        """Make the top folder and read it once; on_flat(entry) sees each file
        that lies flat in it (a .part or .fix too)."""
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        numbers = []
        flat = False
        self.migrating = False
        self.marked = None
        for entry in os.ilistdir(self.root):
            name = entry[0]
            if name == MIGRATING:
                self.migrating = True
            elif entry[1] == _DIR:
                if len(name) >= 4 and name.isdigit():
                    numbers.append(int(name))
            elif name.endswith('.part') or name.endswith('.fix') or name.endswith(self.ext):
                if name.endswith(self.ext) and seq_of(name) >= 0:
                    flat = True
                if on_flat is not None:
                    on_flat(entry)
        numbers.sort()
        self.numbers = numbers
        self.flat = flat

    def folder(self, number):
        """The path of numbered folder `number`."""
        return '%s/%04d' % (self.root, number)

    def path_of(self, name):
        """Where the numbered file `name` goes (None for a name without a number)."""
        seq = seq_of(name)
        return None if seq < 0 else self.folder(seq // PER_FOLDER) + '/' + name

    def find(self, name):
        """The path of the existing file `name`, or None: in its folder, or
        flat in the top folder while older firmware's files are there."""
        path = self.path_of(name)
        if path is not None and file_size(path) is not None:
            return path
        if self.flat or path is None:
            path = self.root + '/' + name
            if file_size(path) is not None:
                return path
        return None

    def folder_for(self, seq):
        """The folder for seq, made (with its MARK) if it is not there yet."""
        number = seq // PER_FOLDER
        path = self.folder(number)
        if number not in self.numbers:
            try:
                os.mkdir(path)
            except OSError:
                pass        # there already (EEXIST); a card error shows on the write
            _insert(self.numbers, number)
        if number != self.marked:
            # once a mount per folder: a cut right after mkdir left it without one
            try:
                if file_size(path + '/' + MARK) is None:
                    with open(path + '/' + MARK, 'wb'):
                        pass
                self.marked = number
            except OSError:
                pass        # a card error shows on the write
        return path

    async def each(self, newest_first, visit, enough=None, prune=False):
        """visit(folder path, ilistdir entry) for every file, folder by
        folder (newest or oldest first; files flat in the top folder are the
        oldest), yielding to the loop every few entries; stops after a folder
        once enough() is true. prune: remove an emptied folder (never the
        newest). OSError if the card fails."""
        numbers = list(self.numbers)        # a save may add one meanwhile
        if newest_first:
            numbers.reverse()
        folders = [self.folder(n) for n in numbers]
        if self.flat:
            if newest_first:
                folders.append(self.root)
            else:
                folders.insert(0, self.root)
        count = 0
        for path in folders:
            files = 0
            for entry in os.ilistdir(path):
                count += 1
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep_ms(0)
                if entry[1] != _DIR:
                    if not entry[0].startswith('.'):
                        files += 1          # not the MARK
                    visit(path, entry)
            if prune and not files and path != self.root:
                self._prune(path)
            if enough is not None and not self.flat and enough():
                return      # (flat files may be newer or older than any folder)

    def _prune(self, path):
        number = int(path[len(self.root) + 1:])
        if self.numbers and number != self.numbers[-1]:
            try:
                remove_quietly(path + '/' + MARK)
                os.rmdir(path)
                self.numbers.remove(number)
            except (OSError, ValueError):
                pass
            self.marked = None


def _insert(numbers, number):
    i = len(numbers)
    while i and numbers[i - 1] > number:
        i -= 1
    numbers.insert(i, number)

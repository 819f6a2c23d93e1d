"""Names of the files the board writes to the card, and their order.

A snapshot or clip is KIND-YYYYMMDD-HHMMSS-NNNN.EXT: NNNN is its sequence
number (never reused), which orders them and says which numbered folder
holds it (cardlayout.py).
"""
import time


def valid_name(name, ext='.jpg'):
    """True for a plain file name (a snapshot's, or another ext): no path,
    no oddities."""
    if not (5 <= len(name) <= 64) or not name.endswith(ext):
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in '-_.'):
            return False
    return '..' not in name and name[0] != '.'


def seq_of(name):
    """manual-YYYYMMDD-HHMMSS-NNNN.jpg -> NNNN; -1 for a name without one."""
    try:
        return int(name[name.rindex('-') + 1:-4])
    except ValueError:
        return -1


def stamp(offset_s):
    """YYYYMMDD-HHMMSS of local time for a name."""
    # before NTP the clock counts from power-on (2000-01-01): a time zone
    # means nothing there, and a negative sum wraps to 2136 on some firmware
    from firmware.clock import is_set
    t = time.localtime(time.time() + (offset_s if is_set() else 0))
    return '%04d%02d%02d-%02d%02d%02d' % (t[0], t[1], t[2], t[3], t[4], t[5])


def insert_sorted(best, item):
    """Put item into the sorted list `best`, in order: a binary search, no sort."""
    lo, hi = 0, len(best)
    while lo < hi:
        mid = (lo + hi) // 2
        if best[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    best.insert(lo, item)


def keep_newest(best, item, limit):
    """Add item ((seq, ...)) to `best` (oldest first, at most `limit`); True
    if one was left out, i.e. the folder holds more than `best`."""
    if len(best) < limit:
        insert_sorted(best, item)
        return False
    if item[0] > best[0][0]:
        best.pop(0)
        insert_sorted(best, item)
    return True

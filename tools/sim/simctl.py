# Simulator only, never goes onto a board: fault switches that tests flip at run time.
# The file named by SIM_FAULTS holds a JSON object such as {"sd_write_error": true};
# it is re-read whenever it is replaced (tests write it and rename it over).
import json
import os

import utime      # the host's ticks: the board's own (sim time.py) read faults here

_path = os.getenv('SIM_FAULTS')
_mtime = None
_faults = {}
_checked_ms = None
_RECHECK_MS = 20        # a stat per block I/O would slow the card down


def fault(name):
    """The value of a fault switch, or None when it is off."""
    global _mtime, _faults, _checked_ms
    if not _path:
        return None
    now = utime.ticks_ms()
    if _checked_ms is not None and utime.ticks_diff(now, _checked_ms) < _RECHECK_MS:
        return _faults.get(name)
    _checked_ms = now
    try:
        st = os.stat(_path)
        mtime = (st[1], st[6], st[8])   # inode, size, mtime
    except OSError:
        _faults = {}
        return None
    if mtime != _mtime:
        _mtime = mtime
        try:
            with open(_path) as f:
                _faults = json.loads(f.read())
        except (OSError, ValueError):
            _faults = {}
    return _faults.get(name)


def env(name, default=None):
    value = os.getenv(name)
    return default if value is None or value == '' else value

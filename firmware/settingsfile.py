"""Settings changed at run time, kept on flash so a restart brings them back.

FILE holds each setting that differs from its config.json value, with the
config value it replaced: {"sensitivity": [70, 50]}. At boot a kept value
applies while config.json still gives the value it replaced, so a new value
deployed in config.json wins. The file is written a few seconds after the
last change (a dragged slider is one write), only when what it would hold
differs from what it holds, as FILE.part renamed over FILE: a rename is
atomic on LittleFS, so a power cut leaves the old file or the new one.
"""
import asyncio
import json
import os
from micropython import const

from firmware import ticks
from firmware.settings import TABLE, valid

FILE = 'settings.json'
_QUIET_MS = const(3000)         # written once the changes stop this long
_LATEST_MS = const(30000)       # or this long after the first, if they never stop


class SettingsFile:
    """The kept settings of one board: load() at boot, changed() after each
    change, run() as a task that writes them, flush() to write at once."""

    def __init__(self, configured, path=FILE):
        self.configured = configured    # {name: value} from config.json
        self.path = path
        self.kept = {}                  # what the file holds now
        self._changed = asyncio.Event()

    def load(self):
        """{name: value} to start with: config.json's, or the kept value
        where it still applies."""
        values = dict(self.configured)
        try:
            with open(self.path) as f:
                kept = json.loads(f.read())
        except OSError:
            return values               # nothing changed at run time yet
        except ValueError:
            kept = None
        if not isinstance(kept, dict):
            print('settings: %s unreadable; config.json values used' % self.path)
            return values
        for name, entry in kept.items():
            row = TABLE.get(name)
            if row is None or not isinstance(entry, list) or len(entry) != 2 \
                    or not valid(row[1], entry[0]):
                continue
            self.kept[name] = entry
            if entry[1] == self.configured.get(name):
                values[name] = entry[0]
        return values

    def _to_keep(self, values):
        return {name: [value, self.configured[name]] for name, value in values.items()
                if name in self.configured and value != self.configured[name]}

    def changed(self):
        """A setting changed: write the file once the changes stop."""
        self._changed.set()

    def flush(self, values):
        """Write `values` now unless the file already holds them; True if written."""
        kept = self._to_keep(values)
        if kept == self.kept:
            return False
        try:
            with open(self.path + '.part', 'w') as f:
                f.write(json.dumps(kept))
            os.rename(self.path + '.part', self.path)
        except OSError as exc:
            print('settings: not saved:', exc)
            return False
        self.kept = kept
        print('settings: saved to flash')
        return True

    async def run(self, values):
        """Forever: after a change, wait until none came for _QUIET_MS (at
        most _LATEST_MS), then flush(values())."""
        while True:
            await self._changed.wait()
            first_ms = ticks.now_ms()
            while True:
                self._changed.clear()
                await asyncio.sleep_ms(_QUIET_MS)
                if not self._changed.is_set() or ticks.now_ms() - first_ms >= _LATEST_MS:
                    break
            self._changed.clear()
            self.flush(values())

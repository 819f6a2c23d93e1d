"""Over-the-air updates into an inactive app slot, with rollback.

Flash layout (boot.py and tools/deploy.py know these names too):
  ota/key    the board's OTA key (hex), copied by `make deploy`;
  ota/slot   the pointer: "ACTIVE PREVIOUS STATE BOOTS HEALTH_S", e.g.
             "b base trial 1 120"; STATE is ok, trial or rolledback; no file
             means the app deployed over USB ("base", the flash's root);
  ota/a/, ota/b/  the slots: firmware/, static/, lib/ and manifest.json.

A bundle (tools/ota.py) is one line "ESP32CAM-OTA1 MAC MANIFEST_LENGTH\\n",
the manifest (JSON: version, build, files as [path, size, sha256 hex], and
"downgrade": true for a deliberate one), then each file's bytes in manifest
order. MAC is HMAC-SHA256 of the manifest with the key. Nothing is written
before the MAC checks out; a build number not above the running one
(firmware.build_number: an old signed bundle sent again) is refused unless
the signed manifest says downgrade; the pointer is only rewritten (one
atomic rename) once every file matched its SHA-256.
"""
import asyncio
import binascii
import gc
import hashlib
import json
import os
from micropython import const

from firmware import VERSION, auth, build_number

POINTER = 'ota/slot'
KEY = 'ota/key'
BOOT_TRIES = const(3)                   # boot.py rolls back after this many boots on trial
MAGIC = b'ESP32CAM-OTA1'
MAX_BUNDLE = const(2 * 1024 * 1024)      # the flash's size: no bundle is larger
_MAX_MANIFEST = const(8192)
_MAX_FILES = const(200)
_CHUNK = const(1024)
_FOLDERS = ('firmware/', 'static/', 'lib/')
_RESTART_MS = const(1000)               # lets the reply reach the client first


def hmac_sha256(key, message):
    """HMAC-SHA256 (RFC 2104): MicroPython has hashlib.sha256 but no hmac."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(message)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def app_root():
    """The folder the running app was imported from: '' (USB deploy) or
    'ota/a/' (boot.py put the slot first on sys.path)."""
    import firmware
    path = firmware.__file__
    return path[:path.rfind('firmware/')].lstrip('/')


def read_pointer():
    """[active, previous, state, boots, health_s] from ota/slot."""
    try:
        with open(POINTER) as f:
            fields = f.read().split()
        int(fields[3]), int(fields[4])
        if len(fields) == 5:
            return fields
    except (OSError, ValueError, IndexError):
        pass
    return ['base', 'base', 'ok', '0', '0']


def write_pointer(fields):
    # .part then rename: LittleFS renames atomically, so a power cut leaves
    # the old pointer or the new one, never half of one
    with open(POINTER + '.part', 'w') as f:
        f.write(' '.join(fields))
    os.rename(POINTER + '.part', POINTER)


def _slot_dir(name):
    return '' if name == 'base' else 'ota/' + name + '/'


def _slot_version(name):
    try:
        with open(_slot_dir(name) + 'manifest.json') as f:
            return json.loads(f.read())['version']
    except (OSError, ValueError, KeyError):
        return '?'


async def _remove_tree(path):
    # a slot is dozens of files: the loop runs between two removals
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        full = path + '/' + entry[0]
        if entry[1] == 0x4000:
            await _remove_tree(full)
        else:
            os.remove(full)
        await asyncio.sleep_ms(0)
    os.rmdir(path)


def _make_dirs(path):
    built = ''
    for part in path.split('/')[:-1]:
        built = built + part if not built else built + '/' + part
        try:
            os.mkdir(built)
        except OSError:
            pass


def _path_ok(path):
    if not isinstance(path, str) or not path.startswith(_FOLDERS) or len(path) > 96:
        return False
    for part in path.split('/'):
        if not part or part[0] == '.':
            return False
        for c in part:
            if not (c.isalpha() or c.isdigit() or c in '-_.'):
                return False
    return True


class Refused(Exception):
    """An update refused: args = (HTTP status, reason)."""


class Updater:
    """Receives bundles, switches slots, and confirms a new slot once the
    app is healthy (or resets the board so boot.py counts the failure)."""

    def __init__(self, state, health_s, feed_watchdog=False):
        self.state = state
        self.health_s = health_s
        # boot.py armed the watchdog for a slot on trial, and nothing can
        # disarm it: with the app's own watchdog off (watchdog_s 0), feed it here
        self.feed_watchdog = feed_watchdog
        self.pointer = read_pointer()
        self.busy = False
        self.last = self._result_at_boot()
        self._publish()

    def _result_at_boot(self):
        active, previous, state = self.pointer[0], self.pointer[1], self.pointer[2]
        if state == 'rolledback':
            return ('rolled back: %s did not become healthy in %d boots; running %s again'
                    % (_slot_version(previous), BOOT_TRIES, VERSION))
        if state == 'trial':
            return 'trying %s (boot %s)' % (VERSION, self.pointer[3])
        if active != 'base':
            return 'updated to %s' % VERSION
        return None

    def status(self):
        """The running version, its slot and state, and the last update's
        outcome (also the SSE status's "update")."""
        return {'version': VERSION, 'slot': self.pointer[0], 'state': self.pointer[2],
                'busy': self.busy, 'last': self.last}

    def _publish(self):
        self.state.update(update=self.status())

    # --- receiving a bundle ---------------------------------------------------
    async def receive(self, stream, length):
        """Write the bundle from stream (length bytes) into the inactive slot
        and switch to it; returns (reply dict, HTTP status)."""
        if self.busy:
            return {'ok': False, 'error': 'an update is in progress'}, 409
        self.busy = True
        self.last = 'receiving an update'
        self._publish()
        target = None
        try:
            target = self._target()
            version = await self._install(stream, length, target)
            write_pointer([target, self.pointer[0], 'trial', '0', str(self.health_s)])
            self.pointer = read_pointer()
            self.last = 'installed %s; restarting to try it' % version
            asyncio.create_task(self._restart())
            return {'ok': True, 'version': version, 'slot': target, 'restarting': True}, 200
        except Refused as exc:
            self.last = 'refused: ' + exc.args[1]
            return {'ok': False, 'error': exc.args[1]}, exc.args[0]
        except EOFError:
            self.last = 'failed: the upload was cut off; nothing changed'
            return {'ok': False, 'error': self.last}, 400
        except OSError as exc:
            self.last = 'failed: %r; nothing changed' % exc
            return {'ok': False, 'error': self.last}, 500
        finally:
            try:
                if self.pointer[0] != target and target:
                    await _remove_tree('ota/' + target)  # the inactive slot: nothing half kept
            except OSError as exc:
                print('ota: inactive slot not cleared:', exc)
            self.busy = False
            self._publish()
            gc.collect()

    def _target(self):
        active, state = self.pointer[0], self.pointer[2]
        if state == 'trial':
            raise Refused(409, 'the running update is not confirmed yet')
        return 'b' if active == 'a' else 'a'

    def _key(self):
        try:
            with open(KEY) as f:
                return binascii.unhexlify(f.read().strip())
        except (OSError, ValueError):
            raise Refused(409, 'no OTA key on the board: deploy once over USB (make deploy)')

    async def _install(self, stream, length, target):
        key = self._key()
        if not length or length > MAX_BUNDLE:
            raise Refused(413 if length else 411, 'bundle size missing or too large')
        reader = _Reader(stream, length)
        head = await reader.line(96)
        parts = head.split()
        if len(parts) != 3 or parts[0] != MAGIC or not parts[2].isdigit():
            raise Refused(400, 'not an update bundle')
        size = int(parts[2])
        if size > _MAX_MANIFEST:
            raise Refused(400, 'manifest too large')
        manifest_bytes = await reader.exactly(size)
        # in constant time: a compare that stops at the first wrong byte lets
        # a client find a valid MAC byte by byte from the reply times
        if not auth.same(binascii.hexlify(hmac_sha256(key, manifest_bytes)), parts[1]):
            raise Refused(403, 'bad signature: not made with this board\'s key')
        files, version, build, downgrade = _parse_manifest(manifest_bytes)
        running = _running_build()
        if build <= running and not downgrade:
            raise Refused(409, '%s (build %d) is not newer than the running %s (build %d): '
                          'an older update is taken only when sent as a downgrade '
                          '(make ota DOWNGRADE=1)' % (version, build, VERSION, running))
        if sum(entry[1] for entry in files) != reader.left + len(reader.buffered):
            raise Refused(400, 'bundle length does not match its manifest')
        root = 'ota/' + target
        await _remove_tree(root)
        _make_dirs(root + '/')
        for path, size, digest in files:
            await self._write_file(reader, root + '/' + path, size, digest, path)
        with open(root + '/manifest.json', 'wb') as f:
            f.write(manifest_bytes)
        return version

    async def _write_file(self, reader, dest, size, digest, name):
        _make_dirs(dest)
        h = hashlib.sha256()
        with open(dest + '.part', 'wb') as f:
            left = size
            while left:
                chunk = await reader.exactly(min(left, _CHUNK))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
                await asyncio.sleep_ms(0)       # the flash write done, let others run
        if binascii.hexlify(h.digest()).decode() != digest:
            os.remove(dest + '.part')
            raise Refused(400, '%s does not match its SHA-256' % name)
        os.rename(dest + '.part', dest)

    async def _restart(self):
        await asyncio.sleep_ms(_RESTART_MS)
        import machine
        machine.reset()

    # --- after an update: healthy, or back to the old slot ----------------------
    async def confirm_when_healthy(self, healthy):
        """On a slot on trial: confirm it once healthy() holds; reset if
        that does not happen within health_s, so boot.py counts the boot."""
        fields = self.pointer
        if fields[2] != 'trial':
            return
        import machine
        limit_ms = int(fields[4]) * 1000
        wdt = machine.WDT(timeout=limit_ms) if self.feed_watchdog else None
        waited_ms = 0
        while not healthy():
            if waited_ms >= limit_ms:
                print('ota: %s not healthy after %s s, restarting' % (VERSION, fields[4]))
                machine.reset()
            if wdt:
                wdt.feed()
            await asyncio.sleep_ms(500)
            waited_ms += 500
        write_pointer([fields[0], fields[1], 'ok', '0', fields[4]])
        self.pointer = read_pointer()
        self.last = 'updated to %s' % VERSION
        print('ota: %s is healthy, update kept' % VERSION)
        self._publish()
        while wdt:
            wdt.feed()
            await asyncio.sleep_ms(limit_ms // 4)


def _running_build():
    try:
        return build_number(VERSION)
    except ValueError:
        return 0                        # a hand-made version: any numbered update is newer


def _parse_manifest(data):
    try:
        manifest = json.loads(data)
        version = manifest['version']
        files = manifest['files']
        build = manifest.get('build', 0)     # none: made before build numbers, so old
        downgrade = manifest.get('downgrade', False)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refused(400, 'bad manifest')
    if not isinstance(version, str) or not isinstance(files, list) or not files \
            or len(files) > _MAX_FILES or type(build) is not int or build < 0 \
            or downgrade not in (True, False):
        raise Refused(400, 'bad manifest')
    for entry in files:
        if (not isinstance(entry, list) or len(entry) != 3 or not _path_ok(entry[0])
                or not isinstance(entry[1], int) or entry[1] < 0
                or not isinstance(entry[2], str) or len(entry[2]) != 64):
            raise Refused(400, 'bad manifest entry')
    if 'firmware/__init__.mpy' not in [entry[0] for entry in files]:
        raise Refused(400, 'the bundle has no firmware')
    return files, version, build, downgrade is True


class _Reader:
    """Exactly `length` bytes of a request body, read in small pieces."""

    def __init__(self, stream, length):
        self.stream = stream
        self.left = length
        self.buffered = b''

    async def _more(self, n):
        if self.left <= 0:
            raise EOFError
        chunk = await self.stream.read(min(n, self.left, _CHUNK))
        if not chunk:
            raise EOFError          # the client went away mid-upload
        self.left -= len(chunk)
        return chunk

    async def exactly(self, n):
        data = self.buffered[:n]
        self.buffered = self.buffered[n:]
        while len(data) < n:
            data += await self._more(n - len(data))
        return data

    async def line(self, limit):
        while b'\n' not in self.buffered:
            if len(self.buffered) > limit:
                raise Refused(400, 'not an update bundle')
            self.buffered += await self._more(limit)
        line, self.buffered = self.buffered.split(b'\n', 1)
        return line


def allow_large_body(app, path):
    """Let POST `path` through microdot's request-size check (it streams
    the body); every other request keeps the configured limit."""
    dispatch = app.dispatch_request

    async def dispatch_request(req):
        if req and req.method == 'POST' and req.path == path:
            req.max_content_length = MAX_BUNDLE
        return await dispatch(req)

    app.dispatch_request = dispatch_request

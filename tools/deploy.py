#!/usr/bin/env python3
"""Copy the bundle (build/board/) onto a board with mpremote, then reset it
and show its console.

    python tools/deploy.py --port /dev/ttyUSB0 [--config [FILE]] [--key FILE]
                           [--clean] [--dry-run]

1. Put the board in safe mode (a SAFE file) and reset it: the app, and the
   hardware watchdog it arms (which a soft reset does not stop), are not
   running while files are copied.
2. Remove stale files from firmware/, lib/microdot/ and static/: .py files
   (an older source install, e.g. by mip: a .py is imported before the .mpy
   beside it) and any file the bundle no longer has; then copy. mpremote's
   `fs cp` skips files whose hash is unchanged ("Up to date: ..."), so a
   redeploy only sends what changed. Every command uses `resume`: no soft
   reset in between.
3. Copy the OTA key (--key, default ./ota.key, made at random when missing):
   the board accepts over-the-air updates signed with it (tools/ota.py).
4. Remove SAFE and the OTA slot pointer (the app just copied runs, not an
   update installed earlier over the air), reset, and show the console.
--config also copies ./config.json (or FILE; only if it exists); --clean
first removes the board's firmware/ and lib/ folders; --dry-run prints the
files and the commands instead of running them.
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bundle import listing  # noqa: E402


def mpremote():
    local = os.path.join(os.path.dirname(sys.executable), 'mpremote')
    return local if os.path.exists(local) else 'mpremote'


_BOOT_S = 3     # the board boots into safe mode meanwhile
_ENTER_SAFE_MODE = 'open("SAFE", "w").close()'
# the OTA files on flash (firmware/ota.py): the slot pointer and the key
OTA_POINTER = 'ota/slot'
OTA_KEY = 'ota/key'
_LEAVE_SAFE_MODE = ('import os\nos.remove("SAFE")\n'
                    'try:\n    os.remove("%s")\nexcept OSError:\n    pass' % OTA_POINTER)
_MAKE_OTA_FOLDER = 'import os\ntry:\n    os.mkdir("ota")\nexcept OSError:\n    pass'
_STALE_FOLDERS = ('firmware', 'lib/microdot', 'static')


def remove_stale(files):
    """Board code that removes what the bundle (files) no longer has from
    the folders it owns, and every .py there."""
    keep = sorted(f for f in files if f.startswith(tuple(d + '/' for d in _STALE_FOLDERS)))
    return ('import os\nkeep = set(%r)\nfor d in %r:\n'
            '    try:\n        names = os.listdir(d)\n    except OSError:\n        continue\n'
            '    for n in names:\n        if n.endswith(".py") or d + "/" + n not in keep:\n'
            '            os.remove(d + "/" + n)' % (keep, _STALE_FOLDERS))


def ensure_key(path):
    """The OTA key file: 32 random bytes as hex, made when missing."""
    if not os.path.exists(path):
        import secrets
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w') as f:
            f.write(secrets.token_hex(32) + '\n')
        print('deploy: made a new OTA key in %s (keep it: make ota needs it)' % path)
    return path


def shown(cmd):
    """A command on one line, shell-quoted, its newlines shown as \\n."""
    return ' '.join(shlex.quote(arg) for arg in cmd).replace('\n', '\\n')


def plan(port, bundle, with_config=None, clean=False, key=None):
    """(files, commands): what goes onto the board and how. with_config:
    the config file to copy (True: ./config.json); key: the OTA key file."""
    files = listing(bundle)
    base = [mpremote(), 'connect', port, 'resume']
    commands = [base + ['exec', _ENTER_SAFE_MODE, '+', 'reset'], ['sleep', str(_BOOT_S)]]
    if clean:
        commands.append(base + ['fs', 'rm', '-r', ':firmware', '+', 'fs', 'rm', '-r', ':lib'])
    tops = sorted({f.split('/')[0] for f in files})
    commands.append(base + ['exec', remove_stale(files), '+', 'fs', 'cp', '-r']
                    + [os.path.join(bundle, t) for t in tops] + [':'])
    if with_config:
        config = os.path.join(REPO, 'config.json') if with_config is True else with_config
        if not os.path.exists(config):
            raise SystemExit('deploy: --config given but there is no %s '
                             '(copy config.example.json and edit it)' % config)
        files.append('config.json')
        commands.append(base + ['fs', 'cp', config, ':config.json'])
    if key:
        commands.append(base + ['exec', _MAKE_OTA_FOLDER, '+', 'fs', 'cp', key, ':' + OTA_KEY])
    commands.append(base + ['exec', _LEAVE_SAFE_MODE, '+', 'reset'])
    commands.append([mpremote(), 'connect', port, 'repl'])  # the console: Ctrl-] leaves it
    return files, commands


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--port', required=True, help='serial port, e.g. /dev/ttyUSB0')
    p.add_argument('--bundle', default=os.path.join(REPO, 'build', 'board'))
    p.add_argument('--config', nargs='?', const=True, metavar='FILE',
                   help='also copy ./config.json (or FILE) as the board\'s config.json')
    p.add_argument('--key', default=os.path.join(REPO, 'ota.key'),
                   help='the OTA key to copy (made when missing; default ./ota.key)')
    p.add_argument('--clean', action='store_true', help='remove firmware/ and lib/ first')
    p.add_argument('--dry-run', action='store_true')
    args = p.parse_args()
    if not os.path.isdir(args.bundle):
        raise SystemExit('deploy: no bundle at %s (run make bundle)' % args.bundle)
    key = args.key if args.dry_run else ensure_key(args.key)
    files, commands = plan(args.port, args.bundle, args.config, args.clean, key)
    if args.dry_run:
        print('files:')
        for name in files:
            print('  ' + name)
        print('commands:')
        for cmd in commands:
            print('  ' + shown(cmd))
        return
    for cmd in commands:
        print('+ ' + shown(cmd), flush=True)
        if cmd[0] == 'sleep':
            time.sleep(float(cmd[1]))
        else:
            # the console ends when you leave it (Ctrl-]): not a failure
            subprocess.run(cmd, check=cmd[-1] != 'repl')


if __name__ == '__main__':
    main()

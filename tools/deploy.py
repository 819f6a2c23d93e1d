#!/usr/bin/env python3
"""Copy the bundle (build/board/) onto a board with mpremote, then reset it
and show its console.

    python tools/deploy.py --port /dev/ttyUSB0 [--config] [--clean] [--dry-run]

1. Put the board in safe mode (a SAFE file) and reset it: the app, and the
   hardware watchdog it arms (which a soft reset does not stop), are not
   running while files are copied.
2. Remove .py files from firmware/ and lib/microdot/ (an older source install,
   e.g. by mip: a .py is imported before the .mpy beside it), then copy.
   mpremote's `fs cp` skips files whose hash is unchanged, so a redeploy only
   sends what changed. Every command uses `resume`: no soft reset in between.
3. Remove SAFE, reset, and show the console.
--config also copies ./config.json (only if you have one); --clean first
removes the board's firmware/ and lib/ folders; --dry-run prints the files
and the commands instead of running them.
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
_LEAVE_SAFE_MODE = 'import os\nos.remove("SAFE")'
_REMOVE_SOURCES = ('import os\nfor d in ("firmware", "lib/microdot"):\n'
                   '    try:\n        names = os.listdir(d)\n    except OSError:\n        continue\n'
                   '    for n in names:\n        if n.endswith(".py"):\n'
                   '            os.remove(d + "/" + n)')


def shown(cmd):
    """A command on one line, shell-quoted, its newlines shown as \\n."""
    return ' '.join(shlex.quote(arg) for arg in cmd).replace('\n', '\\n')


def plan(port, bundle, with_config=False, clean=False):
    """(files, commands): what goes onto the board and how."""
    files = listing(bundle)
    base = [mpremote(), 'connect', port, 'resume']
    commands = [base + ['exec', _ENTER_SAFE_MODE, '+', 'reset'], ['sleep', str(_BOOT_S)]]
    if clean:
        commands.append(base + ['fs', 'rm', '-r', ':firmware', '+', 'fs', 'rm', '-r', ':lib'])
    tops = sorted({f.split('/')[0] for f in files})
    commands.append(base + ['exec', _REMOVE_SOURCES, '+', 'fs', 'cp', '-r']
                    + [os.path.join(bundle, t) for t in tops] + [':'])
    config = os.path.join(REPO, 'config.json')
    if with_config:
        if not os.path.exists(config):
            raise SystemExit('deploy: --config given but there is no ./config.json '
                             '(copy config.example.json and edit it)')
        files.append('config.json')
        commands.append(base + ['fs', 'cp', config, ':config.json'])
    commands.append(base + ['exec', _LEAVE_SAFE_MODE, '+', 'reset'])
    commands.append([mpremote(), 'connect', port, 'repl'])  # the console: Ctrl-] leaves it
    return files, commands


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--port', required=True, help='serial port, e.g. /dev/ttyUSB0')
    p.add_argument('--bundle', default=os.path.join(REPO, 'build', 'board'))
    p.add_argument('--config', action='store_true', help='also copy ./config.json')
    p.add_argument('--clean', action='store_true', help='remove firmware/ and lib/ first')
    p.add_argument('--dry-run', action='store_true')
    args = p.parse_args()
    if not os.path.isdir(args.bundle):
        raise SystemExit('deploy: no bundle at %s (run make bundle)' % args.bundle)
    files, commands = plan(args.port, args.bundle, args.config, args.clean)
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
            subprocess.run(cmd, check=cmd[-1] != 'repl')


if __name__ == '__main__':
    main()

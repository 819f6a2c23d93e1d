"""Helpers for boards that boot from a flash image and have a serial port:
a checkout to run `make` in, a terminal to run it from, and the image read
with the unix port's own vfs.VfsLfs2 (tools/sim/flashtool.py)."""
import json
import os
import pty
import select
import shutil
import subprocess
import time

from tools.sim.harness import REPO

MICROPYTHON = os.path.join(REPO, '.venv', 'bin', 'micropython')
FLASHTOOL = os.path.join(REPO, 'tools', 'sim', 'flashtool.py')
CONSOLE_OPEN = b'Use Ctrl-] or Ctrl-x to exit this shell'


def checkout(dest):
    """A copy of the repository's tracked files (and this worktree's changes
    to them) at dest, sharing .venv: a user's checkout a test may edit."""
    names = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split('\0')
    for name in filter(None, names):
        src = os.path.join(REPO, name)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))
    os.symlink(os.path.join(REPO, '.venv'), os.path.join(dest, '.venv'))
    return str(dest)


def make(checkout_dir, *args):
    """`make ARGS` as a user types it. -o: the shared .venv is set up already
    (it is older than this fresh copy of requirements.txt)."""
    return ['make', '--no-print-directory', '-o', '.venv/.installed', '-C', checkout_dir] + list(args)


def in_terminal(cmd, leave_console_when, timeout=240):
    """Run cmd with a terminal as stdin/stdout, as from a shell. Once
    mpremote's console is open and leave_console_when(output) holds, type
    Ctrl-] to leave it. Returns (exit status, output as text)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b''
    left = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:         # EIO: every writer has gone
                    data = b''
                if not data and proc.poll() is not None:
                    break
                out += data
            elif proc.poll() is not None:
                break
            console = out.split(CONSOLE_OPEN, 1)
            if not left and len(console) == 2 and leave_console_when(console[1].decode(errors='replace')):
                os.write(master, b'\x1d')
                left = True
        else:
            proc.kill()
            raise AssertionError('%s did not finish:\n%s' % (cmd, out.decode(errors='replace')))
        return proc.wait(timeout=10), out.decode(errors='replace')
    finally:
        os.close(master)


def copied_files(output, bundle_files):
    """The bundle files an mpremote `fs cp` sent, from its output: all but
    those it reported "Up to date"."""
    fresh = {line.split('Up to date: ', 1)[1].strip().lstrip('./')
             for line in output.splitlines() if 'Up to date: ' in line}
    return sorted(set(bundle_files) - fresh)


def flash_files(image):
    """{path: [size, sha256 hex]} (folders: path/ -> None) on a flash image."""
    out = subprocess.run([MICROPYTHON, FLASHTOOL, image, 'list'], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def flash_read(image, path):
    out = subprocess.run([MICROPYTHON, FLASHTOOL, image, 'cat', path], capture_output=True,
                         text=True, check=True).stdout
    return bytes.fromhex(out.strip())


def bundle_hashes(bundle):
    """{path: [size, sha256 hex]} of a bundle folder on the host."""
    import hashlib
    out = {}
    for folder, _, files in os.walk(bundle):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                data = f.read()
            out[os.path.relpath(path, bundle)] = [len(data), hashlib.sha256(data).hexdigest()]
    return out

"""`make check`: the board files type-check against the MicroPython ESP32
stubs, and a use of something the ESP32 port lacks fails the check."""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(REPO, 'tools', 'check.py')

# Appended to a copy of a board file: each line is fine under CPython, and
# each is missing on the board.
PROBE = '''

def _uses_what_the_esp32_lacks():
    import time
    import machine
    import os
    import pathlib
    time.ticks_cpu_missing()
    return machine.Pin.nonexistent, os.path.join('a', 'b'), time.monotonic()
'''


def run_check(root=None):
    cmd = [sys.executable, CHECK, '--fresh'] + (['--root', root] if root else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def board_copy(dest):
    """The board files and the check's own configuration, as in the repo."""
    for name in ('boot.py', 'main.py', 'pyrightconfig.json'):
        shutil.copy(os.path.join(REPO, name), dest)
    shutil.copytree(os.path.join(REPO, 'firmware'), os.path.join(dest, 'firmware'),
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(os.path.join(REPO, 'tools', 'stubs'), os.path.join(dest, 'tools', 'stubs'))


@pytest.mark.timeout(200)
def test_what_the_esp32_port_lacks_fails_the_check(tmp_path):
    board_copy(str(tmp_path))
    with open(tmp_path / 'firmware' / 'clock.py', 'a') as f:
        f.write(PROBE)
    done = run_check(str(tmp_path))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    lines = [line for line in out.splitlines() if line.startswith('firmware/clock.py:')]
    assert any('"ticks_cpu_missing" is not a known attribute of module "time"' in line
               for line in lines), out
    assert any('"nonexistent"' in line and 'Pin' in line for line in lines), out
    assert any('"path" is not a known attribute of module "os"' in line for line in lines), out
    assert any('"monotonic" is not a known attribute of module "time"' in line
               for line in lines), out
    assert any('Import "pathlib" could not be resolved' in line for line in lines), out
    # only the probe fails: the rest of the copy, the board files as they are,
    # passes (make test runs the check on the tree itself before the tests)
    assert len(lines) == 5 and 'check: 5 error(s)' in out, out

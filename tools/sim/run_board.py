# Simulator only, never goes onto a board: power-on. Formats a missing card
# image, then runs boot.py and main.py from the flash folder (the cwd), as
# the ESP32 firmware does.
import os
import sys

sys.path[:] = [simdir for simdir in (os.getenv('SIM_DIR'),)] + ['', '.frozen', 'lib']


def _format_card(path, size):
    import vfs
    with open(path, 'wb') as f:
        f.seek(size - 1)
        f.write(b'\0')
    import machine
    vfs.VfsFat.mkfs(machine.SDCard(sim_ignore_faults=True))


card = os.getenv('SIM_SDCARD')
if card:
    try:
        os.stat(card)
    except OSError:
        _format_card(card, int(os.getenv('SIM_SDCARD_SIZE', str(32 * 1024 * 1024))))


import camera  # noqa: E402,F401  the driver takes its frame memory at power-on


def _run(name):
    with open(name) as f:
        code = f.read()
    exec(code, {'__name__': '__main__'})


try:
    _run('boot.py')
    _run('main.py')
except KeyboardInterrupt:
    print('simulator: board powered off')

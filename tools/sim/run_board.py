# Simulator only, never goes onto a board: power-on. Mounts the flash image
# as the root (SIM_FLASH) or runs from the flash folder (the cwd), formats a
# missing card image, then runs boot.py and main.py as the ESP32 firmware
# does; with a serial port (SIM_SERIAL: friendly or raw, the REPL mode a
# soft reset keeps) the REPL follows on it.
import os
import sys

_simdir = os.getenv('SIM_DIR')
_flash = os.getenv('SIM_FLASH')
_serial = os.getenv('SIM_SERIAL')
if _flash:
    sys.path[:] = [_simdir]
    import flash
    flash.mount_as_root(_flash)
    _simdir = flash.HOST_MOUNT + _simdir
    # the simulator's own files are on the host, not on the board's flash
    os.putenv('SIM_HOST', flash.HOST_MOUNT)
    for _name in ('SIM_SDCARD', 'SIM_FRAMES', 'SIM_FAULTS', 'SIM_SENSOR_STATE'):
        _value = os.getenv(_name)
        if _value and _value.startswith('/'):
            os.putenv(_name, flash.HOST_MOUNT + _value)
    sys.path[:] = [_simdir, '', '.frozen', '/lib']
else:
    sys.path[:] = [_simdir, '', '.frozen', 'lib']


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
import boardspeed  # noqa: E402
boardspeed.install()        # at the ESP32's speed (--board-speed), else nothing

_namespace = {'__name__': '__main__'}     # boot.py, main.py and the REPL share it


def _run(name):
    try:
        f = open(name)
    except OSError:
        if _flash:
            return              # as pyexec_file_if_exists(): a blank board has none
        raise
    with f:
        code = f.read()
    exec(code, _namespace)


if not _serial:
    try:
        _run('boot.py')
        _run('main.py')
    except KeyboardInterrupt:
        print('simulator: board powered off')
else:
    # as ports/esp32/main.c: an error in one script is shown, then the next
    # runs; main.py only in the friendly REPL's mode; then the REPL
    for _script in ('boot.py', 'main.py') if _serial != 'raw' else ('boot.py',):
        try:
            _run(_script)
        except (Exception, KeyboardInterrupt) as exc:
            sys.print_exception(exc)
    import repl
    sys.exit(repl.run(_namespace, raw=_serial == 'raw'))

# Board start-up: picks the app's slot (rolling back an over-the-air update
# that did not become healthy, before any of it is imported), then config,
# Wi-Fi, hostname, SD card. main.py starts the app. See firmware/ota.py.
import sys


def _slot():
    # ota/slot: "ACTIVE PREVIOUS STATE BOOTS HEALTH_S"; none: the USB deploy
    import os
    try:
        with open('ota/slot') as f:
            fields = f.read().split()
        boots = int(fields[3])
        health_ms = int(fields[4]) * 1000
    except Exception:
        return 'base'
    try:
        if fields[2] != 'trial' or 'SAFE' in os.listdir():
            return fields[0]
        if boots >= 3:      # firmware/ota.py BOOT_TRIES: back to the slot that worked
            fields = [fields[1], fields[0], 'rolledback', '0', fields[4]]
        else:
            fields[3] = str(boots + 1)
        with open('ota/slot.part', 'w') as f:
            f.write(' '.join(fields))
        os.rename('ota/slot.part', 'ota/slot')
        if fields[2] == 'trial':
            import machine
            machine.WDT(timeout=health_ms)  # an app that crashes or hangs is reset
    except Exception as exc:
        print('boot: slot pointer:', exc)
    return fields[0]


_active = _slot()
if _active != 'base':
    _at = sys.path.index('') if '' in sys.path else 0
    sys.path[_at:_at] = ['/ota/' + _active, '/ota/' + _active + '/lib']
    print('boot: app slot', _active)

from firmware import startup  # noqa: E402

startup.run()

# Starts the dashboard app; boot.py has already brought the board up.
# An update on trial that crashes (at import, or later) resets at once, so
# boot.py counts the failed boot now instead of after its health watchdog.
import sys


def _on_trial():
    # ota/slot: "ACTIVE PREVIOUS STATE BOOTS HEALTH_S" (firmware/ota.py)
    try:
        with open('ota/slot') as f:
            return f.read().split()[2] == 'trial'
    except Exception:
        return False


try:
    from firmware import board

    board.main()
except Exception as exc:
    if not _on_trial():
        raise
    sys.print_exception(exc)
    print('app: the update on trial crashed; restarting so boot.py counts the failed boot')
    import machine
    machine.reset()

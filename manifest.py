# Freezes the app and microdot into a MicroPython firmware you build yourself:
# frozen bytecode runs from flash and costs no heap. boot.py, main.py, static/
# and config.json stay files on the board's flash (it runs and serves them by
# name): deploy them as usual (make deploy) after flashing the firmware.
#
#   make setup && . .venv/bin/activate    # the pinned microdot, importable here
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC BOARD_VARIANT=SPIRAM FROZEN_MANIFEST=/path/to/this/manifest.py
#
# The list of modules is tools/boardfiles.py's; tests/test_bundle.py checks
# this file freezes exactly the modules of the bundle.
import os as _os

import microdot as _microdot

include("$(PORT_DIR)/boards/manifest.py")
package("firmware", opt=2)
package("microdot", files=["__init__.py", "microdot.py", "websocket.py", "helpers.py"],
        base_path=_os.path.dirname(_os.path.dirname(_microdot.__file__)), opt=2)

#!/usr/bin/env python3
"""Run the simulated board: boot.py then main.py, unchanged, under the
MicroPython unix port, with the stand-ins of tools/sim/ for the hardware.

    python tools/simulate.py [--port 8080] [--sdcard IMG | --no-sdcard]
        [--frames DIR] [--frames-once] [--fps N] [--camera-api lemariva|cnadler86]
        [--heap SIZE] [--flash IMG] [--serial] [--board-speed]

The board's files come from SIM_BOARD_ROOT (default: this repository; the
deploy bundle build/board/ works too). Its config.json is SIM_CONFIG (a file,
or "none" for a board without one; default tools/sim/config.json). Tests
switch faults through the JSON file SIM_FAULTS (see tools/sim/simctl.py).

The board comes up set up: a dashboard password and an API token are put
on its flash (SIM_PASSWORD / SIM_TOKEN, or made at random) and printed.
SIM_AUTH=none boots a board that was never set up (setup portal; its DNS
responder on the loopback UDP port SIM_DNS_PORT, default a free one).
--flash IMG: the board's flash is the LittleFS2 image IMG (created blank when
missing) and it boots from what is on it, config.json included, as a real
board does: put files there with `make deploy` or mpremote.
--serial: the board gets a USB serial port, a pseudo-terminal whose path is
printed ("Serial: /dev/pts/N"): its console, Ctrl-C, the REPL and raw REPL
for mpremote, Ctrl-D soft reset.
--board-speed (or SIM_BOARD_SPEED=1): the firmware runs at the ESP32-CAM's
speed, calibrated against this PC at start (tools/sim/calibrate.py, printed
as "board speed: 1/N of this PC"; tools/sim/boardspeed.py holds each task
step for its board time). README: How fast on a real board.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SIM_DIR = os.path.join(HERE, 'sim')
sys.path.insert(0, HERE)
from boardfiles import BOARD_FILES  # noqa: E402
RESTART_STATUS = (75, -signal.SIGUSR2)   # machine.reset(), the watchdog
SOFT_RESET_STATUS = {76: 'friendly', 77: 'raw'}   # Ctrl-D: the REPL mode it keeps


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--port', type=int, default=8080)
    card = p.add_mutually_exclusive_group()
    card.add_argument('--sdcard', metavar='IMG',
                      default=os.path.join(REPO, 'build', 'sim', 'sdcard.img'),
                      help='FAT image file; created and formatted when missing')
    card.add_argument('--no-sdcard', action='store_true')
    p.add_argument('--frames', metavar='DIR', default=os.path.join(SIM_DIR, 'frames'))
    p.add_argument('--frames-once', action='store_true',
                   help='play the frames once, then hold the last one')
    p.add_argument('--fps', type=float, default=10)
    p.add_argument('--camera-api', choices=('lemariva', 'cnadler86'), default='cnadler86')
    # an AI-Thinker with 4 MB PSRAM: MicroPython's SPIRAM build gives the GC
    # heap half of the malloc heap (about 2 MB); the other half holds the
    # camera's frame buffers and Wi-Fi. A board without PSRAM (--heap 110K)
    # cannot run this firmware: it needs PSRAM
    p.add_argument('--heap', default='2M', help='MicroPython heap, e.g. 110K (no PSRAM) or 2M')
    p.add_argument('--flash', metavar='IMG',
                   help='LittleFS2 image of the flash (created blank when missing); '
                        'the board boots from it')
    p.add_argument('--serial', action='store_true',
                   help='a pseudo-terminal as the USB serial port (console, REPL, mpremote)')
    p.add_argument('--board-speed', action='store_true',
                   default=os.environ.get('SIM_BOARD_SPEED') == '1',
                   help="run at the ESP32-CAM's speed (calibrated against this PC at start)")
    return p.parse_args(argv)


def micropython_binary():
    found = shutil.which('micropython', path=os.path.dirname(sys.executable))
    return found or shutil.which('micropython')


VENV = os.path.join(REPO, '.venv')


def use_venv():
    """Run under the project's .venv when this Python lacks what the
    simulator needs (the MicroPython unix port and microdot, which
    `make setup` installs there, not into the system's Python): re-execute
    this script with .venv's Python, or say what to do."""
    import importlib.util
    if micropython_binary() and importlib.util.find_spec('microdot'):
        return
    venv_python = os.path.join(VENV, 'bin', 'python')
    here = os.path.realpath(sys.prefix) == os.path.realpath(VENV)
    if os.path.exists(venv_python) and not here:
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])
    raise SystemExit('simulate: the MicroPython unix port and microdot are not installed for '
                     '%s: run `make setup` (it installs them into .venv), or use `make sim`'
                     % sys.executable)


def make_flash(args, board_root):
    """A folder laid out like the board's flash: links to the board files.
    SIM_FLASH_DIR names a folder kept from one run to the next, as a board's
    flash survives power cycles (what the board wrote stays; config.json is
    only written when missing)."""
    kept = os.environ.get('SIM_FLASH_DIR')
    flash = kept or tempfile.mkdtemp(prefix='esp32cam-flash-')
    if kept:
        os.makedirs(kept, exist_ok=True)
        for name in os.listdir(kept):
            if os.path.islink(os.path.join(kept, name)):
                os.unlink(os.path.join(kept, name))         # relinked below
        shutil.rmtree(os.path.join(kept, 'lib'), ignore_errors=True)
    if os.path.exists(os.path.join(board_root, 'lib')):
        names = os.listdir(board_root)          # a bundle: take it whole
    else:
        names = [n for n in BOARD_FILES if os.path.exists(os.path.join(board_root, n))]
        os.mkdir(os.path.join(flash, 'lib'))
        import microdot
        os.symlink(os.path.dirname(microdot.__file__), os.path.join(flash, 'lib', 'microdot'))
    for name in names:
        if name != 'config.json':
            os.symlink(os.path.join(board_root, name), os.path.join(flash, name))
    config_src = os.environ.get('SIM_CONFIG') or os.path.join(SIM_DIR, 'config.json')
    if kept and os.path.exists(os.path.join(flash, 'config.json')):
        return flash
    if config_src != 'none':
        with open(config_src) as f:
            text = f.read()
        try:
            config = json.loads(text)
        except ValueError:
            config = None           # a broken config, as the test meant it
        if isinstance(config, dict):
            if not os.environ.get('SIM_CONFIG'):
                # the board captures at its camera's rate
                config['camera']['fps'] = max(1, round(args.fps))
            # the board serves on the port it is reached at (every port it
            # opens is --port here), so the URLs it gives out are right
            config['http_port'] = args.port
            text = json.dumps(config, indent=2)
        with open(os.path.join(flash, 'config.json'), 'w') as f:
            f.write(text)
    return flash


def provision(flash, image=None):
    """Put credentials on the flash as setup would (in a flash image only if
    it has none yet: a deployed board keeps its own); return (password,
    token), or None when none were put there (SIM_AUTH=none: a board that
    was never set up). A flash image's token is also written to IMG.token."""
    if os.environ.get('SIM_AUTH') == 'none':
        return None
    sys.path.insert(0, REPO)
    from firmware import auth       # the board's own file format
    import hashlib
    password = os.environ.get('SIM_PASSWORD') or auth.new_token()[:12]
    token = os.environ.get('SIM_TOKEN') or auth.new_token()
    salt = os.urandom(16)
    # SIM_KDF_ITERATIONS: a slower check, as on the board (tests of overlapping logins)
    iterations = int(os.environ.get('SIM_KDF_ITERATIONS') or auth.ITERATIONS)
    key = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)
    record = json.dumps(auth.record(salt, key, token, iterations))
    if image:
        os.makedirs(os.path.dirname(os.path.abspath(image)), exist_ok=True)
        with tempfile.NamedTemporaryFile('w', suffix='.json') as src:
            src.write(record)
            src.flush()
            put = subprocess.run([micropython_binary(), os.path.join(SIM_DIR, 'flashtool.py'),
                                  image, 'put-new', auth.CREDENTIALS_FILE, src.name],
                                 capture_output=True, text=True, check=True)
        if put.stdout.split()[-1] != 'written':
            return None             # set up before: it keeps its own
        # beside the image, for scripts: make ota ... TOKEN=$(cat IMG.token)
        with open(image + '.token', 'w') as f:
            f.write(token + '\n')
        return password, token
    with open(os.path.join(flash, auth.CREDENTIALS_FILE), 'w') as f:
        f.write(record)
    return password, token


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def board_env(args, flash):
    env = dict(os.environ)
    env.update({
        'SIM_DIR': SIM_DIR,
        'SIM_PORT': str(args.port),
        'SIM_SDCARD': '' if args.no_sdcard else os.path.abspath(args.sdcard),
        'SIM_FRAMES': os.path.abspath(args.frames),
        'SIM_FPS': str(args.fps),
        'SIM_FRAMES_ONCE': '1' if args.frames_once else '0',
        'SIM_CAMERA_API': args.camera_api,
        'SIM_NTP_PORT': str(args.ntp_port),
        'SIM_DNS_PORT': os.environ.get('SIM_DNS_PORT') or str(free_udp_port()),
        'SIM_FLASH': os.path.abspath(args.flash) if args.flash else '',
    })
    if os.environ.get('SIM_FAULTS'):
        env['SIM_FAULTS'] = os.path.abspath(os.environ['SIM_FAULTS'])
    env.pop('SIM_BOARD_COST', None)
    if args.board_cost:
        from sim import calibrate
        env['SIM_BOARD_COST'] = args.board_cost
        env['SIM_BOARD_COMPILED'] = calibrate.compiled_functions(REPO)
    return env


def serve_ntp():
    """An NTP server on a loopback UDP port, in a thread; silent while the
    fault "ntp_fail" is on. The board's DNS (tools/sim/network.py) sends
    pool.ntp.org here. Returns the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))

    def answer():
        while True:
            query, peer = sock.recvfrom(512)
            try:
                with open(os.environ.get('SIM_FAULTS', '')) as f:
                    if json.load(f).get('ntp_fail'):
                        continue
            except (OSError, ValueError):
                pass
            now = int(time.time()) + 2208988800             # NTP seconds
            reply = bytearray(48)
            reply[0], reply[1] = 0x24, 2                     # v4 server, stratum 2
            reply[32:36] = reply[40:44] = (now & 0xFFFFFFFF).to_bytes(4, 'big')
            reply[24:32] = query[40:48]                      # originate = their transmit
            sock.sendto(bytes(reply), peer)

    threading.Thread(target=answer, daemon=True).start()
    return sock.getsockname()[1]


def print_recorder_login(flash):
    """Print the recorder login the board made on its flash (firmware/nvr.py),
    once it is there (the board writes it as its app starts)."""
    if not flash:
        return                      # a flash image: GET /nvr shows it
    path = os.path.join(flash, 'nvr.json')
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                record = json.load(f)
            print('Recorders (RTSP, ONVIF, snapshots; view only): user %s, password %s'
                  % (record['user'], record['password']), flush=True)
            return
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)


def wait_for_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main(argv=None):
    use_venv()
    args = parse_args(argv)
    board_root = os.path.abspath(os.environ.get('SIM_BOARD_ROOT', REPO))
    if not args.no_sdcard:
        os.makedirs(os.path.dirname(os.path.abspath(args.sdcard)), exist_ok=True)
    if args.flash:
        flash = None                # the image is the board's root
    else:
        flash = make_flash(args, board_root)
    credentials = provision(flash, args.flash)
    args.ntp_port = serve_ntp()
    cmd = [micropython_binary(), '-X', 'heapsize=' + args.heap,
           os.path.join(SIM_DIR, 'run_board.py')]
    args.board_cost = None
    if args.board_speed:
        from sim import calibrate       # tools/sim/calibrate.py (this is CPython)
        measured = calibrate.from_env() or calibrate.calibrate(micropython_binary())
        for line in calibrate.describe(measured):
            print(line, flush=True)
        args.board_cost = calibrate.cost_value(measured)
        # real-time priority: this machine's other work is not board time
        cmd = (calibrate.realtime_prefix() if measured['realtime'] else []) + cmd
    port = None
    if args.serial:
        sys.path.insert(0, SIM_DIR)
        from serialport import SerialPort
        port = SerialPort()
        print('Serial: ' + port.path, flush=True)
    stopping = []

    def stop(signum, frame):
        stopping.append(time.monotonic())
        if proc.poll() is None:
            # on the serial port Ctrl-C only interrupts: power off instead
            proc.send_signal(signal.SIGTERM if port else signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    mode = 'friendly'
    try:
        while True:
            env = board_env(args, flash)
            if port:
                env['SIM_SERIAL'] = mode
                stdin_r, stdin_w = port.stdin_pipe()
                # a Ctrl-C before MicroPython is up is lost, as during the ESP32's ROM boot
                proc = subprocess.Popen(['sh', '-c', 'trap "" INT; exec "$0" "$@"'] + cmd,
                                        cwd=flash or REPO, env=env, stdin=stdin_r,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                os.close(stdin_r)
                port.attach(proc, stdin_w)
                console = threading.Thread(target=port.from_board,
                                           args=(proc.stdout.fileno(),), daemon=True)
                console.start()
            else:
                proc = subprocess.Popen(cmd, cwd=flash, env=env)
            if wait_for_port(args.port, proc):
                print('Dashboard: http://127.0.0.1:%d/' % args.port, flush=True)
                if credentials:
                    print('Log in with the password %s (scripts: Authorization: Bearer %s)'
                          % credentials, flush=True)
                    print_recorder_login(flash)
                    if args.flash:
                        print('API token kept in %s.token' % args.flash, flush=True)
                    credentials = None      # once: setup shows them once too
                elif flash and not os.path.exists(os.path.join(flash, 'auth.json')):
                    print('Not set up: open http://127.0.0.1:%d/setup' % args.port,
                          flush=True)
            while True:
                try:
                    status = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    # a board that has not stopped 5 s after the interrupt
                    # (one out of memory may never see it) is cut off hard
                    if stopping and time.monotonic() - stopping[0] > 5:
                        proc.kill()
            if port:
                console.join(timeout=5)
                proc.stdout.close()
                os.close(stdin_w)
            if stopping:
                break
            if port and status in SOFT_RESET_STATUS:
                mode = SOFT_RESET_STATUS[status]
                continue
            if status not in RESTART_STATUS:
                break
            mode = 'friendly'
            print('simulator: board reset, booting again', flush=True)
            if port:
                port.write(b'\r\nets Jun  8 2016 00:22:57\r\n\r\nrst:0xc (SW_CPU_RESET)\r\n')
    finally:
        if flash and not os.environ.get('SIM_FLASH_DIR'):
            shutil.rmtree(flash, ignore_errors=True)
    return 0 if stopping else status


if __name__ == '__main__':
    sys.exit(main())

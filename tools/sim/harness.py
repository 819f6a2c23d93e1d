"""Simulator only, never goes onto a board: the host-side harness that boots
the simulated board under MicroPython and talks to it the way users do
(HTTP, SSE, WebSocket, MJPEG, the card read with mtools). Tests (through
tests/conftest.py) and tools/bench.py import it from here."""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIMULATE = os.path.join(REPO, 'tools', 'simulate.py')
FRAMES = os.path.join(REPO, 'tools', 'sim', 'frames')
MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK='1')


# Ports come from below Linux's ephemeral range (32768 up), a block of its
# own for each parallel test worker: a port handed out is then never taken
# by some client's outgoing connection, nor by another worker, before the
# board binds it.
_PORT_BLOCK = 1000
_PORT_BLOCKS = 22                   # 10000-31999
_next_port = []
_BROWSER_REFUSED = (10080,)         # in Chromium's restricted ports (net/base/port_util.cc)


def _port_candidates():
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')
    if worker.startswith('gw') and worker[2:].isdigit():
        block = int(worker[2:]) % _PORT_BLOCKS
    else:
        block = os.getpid() % _PORT_BLOCKS
    base = 10000 + block * _PORT_BLOCK
    if not _next_port:
        _next_port.append(os.getpid() % _PORT_BLOCK)
    for _ in range(_PORT_BLOCK):
        _next_port[0] = (_next_port[0] + 1) % _PORT_BLOCK
        if base + _next_port[0] not in _BROWSER_REFUSED:
            yield base + _next_port[0]


def _free(kind):
    for port in _port_candidates():
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise OSError('no free loopback port in this worker\'s block')


def free_udp_port():
    return _free(socket.SOCK_DGRAM)


def free_udp_run(count):
    """The first of `count` consecutive free loopback UDP ports."""
    for _ in range(50):
        first = free_udp_port()
        if first + count > 65535:
            continue
        held = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(('127.0.0.1', port))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError('no run of %d free UDP ports' % count)


def sim_config():
    """The simulated board's default config.json, as a dict."""
    with open(os.path.join(REPO, 'tools', 'sim', 'config.json')) as f:
        return json.load(f)


def free_port():
    """A free TCP port on 127.0.0.1 that no other test worker hands out."""
    return _free(socket.SOCK_STREAM)


_calibration = []


def board_calibration():
    """This PC against the ESP32-CAM (tools/sim/calibrate.py), measured once
    for all the boards a test run starts at board speed."""
    if os.environ.get('SIM_BOARD_CALIBRATION'):
        return os.environ['SIM_BOARD_CALIBRATION']
    if not _calibration:
        from tools.sim import calibrate     # not tools/sim on sys.path: its stand-ins shadow the stdlib
        micropython = os.path.join(os.path.dirname(sys.executable), 'micropython')
        _calibration.append(json.dumps(calibrate.calibrate(micropython)))
    return _calibration[0]


class Board:
    """One simulated board process; start() boots it, stop() powers it off."""

    def __init__(self, tmp_path, sdcard='default', frames=FRAMES, fps=10,
                 camera_api='cnadler86', heap=None, config=None, port=None,
                 board_root=None, frames_once=False, sockets=None, board_id=None,
                 setup=True, flash=None, serial=False, credentials=None, rtsp=None,
                 onvif=False, board_speed=None):
        self.tmp = tmp_path
        self.rtsp_port = None
        port_map = {}
        if rtsp is not None:
            # RTSP on, at free loopback ports the board itself names (its
            # listener and the RTP/RTCP pairs it binds, reported to clients)
            config = dict(config if isinstance(config, dict) else sim_config())
            self.rtsp_port = free_port()
            rtp_port = free_udp_run(8)
            config['rtsp'] = dict({'on': True, 'port': self.rtsp_port, 'rtp_port': rtp_port},
                                  **rtsp)
            port_map[self.rtsp_port] = self.rtsp_port
            for port in range(rtp_port, rtp_port + 8):
                port_map[port] = port
        self.port = port or free_port()
        self.discovery_port = None
        if onvif:
            # ONVIF on (it needs RTSP); the board names its own HTTP port in
            # discovery replies, and WS-Discovery's 3702 is a free UDP port here
            config['onvif'] = {'on': True}
            config['http_port'] = self.port
            self.discovery_port = free_udp_port()
            port_map[3702] = self.discovery_port
        self.url = 'http://127.0.0.1:%d' % self.port
        self.ws_url = 'ws://127.0.0.1:%d/control' % self.port
        self.sdcard = str(tmp_path / 'sdcard.img') if sdcard == 'default' else sdcard
        self.faults_path = str(tmp_path / 'faults.json')
        self.log_path = str(tmp_path / 'board.log')
        self.args = ['--port', str(self.port), '--frames', frames, '--fps', str(fps),
                     '--camera-api', camera_api] + (['--frames-once'] if frames_once else [])
        self.args += ['--sdcard', self.sdcard] if self.sdcard else ['--no-sdcard']
        if heap:
            self.args += ['--heap', heap]
        self.flash = flash                  # a LittleFS2 image the board boots from
        if flash:
            self.args += ['--flash', flash]
        if serial:
            self.args += ['--serial']
        # at the ESP32-CAM's speed (README: How fast on a real board);
        # SIM_BOARD_SPEED=1 runs every board of a test run so
        if board_speed is None:
            board_speed = os.environ.get('SIM_BOARD_SPEED') == '1'
        self.board_speed = board_speed
        if board_speed:
            self.args += ['--board-speed']
        self.serial_port = None             # its path once started
        self.sensor_path = str(tmp_path / 'sensor.json')
        self.env = dict(os.environ, SIM_FAULTS=self.faults_path,
                        SIM_SENSOR_STATE=self.sensor_path)
        if config == 'none':
            self.env['SIM_CONFIG'] = 'none'     # a board without config.json
        elif config is not None:
            path = tmp_path / 'config.json'
            path.write_text(config if isinstance(config, str) else json.dumps(config))
            self.env['SIM_CONFIG'] = str(path)
        # tests boot the run's host bundle (tests/conftest.py), not the sources
        board_root = board_root or os.environ.get('SIM_TEST_BUNDLE')
        if board_root:
            self.env['SIM_BOARD_ROOT'] = board_root
        if port_map:
            self.env['SIM_PORT_MAP'] = ','.join('%d:%d' % item for item in port_map.items())
        if board_speed:
            self.env['SIM_BOARD_CALIBRATION'] = board_calibration()
        if sockets is not None:
            self.env['SIM_SOCKETS'] = str(sockets)     # lwIP's budget; 0: none
        if board_id is not None:
            self.env['SIM_BOARD_ID'] = board_id        # the MAC, 12 hex digits
        # set up (a password and an API token on its flash), or fresh from
        # the factory: setup=False serves only the setup portal
        if setup:
            # credentials: (password, token) of the board whose flash image this is
            self.password, self.token = credentials or ('pw-' + secrets.token_urlsafe(9),
                                                        secrets.token_urlsafe(18))
            self.env.update(SIM_PASSWORD=self.password, SIM_TOKEN=self.token)
        else:
            self.password = self.token = None
            self.env['SIM_AUTH'] = 'none'
        # the board's flash, kept across stop() and start() as on a board
        self.env['SIM_FLASH_DIR'] = str(tmp_path / ('flash-%d' % self.port))
        self.dns_port = free_udp_port()
        self.env['SIM_DNS_PORT'] = str(self.dns_port)
        self.proc = None
        self.log_start = 0

    def rtsp_url(self, token=True, path='/stream'):
        """The board's RTSP URL, with the API token in it unless token=False."""
        url = 'rtsp://127.0.0.1:%d%s' % (self.rtsp_port, path)
        return url + '?token=' + self.token if token and self.token else url

    def start(self, timeout=30, serving=True):
        """Boot; wait until it serves (or, serving=False, until its serial
        port is there: a blank or safe-mode flash serves nothing)."""
        ready = 'Dashboard: http://' if serving else 'Serial: '
        self.log = open(self.log_path, 'ab')
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen([sys.executable, SIMULATE] + self.args, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('board exited:\n' + self.output())
            if ready in self.output()[self.log_start:] and (
                    self.rtsp_port is None or 'rtsp: serving' in self.output()[self.log_start:]) and (
                    self.discovery_port is None
                    or 'onvif: discovery' in self.output()[self.log_start:]):
                if '--serial' in self.args:
                    self.serial_port = self.output()[self.log_start:].split(
                        'Serial: ', 1)[1].split()[0]
                return self
            time.sleep(0.05)
        raise RuntimeError('board did not come up:\n' + self.output())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def vm_pids(self):
        """The pid of the MicroPython process (the board's CPU), as a list:
        empty between a reset and the next boot (a loaded host makes that
        gap long), so this waits up to 10 s for it."""
        deadline = time.monotonic() + 10
        while True:
            with open('/proc/%d/task/%d/children' % (self.proc.pid, self.proc.pid)) as f:
                children = [int(pid) for pid in f.read().split()]
            if children or self.proc.poll() is not None or time.monotonic() > deadline:
                return children
            time.sleep(0.01)

    def vm_state(self):
        """What the board's VM process is doing, for a failure message: each
        thread's state (R running, S sleeping), where it waits, its CPU time."""
        found = []
        for pid in self.vm_pids():
            for tid in sorted(os.listdir('/proc/%d/task' % pid)):
                try:
                    stat = open('/proc/%d/task/%s/stat' % (pid, tid)).read()
                    fields = stat.rsplit(')', 1)[1].split()
                    wchan = open('/proc/%d/task/%s/wchan' % (pid, tid)).read()
                except OSError:
                    continue
                found.append('thread %s: %s in %s, cpu %.2f s' % (
                    tid, fields[0], wchan or '-', (int(fields[11]) + int(fields[12]))
                    / os.sysconf('SC_CLK_TCK')))
        return '; '.join(found) or 'no VM process'

    def power_cut(self):
        """SIGKILL the MicroPython process itself: no clean-up runs at all.
        Returns the simulator's exit status, so a test can show the cut fired."""
        deadline = time.monotonic() + 30
        while True:
            for child in self.vm_pids():    # none yet: the cut lands on the boot that comes
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass                    # it ended by itself meanwhile (a reset)
            try:
                code = self.proc.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                # it was resetting as the cut came (exit status 75, a boot
                # follows): the cut lands on that boot
                if time.monotonic() > deadline:
                    raise
        self.log.close()
        self.proc = None
        return code         # tools/simulate.py's exit status: 247 for SIGKILL

    def output(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def set_faults(self, **faults):
        # write then rename: the board never reads half a file
        tmp = self.faults_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(faults, f)
        os.replace(tmp, self.faults_path)    # a new inode: the board re-reads it
        time.sleep(0.05)    # the board looks at the file at most every 20 ms

    def sensor(self):
        """The simulated camera driver's own settings (what reached the
        driver, in its API's names and numbers), as its last change left them."""
        with open(self.sensor_path) as f:
            return json.load(f)

    # --- clients -------------------------------------------------------
    def auth_headers(self):
        """The headers a script sends to be let in: the API token (none while
        the board has no credentials). Every client below sends them; a
        raw-socket test adds raw_auth() to its request head."""
        return {'Authorization': 'Bearer ' + self.token} if self.token else {}

    def login(self, client=None, address=None):
        """An httpx.Client logged in through the login form (its session
        cookie set), from a loopback address of choice (e.g. 127.0.0.2)."""
        client = client or httpx.Client(base_url=self.url, timeout=10, transport=(
            httpx.HTTPTransport(local_address=address) if address else None))
        reply = client.post('/login', data={'password': self.password})
        assert reply.status_code == 302, (reply.status_code, reply.text)
        return client

    def raw_auth(self):
        """auth_headers() as request-head lines, each ending in CRLF."""
        return ''.join('%s: %s\r\n' % item for item in self.auth_headers().items())

    def http(self):
        # 30 s, as command(): a starved board on a loaded host answers late
        return httpx.Client(base_url=self.url, timeout=30, headers=self.auth_headers())

    def ws(self):
        return ws_connect(self.ws_url, open_timeout=10, close_timeout=2,
                          additional_headers=self.auth_headers())

    def command(self, ws, timeout=30, **cmd):
        # 30 s: beside two CPU hogs a board once took over 15 s to answer a 'set'
        ws.send(json.dumps(cmd))
        return json.loads(ws.recv(timeout=timeout))

    def status(self):
        with self.ws() as ws:
            return self.command(ws, cmd='status')['status']

    def wait_for(self, predicate, timeout=20, interval=0.1):
        """Poll the board's status until predicate(status) holds."""
        deadline = time.monotonic() + timeout
        status = None
        ws = None           # one connection for all the asking (a handshake each was costly)
        try:
            while True:
                try:
                    ws = ws or self.ws().__enter__()    # closed in finally
                    status = self.command(ws, cmd='status')['status']
                except (OSError, ConnectionError, WebSocketException, AssertionError,
                        TimeoutError):
                    # rebooting, or full for a moment: ask again (a handshake the
                    # board refuses can trip an assert inside websockets' sync client)
                    ws = _closed(ws)
                else:
                    if predicate(status):
                        return status
                if time.monotonic() > deadline:
                    raise AssertionError('status never matched: %r' % status)
                time.sleep(interval)
        finally:
            _closed(ws)

    def frames_analysed(self):
        """How many frames motion detection has looked at (GET /motion)."""
        with self.http() as client:
            return client.get('/motion').json()['analysed']

    def wait_analysed(self, count, timeout=60):
        """Wait until motion detection has looked at `count` more frames: a
        check that something did NOT happen waits for the work, not a time."""
        target = self.frames_analysed() + count
        deadline = time.monotonic() + timeout
        while self.frames_analysed() < target:
            assert time.monotonic() < deadline, 'motion detection stalled'
            time.sleep(0.1)

    def wait_frame(self, timeout=20):
        with self.http() as client:
            deadline = time.monotonic() + timeout
            last = None
            while True:
                try:
                    last = client.get('/snapshot.jpg').status_code
                    if last == 200:
                        return
                except httpx.TimeoutException as exc:
                    last = repr(exc)    # a board at board speed on a loaded host answers late
                assert time.monotonic() < deadline, 'no camera frame (last answer: %s; %s)' % (
                    last, self.vm_state())
                time.sleep(0.1)

    # --- the card, read as a card reader does ------------------------------
    def card_files(self, raw=False, settled=False):
        """{name: picture} of the snapshots on the card image (in /snaps and
        its numbered folders), read with mtools; our JPEG comment is taken
        out unless raw, so a file can be compared with the camera frame it
        came from. settled: read while the board runs, so only complete
        files (no `.part`), and a name the board renames or deletes between
        the listing and the copy is left out."""
        try:
            paths = card_paths(self.sdcard, '/snaps')
        except AssertionError:
            if settled:
                return {}           # a folder was being extended: ask again
            raise
        if paths is None:
            return {}
        paths = [p for p in paths if not p.rsplit('/', 1)[1].startswith('.')]
        if settled:
            paths = [p for p in paths if not p.endswith('.part')]
        files = {}
        # one mcopy for the whole folder (one per file took seconds on a full card)
        with tempfile.TemporaryDirectory() as copy:
            out = subprocess.run(['mcopy', '-i', self.sdcard, '-s', '-n', '::/snaps', copy],
                                 capture_output=True, text=True, env=MTOOLS_ENV)
            if out.returncode != 0 and not settled:
                raise AssertionError('mcopy failed: %s%s' % (out.stdout, out.stderr))
            for path in paths:
                name = path.rsplit('/', 1)[1]
                assert settled or name not in files, 'one name in two places: %s' % path
                try:
                    with open(copy + path, 'rb') as f:
                        files[name] = f.read()
                except OSError:
                    if not settled:
                        raise       # listed, and not there a moment later
        return files if raw else {n: strip_comment(data) for n, data in files.items()}

    def card_read(self, path):
        return subprocess.run(['mcopy', '-i', self.sdcard, '-n', '::' + path, '-'],
                              capture_output=True, check=True, env=MTOOLS_ENV).stdout


def _closed(ws):
    # close a client WebSocket whatever state it is in; None
    if ws is not None:
        try:
            ws.close()
        except Exception:
            pass


def seq_of(name):
    """A card file's number: motion-20261207-001933-1700.jpg -> 1700 (the
    number grows past four digits)."""
    return int(name.rsplit('-', 1)[1].split('.', 1)[0])


def folder_of(name):
    """The numbered folder a snapshot or clip lies in (firmware/cardlayout.py)."""
    return '%04d' % (seq_of(name) // 100)


def card_paths(image, folder):
    """Paths of the files under folder (and its subfolders) on a card image,
    read with mtools; None when the card has no such folder yet."""
    out = subprocess.run(['mdir', '-i', image, '-/', '-b', '::' + folder],
                         capture_output=True, text=True, env=MTOOLS_ENV)
    if out.returncode != 0:
        # mdir -/ fails on an empty folder, where a plain mdir lists nothing
        out = subprocess.run(['mdir', '-i', image, '-b', '::' + folder],
                             capture_output=True, text=True, env=MTOOLS_ENV)
    if out.returncode != 0:
        # only a card without the folder yet is empty; anything else (no
        # image, not FAT, a broken folder) fails the test that asked
        root = subprocess.run(['mdir', '-i', image, '-b', '::/'],
                              capture_output=True, text=True, env=MTOOLS_ENV)
        if root.returncode != 0:
            raise AssertionError('card image unreadable: %s%s' % (root.stdout, root.stderr))
        entries = [line.rstrip('/').rsplit('/', 1)[-1].lower() for line in root.stdout.split()]
        if folder.strip('/').lower() in entries:
            raise AssertionError('::%s unreadable: %s%s' % (folder, out.stdout, out.stderr))
        return None
    return [line[2:] for line in out.stdout.split() if line and not line.endswith('/')]


def strip_comment(jpeg):
    """The JPEG without the COM segment the board puts right after SOI."""
    if jpeg[:4] == b'\xff\xd8\xff\xfe':
        return jpeg[:2] + jpeg[4 + int.from_bytes(jpeg[4:6], 'big'):]
    return jpeg


def frame_set():
    """The bytes of every frame the simulated camera replays."""
    return {open(os.path.join(FRAMES, n), 'rb').read() for n in os.listdir(FRAMES)}


class SSE:
    """Reads `event: status` objects (and heartbeat comments) from /events."""

    def __init__(self, board, timeout=30):
        self.client = httpx.Client(base_url=board.url, timeout=timeout,
                                   headers=board.auth_headers())
        self.cm = self.client.stream('GET', '/events')
        self.response = self.cm.__enter__()
        self.lines = self.response.iter_lines()

    def next_status(self):
        event = None
        for line in self.lines:
            if line.startswith('event:'):
                event = line.split(':', 1)[1].strip()
            elif line.startswith('data:') and event == 'status':
                return json.loads(line.split(':', 1)[1])
        raise AssertionError('stream ended')

    def until(self, predicate, limit=50):
        for _ in range(limit):
            status = self.next_status()
            if predicate(status):
                return status
        raise AssertionError('no matching status in %d events' % limit)

    def next_event(self, name):
        """The data of the next `event: NAME` (a JSON object), or None if the
        stream ends first."""
        for line in self.lines:
            if line == 'event: ' + name:
                return json.loads(next(self.lines)[5:])
        return None

    def close(self):
        self.cm.__exit__(None, None, None)
        self.client.close()


def read_mjpeg(board, seconds, frames_out, slow=False, path='/stream'):
    """Collect whole JPEG parts from the board's /stream for `seconds`."""
    sock = socket.socket()
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(('127.0.0.1', board.port))
    sock.settimeout(10)
    sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                  % (path, board.raw_auth())).encode())
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += sock.recv(4096)
    head, buf = buf.split(b'\r\n\r\n', 1)
    assert b'multipart/x-mixed-replace; boundary=frame' in head
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if slow:
            time.sleep(0.2)
        chunk = sock.recv(1024 if slow else 65536)
        if not chunk:
            break
        buf += chunk
        while True:
            start = buf.find(b'--frame\r\n')
            end = buf.find(b'\r\n\r\n', start)
            if start < 0 or end < 0:
                break
            headers = buf[start:end].decode()
            length = int(headers.split('Content-Length: ')[1].split('\r\n')[0])
            if len(buf) < end + 4 + length:
                break
            frames_out.append(buf[end + 4:end + 4 + length])
            buf = buf[end + 4 + length:]
    sock.close()

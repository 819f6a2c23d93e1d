"""Simulator only, never goes onto a board: the board's USB serial port (a
CP2102 on the ESP32-CAM-MB) as a pseudo-terminal on the host.

Whoever opens `path` (mpremote, a terminal) talks to the board's console.
The port outlives the board process, as the USB bridge outlives the ESP32's
resets. On the way in, a Ctrl-C byte also raises SIGINT in the board (the
ESP32's UART interrupt turns Ctrl-C into KeyboardInterrupt while code runs),
but only while the board's main thread waits in poll, select or sleep
(stopped to look): the unix port raises KeyboardInterrupt from inside its
signal handler, so one landing in malloc or the garbage collector wedges
the process (a stdio lock held for ever, the heap left locked), where the
ESP32 raises it at the VM's next check. Code that never waits is
interrupted after 20 s all the same.
On the way out, "\\n" becomes "\\r\\n" (the ESP32's cooked stdout), and output
nobody reads is dropped, as a UART does, so the board never blocks on it.
"""
import ctypes
import errno
import os
import platform
import select
import signal
import sys
import threading
import time
import tty

# the syscalls a thread sleeps in: poll, select, nanosleep and their kin
_WAITS = {'x86_64': {7, 23, 35, 230, 232, 270, 271, 281},
          'aarch64': {22, 72, 73, 101, 115}}.get(platform.machine(), set())


class SerialPort:
    def __init__(self, log=None):
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)             # no echo, no line editing: a serial line
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.log = log or sys.stdout.buffer
        self.board = None                   # the running board process
        self.board_in = None                # the write end of its stdin pipe
        self._last = b''
        self._reader_gone = False
        threading.Thread(target=self._to_board, daemon=True).start()

    def attach(self, proc, stdin_w):
        """A (re)booted board: its stdin pipe's write end and its process."""
        self.board, self.board_in = proc, stdin_w

    def stdin_pipe(self):
        """(read end for the board, write end for us); the board's end is
        non-blocking so its REPL can read what has arrived."""
        r, w = os.pipe()
        os.set_blocking(r, False)
        return r, w

    def _to_board(self):
        while True:
            select.select([self.master], [], [])
            try:
                data = os.read(self.master, 4096)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EIO):   # EIO: nobody has it open
                    select.select([], [], [], 0.05)
                    continue
                raise
            board, board_in = self.board, self.board_in
            if board is None or board.poll() is not None:
                continue                    # off or rebooting: the bytes are lost
            if b'\x03' in data:
                _interrupt(board)
            try:
                os.write(board_in, data)
            except OSError:
                pass

    def from_board(self, stdout):
        """Copy the board's console (a pipe) to the port and the log, until
        the board closes it."""
        while True:
            data = os.read(stdout, 4096)
            if not data:
                return
            self.log.write(data)
            self.log.flush()
            self.write(data)

    def write(self, data):
        """Console bytes onto the port, "\\n" cooked to "\\r\\n"."""
        head = b''
        if self._last == b'\r' and data[:1] == b'\n':
            head, data = b'\n', data[1:]          # "\r" ended the last chunk
        cooked = head + data.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
        self._last = data[-1:] or self._last
        while cooked:
            try:
                cooked = cooked[os.write(self.master, cooked):]
                self._reader_gone = False
            except OSError:
                # full: a reader (mpremote) drains it soon; with none, drop
                # the bytes as a UART does, waiting only the first time
                if self._reader_gone or not select.select([], [self.master], [], 1)[1]:
                    self._reader_gone = True
                    return


def _interrupt(board):
    """SIGINT to the board while its main thread sleeps in a syscall: the
    board is stopped to look, so it cannot wake in between (20 s at most: on
    a loaded host the board may be runnable at every look for seconds)."""
    deadline = time.monotonic() + 20
    try:
        while _WAITS and time.monotonic() < deadline and board.poll() is None:
            board.send_signal(signal.SIGSTOP)
            try:
                call = _syscall(board.pid)
                if call is None or call in _WAITS:
                    _to_main_thread(board.pid, signal.SIGINT)   # taken when it runs again
                    return
            finally:
                board.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        if board.poll() is None:
            sys.stderr.write('simulator: the board never waited in 20 s; Ctrl-C sent anyway\n')
        _to_main_thread(board.pid, signal.SIGINT)
    except OSError:
        pass            # the board went meanwhile


def _to_main_thread(pid, sig):
    # a signal to the process may be taken by any thread, e.g. the simulated
    # watchdog's, which a KeyboardInterrupt would end (the ESP32's is hardware)
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), 'tgkill', None)
    if tgkill is None:
        os.kill(pid, sig)
    elif tgkill(pid, pid, sig) != 0:
        raise OSError(ctypes.get_errno(), 'tgkill')


def _syscall(pid):
    """The syscall the stopped process's main thread waits in, -1 for none
    (or not stopped yet: a loaded host may not run it for a while), None when
    this host cannot tell."""
    for _ in range(200):
        try:
            with open('/proc/%d/stat' % pid) as f:
                stopped = f.read().rsplit(')', 1)[1].split()[0] == 'T'
            if stopped:
                with open('/proc/%d/syscall' % pid) as f:
                    call = f.read().split()[0]
                return int(call) if call.lstrip('-').isdigit() else -1
        except (OSError, IndexError, ValueError):
            return None
        time.sleep(0.001)
    return -1

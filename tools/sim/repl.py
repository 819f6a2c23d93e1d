# Simulator only, never goes onto a board: the board's REPL on its USB serial
# port, as MicroPython's shared/runtime/pyexec.c runs it on the ESP32: the
# friendly REPL, the raw REPL and raw-paste mode that mpremote speaks, Ctrl-D
# for a soft reset. stdin is a non-blocking pipe from tools/sim/serialport.py,
# which also turns Ctrl-C into SIGINT (the ESP32's UART interrupt) and "\n"
# into "\r\n" on the way out.
import select
import sys

SOFT_RESET = 76         # exit status: soft reset, then the friendly REPL
SOFT_RESET_RAW = 77     # exit status: soft reset, then the raw REPL (main.py skipped)
_WINDOW = 2048          # raw-paste flow-control window (0x0800: no "\n" byte in it)
_BANNER = ('MicroPython v1.24.1 on 2024-11-29; ESP32CAM module (simulated) with ESP32\r\n'
           'Type "help()" for more information.\r\n')


class _Stdin:
    def __init__(self):
        self.stream = sys.stdin.buffer
        self.poll = select.poll()
        self.poll.register(self.stream, select.POLLIN)
        self.buf = bytearray(4096)
        self.pending = b''
        self.pos = 0

    def byte(self):
        while self.pos >= len(self.pending):
            try:
                self.poll.poll(-1)
                n = self.stream.readinto(self.buf)
            except KeyboardInterrupt:
                continue        # the Ctrl-C byte itself follows in the stream
            if n == 0:
                raise SystemExit(0)     # the serial port went away: power off
            if n:
                self.pending = bytes(self.buf[:n])
                self.pos = 0
        c = self.pending[self.pos]
        self.pos += 1
        return c


def _out(text):
    sys.stdout.write(text)


def _execute(source, namespace, mode, between=''):
    """Compile and run, printing `between` after the output and before the
    error; True for a soft reset. SystemExit from machine.reset() (status
    75) leaves the process; any other SystemExit is a soft reset, as on the
    board."""
    error = None
    try:
        exec(compile(source, '<stdin>', mode), namespace)
    except SystemExit as exc:
        if exc.args and exc.args[0] == 75:
            raise
        return True
    except BaseException as exc:        # KeyboardInterrupt included: shown, not fatal
        error = exc
    _out(between)
    if error is not None:
        sys.print_exception(error)
    return False


def _raw(stdin, namespace):
    """The raw REPL; returns the exit status of a soft reset, or None when
    Ctrl-B asks for the friendly REPL."""
    _out('raw REPL; CTRL-B to exit\r\n')
    while True:
        _out('>')
        line = bytearray()
        while True:
            c = stdin.byte()
            if c == 1:
                if len(line) == 2 and line[0] == 5 and line[1] == 65:
                    return_code = _raw_paste(stdin, namespace)
                    if return_code:
                        return return_code
                    line = None
                    break
                _out('raw REPL; CTRL-B to exit\r\n>')
                line = bytearray()
            elif c == 2:
                _out('\r\n')
                return None
            elif c == 3:
                line = bytearray()
            elif c == 4:
                break
            else:
                line.append(c)
        if line is None:
            continue
        _out('OK')
        if not line:
            _out('\r\n')
            return SOFT_RESET_RAW
        reset = _execute(bytes(line), namespace, 'exec', '\x04')
        _out('\x04')
        if reset:
            return SOFT_RESET_RAW


def _raw_paste(stdin, namespace):
    # pyexec's raw-paste: a window of bytes, "\x01" for each further window
    sys.stdout.buffer.write(b'R\x01' + bytes((_WINDOW & 0xff, _WINDOW >> 8)))
    source = bytearray()
    remain = _WINDOW
    while True:
        c = stdin.byte()
        if c == 4 or c == 3:
            _out('\x04')
            if c == 3:
                return None
            break
        source.append(c)
        remain -= 1
        if remain == 0:
            _out('\x01')
            remain = _WINDOW
    reset = _execute(bytes(source), namespace, 'exec', '\x04')
    _out('\x04')
    return SOFT_RESET_RAW if reset else None


def _friendly(stdin, namespace):
    """The friendly REPL; returns the soft-reset status, or None for Ctrl-A."""
    _out(_BANNER)
    block = []
    while True:
        _out('... ' if block else '>>> ')
        line = bytearray()
        while True:
            c = stdin.byte()
            if c == 1 and not line and not block:
                _out('\r\n')
                return None
            if c == 2 and not line:
                _out('\r\n' + _BANNER)
                break
            if c == 3:
                _out('\r\n')
                block = []
                line = None
                break
            if c == 4 and not line and not block:
                _out('\r\n')
                return SOFT_RESET
            if c in (8, 127):
                if line:
                    line.pop()
                    _out('\b \b')
                continue
            if c == 13 or c == 10:
                _out('\r\n')
                break
            if c >= 32:
                line.append(c)
                sys.stdout.buffer.write(bytes((c,)))
        if line is None:
            continue
        text = line.decode()
        if block or text.rstrip().endswith(':'):
            block.append(text)
            if text.strip():
                continue
            text = '\n'.join(block) + '\n'
            block = []
        if not text.strip():
            continue
        if _execute(text, namespace, 'single'):
            return SOFT_RESET


def run(namespace, raw=False):
    """Serve the REPL until a soft reset; returns its exit status."""
    stdin = _Stdin()
    while True:
        try:
            status = _raw(stdin, namespace) if raw else _friendly(stdin, namespace)
        except KeyboardInterrupt:
            continue        # a Ctrl-C between lines only starts the prompt again
        if status:
            _out('MPY: soft reboot\r\n')
            return status
        raw = not raw

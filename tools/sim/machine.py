# Simulator only, never goes onto a board: the board's machine module on a PC.
# SDCard is a FAT image file as a block device; Pin, PWM, WDT, RTC and reset stand in.
from umachine import *  # noqa: F401,F403  the unix port's own machine functions
import os
import sys
import time
import utime
import boardspeed
import simctl

_BLOCK = 512
_EIO = -5
# What a transfer costs on the board, in the call (the VM waits). The heap is
# in PSRAM, which the SD host cannot DMA from, so ESP-IDF moves one block per
# command through a bounce buffer: per block, a command and its overhead, 512
# bytes at 20 MHz (~205 us on one data line, ~51 us on four) and, for a write,
# the card programming it (busy), typically half a millisecond. At least that.
_COMMAND_US = 100
_BLOCK_US_1BIT = 205
_WRITE_BUSY_US = 500
_open_images = {}       # one handle per image, however often it is remounted
_live_hosts = []        # slots whose SD host an SDCard holds


class SDCard:
    """machine.SDCard(slot=1, width=1) backed by the image file SIM_SDCARD.

    As on the ESP32 (ports/esp32/machine_sdcard.c), the constructor sets up
    the SD host, which has one instance at a time: a second SDCard for the
    same slot while the first is alive fails in sdmmc_host_init() with
    OSError(-259, 'ESP_ERR_INVALID_STATE') until the first is deinit()ed.
    The card itself is only talked to when mounted (ioctl INIT), so a
    missing card makes vfs.mount() fail, not the constructor."""

    def __init__(self, slot=1, width=1, sim_ignore_faults=False, **kwargs):
        path = simctl.env('SIM_SDCARD')
        # the simulator's own formatting tool (run_board.py) is not the board
        if not sim_ignore_faults:
            if slot in _live_hosts:
                raise OSError(-259, 'ESP_ERR_INVALID_STATE')
            _live_hosts.append(slot)
        self.slot = slot
        self.block_us = _BLOCK_US_1BIT // (4 if width == 4 else 1)
        self.live = not sim_ignore_faults
        self.path = path
        self.ignore_faults = sim_ignore_faults
        if path and path not in _open_images:
            _open_images[path] = open(path, 'r+b')
        self.file = _open_images.get(path)
        self.present = False                # as last seen, for _in_finaliser()
        self.blocks = 0
        if self.file:
            self.file.seek(0, 2)
            self.blocks = self.file.tell() // _BLOCK

    def deinit(self):
        if self.live:
            self.live = False
            _live_hosts.remove(self.slot)

    def _present(self):
        if not self.file:
            return False
        self.present = self.ignore_faults or not (
            simctl.fault('sd_absent') or simctl.fault('sd_removed') or _pulled())
        return self.present

    def _check(self, block, buf):
        if not self.live and not self.ignore_faults:
            raise OSError(5)    # deinit()ed: the host is gone
        if not self._present():
            raise OSError(5)    # EIO: the card left the slot
        if block * _BLOCK + len(buf) > self.blocks * _BLOCK:
            raise OSError(5)

    # A failed transfer is a return value, not an exception, as from the C
    # driver (ports/esp32/machine_sdcard.c): FatFs sees a disk error and
    # answers EIO. The driver returns True/False, which the board's VfsFat
    # reads as 0/-EIO; this unix port's VfsFat reads only ints, so here None
    # and -EIO, the same to FatFs.
    def readblocks(self, block, buf, offset=0):
        if _in_finaliser():
            failed = self._raw(block * _BLOCK + offset)
            if not failed:
                self.file.readinto(buf)
            return failed
        try:
            self._check(block, buf)
        except OSError:
            return _EIO
        self._transfer_time(buf, 0)
        self.file.seek(block * _BLOCK + offset)
        self.file.readinto(buf)

    def _transfer_time(self, buf, busy_us):
        if not self.ignore_faults:
            blocks = (len(buf) + _BLOCK - 1) // _BLOCK
            _hold_us(blocks * (_COMMAND_US + self.block_us + busy_us))

    def _raw(self, at):
        # the C driver allocates nothing: a file closed by the GC reaches the
        # card as it is now (no faults but presence: the fault file cannot be
        # read); -EIO, or None with the image at `at`
        if not (self.live and self.present):
            return _EIO
        self.file.seek(at)

    def writeblocks(self, block, buf, offset=0):
        if _in_finaliser():
            failed = self._raw(block * _BLOCK + (offset or 0))
            if not failed:
                self.file.write(buf)
            return failed
        try:
            self._write(block, buf, offset)
        except OSError:
            return _EIO

    def _write(self, block, buf, offset):
        self._check(block, buf)
        if self.ignore_faults:
            pass
        elif simctl.fault('sd_write_error'):
            raise OSError(5)
        pull = None if self.ignore_faults else simctl.fault('sd_pull_after_writes')
        if pull is not None:
            global _pull, _pull_writes
            if pull != _pull:
                _pull = pull        # a new [n, tag]: count again from here
                _pull_writes = 0
            _pull_writes += 1
            if _pull_writes > pull[0]:
                raise OSError(5)    # the card left the slot before this write
        self._fail_after_writes()
        cut = None if self.ignore_faults else simctl.fault('sd_cut_after_writes')
        if cut is not None:
            global _writes
            _writes += 1
            if _writes > cut:
                _power_cut()
        rate = None if self.ignore_faults else simctl.fault('sd_bytes_per_s')
        if rate:
            # A slow card. ESP-IDF's sdmmc_write_sectors() waits in the call
            # until the card has taken the data, and MicroPython's writeblocks()
            # holds the VM meanwhile: on the board the event loop stops for each
            # block write, for that write's time and no longer. So the throttle
            # is here, per write: the firmware's await between chunks is what
            # lets other tasks run, as on the board.
            _hold_us(int(len(buf) * 1000000 / rate))
        else:
            self._transfer_time(buf, _WRITE_BUSY_US)
        self.file.seek(block * _BLOCK + (offset or 0))
        self.file.write(buf)

    def _fail_after_writes(self):
        # fault "sd_glitch_after_writes": N block writes succeed from when it
        # is switched on, the next one fails (EIO), the later ones succeed
        # again: a transient error in the middle of a file
        global _writes_while_glitching
        after = None if self.ignore_faults else simctl.fault('sd_glitch_after_writes')
        if after is None:
            _writes_while_glitching = 0
            return
        _writes_while_glitching += 1
        if _writes_while_glitching == after + 1:
            raise OSError(5)

    def ioctl(self, op, arg):
        if op == 1:             # init: talk to the card (vfs.mount does this)
            return 0 if self._present() else -1
        if op == 4:             # block count
            return self.blocks
        if op == 5:             # block size
            return _BLOCK
        if op == 3:             # sync
            self.file.flush()
        return 0


def _hold_us(us):
    # a spin, not a sleep: the serial port's Ctrl-C goes in only while the
    # board sleeps, never inside FatFs (the ESP32's driver is C, no Python).
    # Board ticks: while the fault jump_s runs the board ahead, this is quick.
    # At board speed the simulator has real-time priority, where a spin
    # would starve every other process on its core: it sleeps (the VM is held alike)
    if boardspeed.enabled:
        time.sleep_us(us)
        return
    start = time.ticks_us()
    while time.ticks_diff(time.ticks_us(), start) < us:
        pass


def _in_finaliser():
    # the GC runs finalisers (a file's close) with the heap locked
    try:
        bytearray(1)
    except MemoryError:
        return True
    return False


_writes = 0
_pull = None            # the fault "sd_pull_after_writes": [n, tag]
_pull_writes = 0


def _pulled():
    # pulled after n block writes: gone for reads too, until the fault is cleared
    pull = simctl.fault('sd_pull_after_writes')
    return pull is not None and pull == _pull and _pull_writes > pull[0]
_writes_while_glitching = 0


def _power_cut():
    # a hard stop between two block writes: no exception, no clean-up
    pid = open(simctl.env('SIM_HOST', '') + '/proc/self/stat').read().split()[0]
    os.system('kill -9 ' + pid)


def _pwm_int(value, low, high, what):
    # as the esp32 port's machine_pwm.c: mp_obj_get_int() refuses a float
    # (TypeError), then the range is checked (ValueError)
    if not isinstance(value, int):
        raise TypeError("can't convert %s to int" % type(value).__name__)
    if not low <= value <= high:
        raise ValueError('%s must be from %d to %d' % (what, low, high))
    return value


class PWM:
    def __init__(self, pin, freq=5000, duty=0):
        self.pin = pin
        self._freq = _pwm_int(freq, 1, 40000000, 'frequency')
        self._duty = _pwm_int(duty, 0, 1023, 'duty')

    def duty(self, value=None):
        if value is None:
            return self._duty
        self._duty = _pwm_int(value, 0, 1023, 'duty')

    def freq(self, value=None):
        if value is None:
            return self._freq
        self._freq = _pwm_int(value, 1, 40000000, 'frequency')

    def deinit(self):
        pass


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, number, mode=-1, pull=-1, value=None):
        self.number = number
        self.mode = mode
        self.pull = pull
        self._value = value or 0

    def value(self, v=None):
        if v is None:
            # an input with its pull-up reads 1 unless something holds it
            # low: the fault "pins_low", a list of pin numbers
            if self.mode == Pin.IN and self.pull == Pin.PULL_UP:
                return 0 if self.number in (simctl.fault('pins_low') or ()) else 1
            return self._value
        self._value = v

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=3, hard=False):
        self.handler = handler
        _irq_pins.append(self)


_irq_pins = []
_pulses_seen = 0


def sim_poll_inputs():
    """Deliver the rising edges asked for by the fault "pir_pulses" (a
    running count) to the pins that have an irq handler."""
    global _pulses_seen
    pulses = simctl.fault('pir_pulses') or 0
    while _pulses_seen < pulses:
        _pulses_seen += 1
        for pin in _irq_pins:
            pin.handler(pin)


class WDT:
    """Resets the board (exit by SIGUSR2, which the simulator boots again
    after) when not fed within the timeout, like the ESP32's task watchdog.
    There is one: as on the ESP32 (machine_wdt.c), another WDT(timeout=)
    reconfigures it and feeds the same one."""
    timeout = 0
    fed_ms = 0
    _watching = False

    def __init__(self, id=0, timeout=5000):
        import _thread
        WDT.timeout = timeout
        WDT.fed_ms = utime.ticks_ms()
        if not WDT._watching:
            WDT._watching = True
            _thread.start_new_thread(_watch, (WDT,))

    def feed(self):
        WDT.fed_ms = utime.ticks_ms()


def _watch(wdt):
    # allocation-free until it fires: this thread runs beside the VM. Host
    # ticks: a hardware timer, which the sim's run-ahead (jump_s) must not stall
    while utime.ticks_diff(utime.ticks_ms(), wdt.fed_ms) <= wdt.timeout:
        # the unix port's sleep_ms() wakes every 1 ms (~3 % of a core per
        # board); sleep() with a float is one select()
        utime.sleep(0.1)
    print('watchdog: not fed for %d ms, resetting' % wdt.timeout)
    pid = open(simctl.env('SIM_HOST', '') + '/proc/self/stat').read().split()[0]
    os.system('kill -USR2 ' + pid)


def reset():
    """Power-cycle: the simulator restarts the board on exit status 75."""
    sys.exit(75)


class RTC:
    """The real-time clock; setting it (as ntptime and the firmware's NTP do)
    sets the simulated wall clock."""

    def datetime(self, value=None):
        if value is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0)
        time.sim_set_clock()


_freq = 160000000       # the esp32 port's clock at power-on


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError('frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz')
    _freq = hz


def unique_id():
    return b'\x24\x0a\xc4\x00\x00\x01'

# Simulator only, never goes onto a board: the board's clocks.
# - time()/localtime(): the wall clock counts from 2000-01-01 00:00:00 at
#   power-on until NTP sets it (ntptime.settime(), machine.RTC).
# - ticks_ms()/ticks_us() are 30-bit as on the ESP32 (ticks_ms wraps every
#   12.4 days, ticks_us every 17.9 minutes) and start a minute before a wrap,
#   so every test runs across one.
# - The fault "jump_s" (a running total of seconds, like pir_pulses) runs
#   the ticks, the clock and the event loop fast until the board is that far
#   ahead, as if that much time had passed with the board up all along; it
#   prints "simulator: N s ahead" when it gets there.
# - SIM_CLOCK_AHEAD_S (read at power-on): the date NTP gives is that many
#   seconds ahead of the host's, as for a board powered on again after its
#   earlier runs were run ahead: the calendar goes on where they left it,
#   while its ticks and uptime start afresh.
# asyncio keeps the host's own ticks plus the run-ahead: the unix port's C
# task queue stamps woken tasks with the host's ticks, which 30-bit keys
# beside them would misorder. On the board asyncio is wrap-safe by design.
from utime import *  # noqa: F401,F403  what is not redefined below
import utime
import simctl
from micropython import const

_MASK = const((1 << 30) - 1)
_HALF = const(1 << 29)
_START_MS = const((1 << 30) - 60000)            # a minute before the wrap
_START_US = const((1 << 30) - 60000000)
_FAST = const(200000)           # running ahead: a simulated day in 0.4 s...
_MAX_STEP_MS = const(600000)    # ...at most 10 minutes per reading
_EPOCH_2000 = 946684800         # 2000-01-01 in Unix seconds
_power_on = int(utime.time())
_calendar_ahead_s = int(simctl.env('SIM_CLOCK_AHEAD_S', '0'))
_clock_set = False
_host_ms0 = utime.ticks_ms()
_host_us0 = utime.ticks_us()
_read_ms = _host_ms0            # the host's ticks at the last reading
_ahead_ms = 0                   # how far the board has been run ahead
_running_ahead = False
sim_board_debt_us = None        # at board speed: how far a step's board time is ahead


def _loop_ms():
    """The host's ms ticks plus the run-ahead (62-bit: it never wraps)."""
    global _read_ms, _ahead_ms, _running_ahead
    host = utime.ticks_ms()
    if sim_board_debt_us:
        host += sim_board_debt_us() // 1000
    target = int((simctl.fault('jump_s') or 0) * 1000)
    _running_ahead = target > _ahead_ms
    if _running_ahead:
        step = min(_MAX_STEP_MS, utime.ticks_diff(host, _read_ms) * _FAST)
        _ahead_ms = min(target, _ahead_ms + max(1, step))
        if _ahead_ms == target:
            print('simulator: %d s ahead' % (target // 1000))
    _read_ms = host
    return host + _ahead_ms


# blocking sleeps (drivers, DNS) pass in board time too: fast while running ahead
def sleep_ms(ms):
    utime.sleep_ms(ms // _FAST if _running_ahead else ms)


def sleep_us(us):
    utime.sleep_us(us // _FAST if _running_ahead else us)


def sleep(s):
    utime.sleep(s / _FAST if _running_ahead else s)


def ticks_ms():
    return (_START_MS + _loop_ms() - _host_ms0) & _MASK


def ticks_us():
    _loop_ms()
    debt = sim_board_debt_us() if sim_board_debt_us else 0
    return (_START_US + utime.ticks_diff(utime.ticks_us(), _host_us0)
            + _ahead_ms * 1000 + debt) & _MASK


ticks_cpu = ticks_us


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(end, start):
    return ((end - start + _HALF) & _MASK) - _HALF


def sim_set_clock():
    global _clock_set
    _clock_set = True


def time():
    _loop_ms()
    ahead_s = _ahead_ms // 1000     # not a difference of two host readings: it could be -1
    now = int(utime.time())         # whole seconds, as the board's
    if _clock_set:
        return now - _EPOCH_2000 + ahead_s + _calendar_ahead_s
    return now - _power_on + ahead_s


def time_ns():
    return time() * 1000000000


def localtime(secs=None):
    # shared/timeutils before mp_timestamp_t took seconds since 2000 as
    # mp_uint_t (32 bits on the ESP32): a negative time wraps round to 2136
    secs = time() if secs is None else secs
    return utime.gmtime(secs % 0x100000000 + _EPOCH_2000)


gmtime = localtime


def mktime(t):
    return utime.mktime(t) - _EPOCH_2000


def _loop_diff(end, start):
    # running ahead, the loop polls for a sliver of each wait: sleepers then
    # wake as fast as the clock runs
    diff = utime.ticks_diff(end, start)
    if _running_ahead and diff > 0:
        return max(1, diff // _FAST)
    return diff


import asyncio.core  # noqa: E402  after the above: it imports them from here
asyncio.core.ticks = _loop_ms
asyncio.core.ticks_add = utime.ticks_add
asyncio.core.ticks_diff = _loop_diff

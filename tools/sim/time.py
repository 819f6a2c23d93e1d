# Simulator only, never goes onto a board: the board's clock, which counts
# from 2000-01-01 00:00:00 at power-on until NTP sets it (ntptime.settime()).
from utime import *  # noqa: F401,F403  ticks_ms, sleep_ms, ... unchanged
import utime

_EPOCH_2000 = 946684800         # 2000-01-01 in Unix seconds
_power_on = utime.time()
_clock_set = False


def sim_set_clock():
    global _clock_set
    _clock_set = True


def time():
    if _clock_set:
        return utime.time() - _EPOCH_2000
    return utime.time() - _power_on


def localtime(secs=None):
    return utime.gmtime((time() if secs is None else secs) + _EPOCH_2000)


gmtime = localtime


def mktime(t):
    return utime.mktime(t) - _EPOCH_2000

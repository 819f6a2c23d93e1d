"""The wall clock: NTP in the background, retried until it works.

Until then the board's clock counts from 2000-01-01; snapshot names stay
unique and sortable anyway because they carry a sequence number.
"""
import asyncio
import time
from micropython import const

_RETRY_MIN_S = const(5)
_RETRY_MAX_S = const(600)
_RESYNC_S = const(6 * 3600)
_YEAR_SET = const(2024)


def is_set():
    """True once the clock shows a plausible date."""
    return time.localtime()[0] >= _YEAR_SET


async def keep_time(report):
    """Set the clock by NTP, retry with backoff, resync every 6 hours."""
    import ntptime
    delay = _RETRY_MIN_S
    while True:
        try:
            ntptime.settime()   # blocks up to ntptime.timeout (1 s)
            delay = _RESYNC_S
        except Exception as exc:
            print('clock: ntp failed:', exc)
            delay = min(delay * 2, _RETRY_MAX_S)
        report(is_set())
        await asyncio.sleep(delay)

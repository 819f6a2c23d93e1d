"""The wall clock: NTP in the background, retried until it works.

Until then the board's clock counts from 2000-01-01; snapshot names stay
unique and sortable anyway because they carry a sequence number.

ntptime.settime() would block the event loop for its DNS lookup and up to
its 1 s reply timeout; here the name is looked up once (again only after
repeated failures), the query goes out on a non-blocking UDP socket and the
reply is awaited while the app serves on.
"""
import asyncio
import socket
import time
from micropython import const

_HOST = 'pool.ntp.org'
_RETRY_MIN_S = const(5)
_RETRY_MAX_S = const(600)
_RESYNC_S = const(6 * 3600)
_YEAR_SET = const(2024)
_REPLY_MS = const(1000)         # as ntptime.timeout
_POLL_MS = const(20)
_RELOOKUP_AFTER = const(3)      # failed queries before the name is looked up again
_NTP_2024 = 3913056000          # 2024-01-01 in NTP seconds: older means era 1


def is_set():
    """True once the clock shows a plausible date."""
    return time.localtime()[0] >= _YEAR_SET


def _sta_connected():
    # in access-point mode there is no way out: a DNS lookup would only block
    try:
        import network
        return network.WLAN(network.STA_IF).isconnected()
    except Exception:
        return True


async def query(addr, timeout_ms=_REPLY_MS):
    """Seconds since the board's epoch from the NTP server at addr, awaiting
    the reply without blocking the loop; OSError on no or a bad reply."""
    packet = bytearray(48)
    packet[0] = 0x1B                # LI 0, version 3, client
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(packet, addr)
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            try:
                reply = sock.recv(48)
                break
            except OSError:         # EAGAIN: nothing yet
                if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                    raise OSError('no reply from ' + _HOST)
                await asyncio.sleep_ms(_POLL_MS)
    finally:
        sock.close()
    if len(reply) < 48 or (reply[0] & 0x07) != 4 or reply[1] == 0:
        raise OSError('bad reply')      # not a server reply, or kiss-o'-death
    ntp = int.from_bytes(reply[40:44], 'big')
    if ntp < _NTP_2024:
        ntp += 0x100000000          # NTP era 1 (after 2036)
    epoch_year = time.gmtime(0)[0]
    return ntp - (3155673600 if epoch_year == 2000 else 2208988800)


def _set_rtc(secs):
    import machine
    t = time.gmtime(secs)
    machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))


async def keep_time(report):
    """Set the clock by NTP, retry with backoff, resync every 6 hours."""
    backoff = _RETRY_MIN_S
    addr = None
    failures = 0
    while True:
        try:
            if not _sta_connected():
                raise OSError('no network')
            if addr is None:
                # getaddrinfo blocks (tens of ms through the router): once
                addr = socket.getaddrinfo(_HOST, 123)[0][-1]
            _set_rtc(await query(addr))
            failures = 0
            backoff = _RETRY_MIN_S
            wait = _RESYNC_S
        except Exception as exc:
            print('clock: ntp failed:', exc)
            failures += 1
            if failures >= _RELOOKUP_AFTER:
                addr = None         # the pool may have moved the server
                failures = 0
            wait = backoff
            backoff = min(backoff * 2, _RETRY_MAX_S)
        report(is_set())
        await asyncio.sleep(wait)

# Simulator only, never goes onto a board: micropython-lib's ntptime, which
# blocks as it does on the board: a DNS lookup (tens of ms), then a UDP query
# to the simulator's NTP server, waiting up to `timeout` for the reply; the
# server stays silent while the fault "ntp_fail" is on.
import socket
import time

host = 'pool.ntp.org'
timeout = 1
_ETIMEDOUT = 116                # the ESP32's number (lwIP), not Linux's 110


def time_ntp():
    query = bytearray(48)
    query[0] = 0x1B
    addr = socket.getaddrinfo(host, 123)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(query, addr)
        try:
            msg = s.recv(48)
        except OSError:
            raise OSError(_ETIMEDOUT)
    finally:
        s.close()
    return int.from_bytes(msg[40:44], 'big') - 3155673600


def settime():
    time_ntp()
    time.sim_set_clock()

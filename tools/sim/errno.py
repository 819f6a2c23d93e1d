# Simulator only, never goes onto a board: the ESP32's errno module. Its
# numbers are newlib's (sys/errno.h), which lwIP and MicroPython's esp32 port
# (MICROPY_USE_INTERNAL_ERRNO 0) raise; the unix port has Linux's. The names
# are MicroPython's default MICROPY_PY_ERRNO_LIST, which the esp32 port keeps:
# no ENFILE, ENOSPC, EPIPE or EISCONN here, as on the board.
EPERM = 1
ENOENT = 2
EIO = 5
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EEXIST = 17
ENODEV = 19
EISDIR = 21
EINVAL = 22
EOPNOTSUPP = 95
EADDRINUSE = 112
ECONNABORTED = 113
ECONNRESET = 104
ENOBUFS = 105
ENOTCONN = 128
ETIMEDOUT = 116
ECONNREFUSED = 111
EHOSTUNREACH = 118
EALREADY = 120
EINPROGRESS = 119

errorcode = {v: k for k, v in globals().items() if k[:1] == 'E'}

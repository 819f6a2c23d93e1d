"""The simulated board's errno numbers are the ESP32's (newlib's, as lwIP and
MicroPython's esp32 port raise them), not the unix port's Linux ones: its
`errno` module (tools/sim/errno.py) and the OSErrors of its sockets
(tools/sim/socket.py), asyncio's streams included."""
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import time

from tools.sim.harness import REPO, free_port

SIM_DIR = os.path.join(REPO, 'tools', 'sim')
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), 'micropython')
BOARD_CODE = [os.path.join(REPO, 'boot.py'), os.path.join(REPO, 'main.py')] + sorted(
    os.path.join(REPO, 'firmware', n) for n in os.listdir(os.path.join(REPO, 'firmware'))
    if n.endswith('.py'))

# newlib's sys/errno.h; the names are MicroPython's default errno list,
# which the esp32 port keeps
ESP32 = {'EPERM': 1, 'ENOENT': 2, 'EIO': 5, 'EBADF': 9, 'EAGAIN': 11, 'ENOMEM': 12,
         'EACCES': 13, 'EEXIST': 17, 'ENODEV': 19, 'EISDIR': 21, 'EINVAL': 22,
         'EOPNOTSUPP': 95, 'EADDRINUSE': 112, 'ECONNABORTED': 113, 'ECONNRESET': 104,
         'ENOBUFS': 105, 'ENOTCONN': 128, 'ETIMEDOUT': 116, 'ECONNREFUSED': 111,
         'EHOSTUNREACH': 118, 'EALREADY': 120, 'EINPROGRESS': 119}


def on_board(*parts, timeout=30):
    """Run a MicroPython script with the simulated board's sys.path (the
    stand-ins first, as tools/sim/run_board.py sets it); its printed words."""
    prelude = "import sys\nsys.path[:] = [%r, '', '.frozen']\nimport time\n" % SIM_DIR
    script = prelude + ''.join(textwrap.dedent(part) for part in parts)
    done = subprocess.run([MICROPYTHON, '-c', script],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, SIM_DIR=SIM_DIR, SIM_SOCKETS='0'))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def test_the_errno_module_has_the_esp32s_names_and_numbers():
    out = on_board("""
        import errno
        names = sorted(n for n in dir(errno) if n[:1] == 'E')
        print(' '.join('%s=%d' % (n, getattr(errno, n)) for n in names))
        print(' '.join('%d=%s' % kv for kv in sorted(errno.errorcode.items())))
        from errno import ETIMEDOUT, ENOTCONN, ECONNABORTED
        print(ETIMEDOUT, ENOTCONN, ECONNABORTED)
    """)
    assert dict(kv.split('=') for kv in out[:len(ESP32)]) == {k: str(v) for k, v in ESP32.items()}
    assert dict(kv.split('=') for kv in out[len(ESP32):2 * len(ESP32)]) == \
        {str(v): k for k, v in ESP32.items()}
    assert out[2 * len(ESP32):] == ['116', '128', '113']


PEER = """
    import socket, usocket, struct
    PORT = %d
    from errno import errorcode

    def failure(call, *args):
        try:
            call(*args)
        except OSError as exc:
            return exc.errno
        return 'none'

    def listener():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])
        srv.listen(2)
        return srv

    def pc_connects(srv):
        # the PC's side: a host socket, outside the board's stand-ins
        pc = usocket.socket()
        pc.connect(usocket.getaddrinfo('127.0.0.1', PORT)[0][-1])
        client, addr = srv.accept()
        return pc, client, PORT

    def pc_resets(pc):
        pc.setsockopt(usocket.SOL_SOCKET, 13, struct.pack('ii', 1, 0))  # SO_LINGER 0
        pc.close()
"""


def test_a_reset_peer_a_timeout_and_an_unconnected_socket_give_board_numbers():
    out = on_board(PEER % free_port(), """
        srv = listener()
        pc, client, port = pc_connects(srv)
        client.settimeout(0.2)
        print('timeout', failure(client.recv, 10))          # unix port: EAGAIN
        print('read-timeout', failure(client.read, 10))     # unix port: None
        pc_resets(pc)
        time.sleep_ms(50)
        print('reset', failure(client.recv, 10))
        print('write-after-reset', failure(client.write, b'x' * 100))   # Linux: EPIPE
        client.close()
        print('unconnected', failure(socket.socket().recv, 1))          # Linux: 107
        other = socket.socket()
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        print('in-use', failure(other.bind, socket.getaddrinfo('127.0.0.1', port)[0][-1]))
        srv.close()
        print('refused', failure(socket.socket().connect, socket.getaddrinfo('127.0.0.1', port)[0][-1]))
    """)
    seen = dict(zip(out[::2], out[1::2]))
    assert seen == {'timeout': '116', 'read-timeout': '116', 'reset': '104', 'write-after-reset': '104',
                    'unconnected': '128', 'in-use': '112', 'refused': '111'}


def test_asyncio_streams_see_board_numbers_and_still_connect():
    # asyncio's open_connection imports EINPROGRESS from errno at call time
    # and compares it with connect()'s error: both must be the board's (119)
    out = on_board(PEER % free_port(), """
        import asyncio

        async def main():
            srv = listener()
            reader, writer = await asyncio.open_connection('127.0.0.1', PORT)
            client, addr = srv.accept()
            client.write(b'hi')
            print('connected', await reader.read(2) == b'hi')
            client.setsockopt(usocket.SOL_SOCKET, 13, struct.pack('ii', 1, 0))
            client.close()                                  # the far end resets
            await asyncio.sleep_ms(50)
            try:
                await reader.read(10)
                print('read', 'none')
            except OSError as exc:
                print('read', exc.errno)
            try:
                for _ in range(3):
                    writer.write(b'x' * 100)
                    await writer.drain()
                print('write', 'none')
            except OSError as exc:
                print('write', exc.errno)
            await writer.wait_closed()
            srv.close()

        asyncio.run(main())
    """)
    assert dict(zip(out[::2], out[1::2])) == {'connected': 'True', 'read': '104', 'write': '104'}


def test_an_accepted_client_on_an_asyncio_server_sees_board_numbers():
    out = on_board(PEER % free_port(), """
        import asyncio
        seen = []

        async def serve(reader, writer):
            try:
                while await reader.read(10):
                    pass
                seen.append('eof')
            except OSError as exc:
                seen.append(exc.errno)
            await writer.wait_closed()

        async def main():
            server = await asyncio.start_server(serve, '127.0.0.1', PORT)
            pc = usocket.socket()
            pc.connect(usocket.getaddrinfo('127.0.0.1', PORT)[0][-1])
            await asyncio.sleep_ms(100)
            pc_resets(pc)
            for _ in range(50):
                if seen:
                    break
                await asyncio.sleep_ms(20)
            server.close()
            print('read', seen[0] if seen else 'nothing')

        asyncio.run(main())
    """)
    assert out == ['read', '104']


def test_board_code_never_spells_errno_dot_name():
    # MicroPython's compiler folds `errno.ETIMEDOUT` into the number of its own
    # built-in errno when it compiles the file (MICROPY_COMP_MODULE_CONST): on
    # the unix port that is Linux's 110 whatever module `errno` names at run
    # time, so the simulator could not give such code the board's numbers.
    # `from errno import ETIMEDOUT` and getattr(errno, name) are looked up.
    folded = on_board("""
        import errno
        print(errno.ETIMEDOUT, getattr(errno, 'ETIMEDOUT'))
    """)
    assert folded == ['110', '116']     # why the rule below is needed
    spelt = [(path, n + 1) for path in BOARD_CODE if os.path.exists(path)
             for n, line in enumerate(open(path))
             if re.search(r'\berrno\.E[A-Z0-9]+\b', line.split('#')[0])]
    assert spelt == []


def test_peers_that_reset_mid_stream_leave_no_socket_errors_on_the_console(board):
    # MJPEG, SSE and a WebSocket, each cut off with a reset while the board
    # writes to it: the firmware mutes the board's numbers by name
    for path in ('/stream', '/events', '/stream', '/events'):
        sock = socket.create_connection(('127.0.0.1', board.port), timeout=10)
        sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                      % (path, board.raw_auth())).encode())
        assert sock.recv(64).startswith(b'HTTP/1.')
        time.sleep(0.3)                 # the board is writing frames / events
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        sock.close()
    ws = board.ws()
    board.command(ws, cmd='status')
    ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    ws.socket.close()
    board.wait_for(lambda s: s['connections'] <= 1)
    time.sleep(0.5)
    out = board.output()
    assert 'Traceback' not in out
    assert 'socket error' not in out
    assert 'request failed' not in out

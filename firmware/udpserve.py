"""One UDP responder loop for the small services that answer datagrams (the
setup portal's DNS, ONVIF discovery): read a datagram when one is there,
answer it, yield."""
import asyncio
import select
from micropython import const

_POLL_MS = const(100)


async def answer_datagrams(sock, max_size, reply, name):
    """Forever: reply(datagram) -> bytes to send back, or None to ignore.
    recvfrom only when poll saw a datagram: on the ESP32 a recvfrom that
    fails (EAGAIN) has allocated its buffer all the same."""
    waiting = select.poll()
    waiting.register(sock, select.POLLIN)
    while True:
        ready = False
        for _ in waiting.ipoll(0):
            ready = True
        if not ready:
            await asyncio.sleep_ms(_POLL_MS)
            continue
        try:
            datagram, peer = sock.recvfrom(max_size)
        except OSError:
            await asyncio.sleep_ms(_POLL_MS)
            continue
        answer = None
        try:
            answer = reply(datagram)
        except Exception as exc:            # a malformed datagram: never the task
            print(name + ': datagram ignored:', repr(exc))
        if answer is not None:
            try:
                sock.sendto(answer, peer)
            except OSError:
                pass
        await asyncio.sleep_ms(0)           # a flood must not starve the page

"""Someone is waiting for an answer (a command's reply, a login): while
anyone is, the motion analysis gives way to it between its slices, for a
while each frame, then rests after each frame as it does while the live
picture is watched, so on a board too slow for both the answer is not
queued behind it (README: How fast on a real board)."""
import asyncio
import time
from micropython import const

_POLL_MS = const(10)
count = 0       # answers being worked on now


async def answer(work):
    """Await `work`, counted while it runs."""
    global count
    count += 1
    try:
        return await work
    finally:
        count -= 1


async def give_way(budget_ms):
    """A turn of the loop; while anyone waits for an answer, more turns, until
    nobody does or budget_ms is spent. Returns what is left of the budget."""
    if not count or budget_ms <= 0:
        await asyncio.sleep_ms(0)
        return budget_ms
    started = time.ticks_ms()
    while count:
        spent = time.ticks_diff(time.ticks_ms(), started)     # a span of budget_ms at most
        if spent >= budget_ms:
            return 0
        await asyncio.sleep_ms(min(_POLL_MS, budget_ms - spent))
    return max(0, budget_ms - time.ticks_diff(time.ticks_ms(), started))

"""The hardware watchdog, fed by a task: if the event loop stalls (a hung
driver, a runaway coroutine), nobody feeds it and the board resets."""
import asyncio


async def feed_while_healthy(timeout_s):
    """Start machine.WDT and feed it four times per timeout, forever."""
    import machine
    wdt = machine.WDT(timeout=timeout_s * 1000)
    while True:
        wdt.feed()
        await asyncio.sleep_ms(timeout_s * 250)

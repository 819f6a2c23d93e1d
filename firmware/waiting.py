"""Someone is waiting for an answer (a command's reply, a login): while
anyone is, the motion analysis rests after each frame as it does while the
live picture is watched, so on a board too slow for both the answer is not
queued behind it (README: How fast on a real board)."""

count = 0       # answers being worked on now


async def answer(work):
    """Await `work`, counted while it runs."""
    global count
    count += 1
    try:
        return await work
    finally:
        count -= 1

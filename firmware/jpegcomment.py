"""A snapshot's JPEG comment (time, cause, count, sequence), written into
the file as it goes to the card: SOI, our COM segment, the rest of the
camera's JPEG, no re-encoding."""
import time
from firmware.cardfiles import CHUNK
from firmware.ticks import turn


def comment_segment(text):
    """A JPEG COM segment: FF FE, its length (with itself), the text."""
    body = text.encode()
    return b'\xff\xfe' + (len(body) + 2).to_bytes(2, 'big') + body


_first = bytearray(CHUNK)     # the first chunk, put together: one block write


async def write_jpeg(path, data, comment=b''):
    """Write data (a JPEG) to path with the COM segment `comment` after its
    SOI, in chunks, yielding once the open or the writes have held the loop
    SLICE_MS (each yield waits a round of every ready task, ~0.1 s on a busy
    board: a fast card's chunks go together) and before the close; returns
    the file's size."""
    # The first chunk (SOI, comment, the start of the picture) is put
    # together in one buffer, so every write covers whole sectors: one
    # block write each. No flush before close: a cut leaves a .part that
    # start-up removes.
    view = memoryview(data)
    size = len(data)
    held = time.ticks_ms()      # the open reads the folder: it holds the loop too
    with open(path, 'wb') as f:
        held = await turn(held)
        start = 0
        if comment and len(data) > 2 and data[0] == 0xFF and data[1] == 0xD8 \
                and len(comment) + 2 < CHUNK:
            head = 2 + len(comment)
            start = min(len(data), CHUNK - head + 2)
            _first[:2] = view[:2]
            _first[2:head] = comment
            _first[head:head + start - 2] = view[2:start]
            f.write(memoryview(_first)[:head + start - 2])
            size += len(comment)
        else:
            f.write(view[:CHUNK])
            start = CHUNK
        while start < len(view):
            held = await turn(held)
            f.write(view[start:start + CHUNK])
            start += CHUNK
        await turn(held)        # the close writes the folder's entry: it holds the loop too
    return size

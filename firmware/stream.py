"""/stream: MJPEG to many viewers from the one capture task.

Each viewer sends the newest frame when it is ready for one: a slow viewer
skips frames instead of queueing them, holds at most a reference to the one
frame it is sending, and never slows the camera or the other viewers.
"""
import asyncio
import time
from firmware.events import ClientStream

BOUNDARY = 'frame'


class MjpegStream(ClientStream):
    """The response body (async iterator) for one viewer."""

    def __init__(self, camera, state, max_fps):
        super().__init__(state)
        self.camera = camera
        camera.viewers += 1
        self.interval_ms = 1000 // max(1, max_fps)
        self.seen = -1
        self.sent_ms = None
        self.pending = []       # the parts of the frame being sent
        self.slot = None        # the camera buffer held while it is sent

    async def __anext__(self):
        camera = self.camera
        while self.open:
            if self.pending:
                return self.pending.pop(0)
            camera.release(self.slot)   # the frame has been written
            self.slot = None
            if self.sent_ms is not None:
                wait = self.interval_ms - time.ticks_diff(time.ticks_ms(), self.sent_ms)
                if 0 < wait <= self.interval_ms:    # more: a stamp from days ago
                    await asyncio.sleep_ms(wait)       # the per-viewer frame-rate cap
                    continue
            if camera.latest_jpeg is None or camera.frame_count == self.seen:
                await camera.wait_frame()
                continue
            self.seen = camera.frame_count
            jpeg, self.slot = camera.hold()
            self.sent_ms = time.ticks_ms()
            # three writes instead of one concatenation: no copy of the frame
            self.pending = [jpeg, b'\r\n']
            return (b'--' + BOUNDARY.encode() + b'\r\nContent-Type: image/jpeg\r\n'
                    b'Content-Length: %d\r\n\r\n' % len(jpeg))
        raise StopAsyncIteration

    def on_release(self):
        self.pending = []
        self.camera.release(self.slot)
        self.slot = None
        self.camera.viewers -= 1


def headers():
    return {'Content-Type': 'multipart/x-mixed-replace; boundary=' + BOUNDARY,
            'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no'}

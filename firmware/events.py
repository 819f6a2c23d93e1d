"""The /events Server-Sent Events stream, coalesced.

microdot's own SSE helper queues every event without bound; this stream
instead sends the newest status whenever the state version moved, and a
heartbeat comment on every heartbeat tick. A slow listener therefore skips
states it was too slow for and never holds more than one event in memory.
"""
import json
from micropython import const
from firmware import ticks

_FRESH_MS = const(1000)     # uptime and the gauges move without a new version
_built = [-1, 0, b'']       # version, when (ticks.now_ms), the status event: shared

# A heartbeat padded to 2 KB: a peer that vanished without a close stops
# acknowledging, so a few of these fill lwIP's 5.7 KB send buffer and the
# server's write timeout drops the connection (SSE has no acks of its own).
HEARTBEAT = b': heartbeat' + b' ' * 2048 + b'\n\n'


class ClientStream:
    """A long-lived response body that counts itself in state['clients']
    until the connection ends (release() is safe to call more than once)."""

    def __init__(self, state):
        self.state = state
        self.open = True
        state.add('clients', 1)

    def __aiter__(self):
        return self

    async def aclose(self):
        self.release()

    def release(self):
        if self.open:
            self.open = False
            self.on_release()
            self.state.add('clients', -1)

    def on_release(self):
        pass


class StatusStream(ClientStream):
    """A response body (async iterator) for one SSE listener."""

    def __init__(self, state, last_event_id=None):
        super().__init__(state)
        self.seen_version = -1          # so the first event goes out at once
        # replay what a reconnecting listener missed; a new one starts now
        if last_event_id is None:
            self.seen_event = state.last_event_id
        else:
            self.seen_event = min(last_event_id, state.last_event_id)
        self.seen_beat = state.beat

    async def __anext__(self):
        state = self.state
        while self.open:
            if self.seen_event < state.last_event_id:
                missed = state.events_after(self.seen_event)
                if missed:
                    event_id, name, data = missed[0]
                    self.seen_event = event_id
                    return ('id: %s\nevent: %s\ndata: %s\n\n'
                            % (state.event_id(event_id), name, json.dumps(data))).encode()
                self.seen_event = state.last_event_id
            if self.seen_version != state.version:
                self.seen_version = state.version
                return status_event(state)
            if self.seen_beat != state.beat:
                self.seen_beat = state.beat
                return HEARTBEAT
            await state.wait()
        raise StopAsyncIteration


def status_event(state):
    """The status event of the state's version, built once for every
    listener (a board takes ~10 ms for each): again after _FRESH_MS."""
    now = ticks.now_ms()
    if _built[0] != state.version or now - _built[1] >= _FRESH_MS:
        _built[0] = state.version
        _built[1] = now
        _built[2] = b'event: status\ndata: ' + json.dumps(state.status()).encode() + b'\n\n'
    return _built[2]


def headers():
    return {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache',
            'X-Accel-Buffering': 'no'}

"""The command table: validate -> act -> reply dict.

handle() answers one message (the text of a WebSocket frame, or later an
MQTT payload) for any input, never raises and never needs a socket. The
replies are documented in README.md, "The /control WebSocket".
"""
import gc
import json
from micropython import const
from firmware import waiting
from firmware.text import join_surrogates, utf8_valid


async def _snapshot_now(req, board):
    return await board.snapshots.take('manual')


def _reset(req, board):
    board.state.update(trigger_count=0, snapshot_count=0)
    for clear in board.state.on_reset:
        clear()
    return {'ok': True, 'counters': 'reset'}


def _set(req, board):
    return board.settings.set(req.get('key'), req.get('value'))


def _status(req, board):
    gc.collect()    # so free_heap means live objects, not garbage
    return {'ok': True, 'status': board.state.status(fresh=True)}


def _restart(req, board):
    import asyncio
    board.settings_file.flush(board.settings.values())     # a change just made stays
    asyncio.create_task(_reset_soon())
    return {'ok': True, 'restarting': True}


async def _reset_soon():
    import asyncio
    import machine
    await asyncio.sleep_ms(500)     # the reply goes out first
    machine.reset()


def _record_start(req, board):
    return board.recorder.start_manual()


def _record_stop(req, board):
    return board.recorder.stop_manual()


COMMANDS = {
    'snapshot_now': _snapshot_now,
    'record_start': _record_start,
    'record_stop': _record_stop,
    'restart': _restart,
    'reset': _reset,
    'set': _set,
    'status': _status,
}


# what mqtt.commands "read-only" lets through: nothing that changes the board
READ_ONLY = ('status',)

_MAX_DEPTH = const(32)


def _too_deep(message):
    """True if the JSON text nests arrays/objects deeper than _MAX_DEPTH
    (brackets inside strings do not count)."""
    if message.count('[') + message.count('{') <= _MAX_DEPTH:
        return False                # the usual command: no scan needed
    depth = 0
    in_string = escaped = False
    for c in message:
        if in_string:
            if escaped:
                escaped = False
            elif c == '\\':
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == '[' or c == '{':
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif c == ']' or c == '}':
            depth -= 1
    return False


def _finite(value):
    """False if a float anywhere in value is inf or NaN: MicroPython's json
    reads 1e999 as inf and writes it back as bare `inf`, which no JSON
    parser accepts. Iterative: the nesting was bounded by _too_deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item != item or item in (_INF, -_INF):
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


_INF = float('inf')


async def handle(message, board, allowed=None):
    """Answer one WebSocket message (str or bytes) with a reply dict.
    allowed: the command names this channel may use (None: all)."""
    if not isinstance(message, str):
        return {'ok': False, 'error': 'binary frames are not accepted'}
    if '\\ud' in message:
        message = join_surrogates(message)
    if _too_deep(message):
        # json.dumps (the id echoed, the surrogate check below) recurses per
        # level, and the board's ~16 KB C stack gives out far sooner than the
        # unix port's; json.loads takes heap per level
        return {'ok': False, 'error': 'bad json', 'reason': 'nested too deep'}
    try:
        req = json.loads(message)
    except Exception:   # ValueError, or RuntimeError on deep nesting
        return {'ok': False, 'error': 'bad json'}
    if '\\u' in message and not utf8_valid(json.dumps(req).encode()):
        # a lone surrogate escape: no valid string, and echoing it would
        # send the client invalid UTF-8
        return {'ok': False, 'error': 'bad json'}
    if not _finite(req):
        return {'ok': False, 'error': 'bad json', 'reason': 'number out of range'}
    if not isinstance(req, dict):
        return {'ok': False, 'error': 'bad command'}
    cmd = req.get('cmd')
    if not isinstance(cmd, str):
        reply = {'ok': False, 'error': 'bad command'}
    elif cmd not in COMMANDS:
        reply = {'ok': False, 'error': 'unknown command'}
    elif allowed is not None and cmd not in allowed:
        reply = {'ok': False, 'error': 'not allowed here', 'allowed': list(allowed)}
    else:
        reply = COMMANDS[cmd](req, board)
        if not isinstance(reply, dict):
            reply = await waiting.answer(reply)     # a command that waits (snapshot_now)
    if 'id' in req:
        reply['id'] = req['id']
    return reply


def encode(reply):
    """microdot's ws.send() takes str or bytes only. Never raises: a reply
    that cannot be encoded (too deep, or no JSON type) becomes an error."""
    try:
        if not _finite(reply):
            raise ValueError('not finite')      # bare inf/nan is no JSON
        return json.dumps(reply)
    except Exception:
        error = {'ok': False, 'error': 'reply not encodable'}
        if isinstance(reply, dict) and 'id' in reply:
            error['id'] = reply['id']
        try:
            return json.dumps(error)
        except Exception:
            return '{"ok": false, "error": "reply not encodable"}'

"""The /control command table: validate -> act -> reply dict.

handle() never raises for any input and never needs a socket, so it can be
tested on its own. Replies are the contract of design §3.
"""
import gc
import json
import time
from firmware.storage import SaveError
from firmware.camera import FRAMESIZES
from firmware.wsock import utf8_valid


def _int_in(low, high):
    def check(value):
        return type(value) is int and low <= value <= high
    return check


def _is_bool(value):
    return value is True or value is False


# key -> (validator, who applies it)
SETTINGS = {
    'sensitivity': (_int_in(0, 100), 'motion'),
    'framesize': (lambda v: v in FRAMESIZES, 'camera'),
    'quality': (_int_in(4, 63), 'camera'),
    'brightness': (_int_in(-2, 2), 'camera'),
    'contrast': (_int_in(-2, 2), 'camera'),
    'saturation': (_int_in(-2, 2), 'camera'),
    'vflip': (_is_bool, 'camera'),
    'hmirror': (_is_bool, 'camera'),
    'flash': (_int_in(0, 255), 'led'),
}


def _take_token(bucket):
    """Token bucket: True if a snapshot may be taken now."""
    now = time.ticks_ms()
    if bucket['at'] is not None:
        earned = time.ticks_diff(now, bucket['at']) * bucket['per_s'] / 1000
        bucket['tokens'] = min(bucket['burst'], bucket['tokens'] + earned)
    bucket['at'] = now
    if bucket['tokens'] < 1:
        return False
    bucket['tokens'] -= 1
    return True


async def _snapshot_now(req, board):
    if not _take_token(board['snapshot_bucket']):
        return {'ok': False, 'reason': 'rate limited',
                'retry_after_s': round(1 / board['snapshot_bucket']['per_s'], 1)}
    camera = board['camera']
    jpeg, slot = camera.hold()
    if jpeg is None:
        return {'ok': False, 'reason': 'no frame yet'}
    try:
        path, size = await board['store'].save(
            'manual', jpeg, board['state'].state['trigger_count'])
    except SaveError as exc:
        return {'ok': False, 'reason': exc.args[0]}
    finally:
        camera.release(slot)
    board['state'].snapshot_saved(path, 'manual')
    return {'ok': True, 'saved': path, 'bytes': size}


def _reset(req, board):
    board['state'].update(trigger_count=0, snapshot_count=0)
    for clear in board['state'].on_reset:
        clear()
    return {'ok': True, 'counters': 'reset'}


def _set(req, board):
    return handle_set(req.get('key'), req.get('value'), board)


def handle_set(key, value, board):
    """Validate and apply one setting; the reply dict of `set`."""
    if not isinstance(key, str) or key not in SETTINGS:
        return {'ok': False, 'error': 'bad value', 'key': key,
                'reason': 'unknown setting'}
    valid, owner = SETTINGS[key]
    if not valid(value):
        return {'ok': False, 'error': 'bad value', 'key': key, 'value': value}
    try:
        board['settings'][owner](key, value)
    except Exception as exc:
        return {'ok': False, 'error': 'not supported', 'key': key,
                'reason': str(exc)}
    settings = dict(board['state'].state['settings'])
    settings[key] = value
    board['state'].update(settings=settings)
    return {'ok': True, 'key': key, 'value': value}


def _status(req, board):
    gc.collect()    # so free_heap means live objects, not garbage
    return {'ok': True, 'status': board['state'].status(fresh=True)}


COMMANDS = {
    'snapshot_now': _snapshot_now,
    'reset': _reset,
    'set': _set,
    'status': _status,
}


def _hex4(text, at):
    try:
        return int(text[at:at + 4], 16) if len(text) >= at + 4 else -1
    except ValueError:
        return -1


def join_surrogates(text):
    """Turn JSON surrogate-pair escapes into the character they encode:
    MicroPython's json decodes \\ud83d\\ude00 as two invalid halves."""
    out = []
    start = i = 0
    while True:
        j = text.find('\\u', i)
        if j < 0:
            break
        k = j
        while k > 0 and text[k - 1] == '\\':
            k -= 1
        high = _hex4(text, j + 2)
        low = _hex4(text, j + 8) if text[j + 6:j + 8] == '\\u' else -1
        if (j - k) % 2 == 0 and 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
            out.append(text[start:j])
            out.append(chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)))
            start = i = j + 12
        else:
            i = j + 2
    if not out:
        return text
    out.append(text[start:])
    return ''.join(out)


async def handle(message, board):
    """Answer one WebSocket message (str or bytes) with a reply dict."""
    if not isinstance(message, str):
        return {'ok': False, 'error': 'binary frames are not accepted'}
    if '\\ud' in message:
        message = join_surrogates(message)
    try:
        req = json.loads(message)
    except Exception:   # ValueError, or RuntimeError on deep nesting
        return {'ok': False, 'error': 'bad json'}
    if '\\u' in message and not utf8_valid(json.dumps(req).encode()):
        # a lone surrogate escape: no valid string, and echoing it would
        # send the client invalid UTF-8
        return {'ok': False, 'error': 'bad json'}
    if not isinstance(req, dict):
        return {'ok': False, 'error': 'bad command'}
    cmd = req.get('cmd')
    if not isinstance(cmd, str):
        reply = {'ok': False, 'error': 'bad command'}
    elif cmd not in COMMANDS:
        reply = {'ok': False, 'error': 'unknown command'}
    else:
        reply = COMMANDS[cmd](req, board)
        if not isinstance(reply, dict):
            reply = await reply     # a command that waits (snapshot_now)
    if 'id' in req:
        reply['id'] = req['id']
    return reply


def encode(reply):
    """microdot's ws.send() takes str or bytes only."""
    return json.dumps(reply)

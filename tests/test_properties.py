"""Property tests (Hypothesis) against the board under MicroPython: any
message gives a documented reply, any frame a reply or a documented close,
and the board never raises, hangs or stops serving."""
import json
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tools.sim.harness import Board
from wsraw import RawWebSocket, frame

ERRORS = {'bad json', 'bad command', 'unknown command', 'bad value', 'not supported',
          'binary frames are not accepted'}
REASONS = {'no frame yet', 'no sd card', 'sd card full', 'rate limited'}
CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011} | set(range(3000, 5000))
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope='module')
def shared_board(tmp_path_factory):
    board = Board(tmp_path_factory.mktemp('props')).start()
    board.wait_frame()
    yield board
    board.stop()
    assert 'Traceback' not in board.output()


@pytest.fixture(scope='module')
def control(shared_board):
    with shared_board.ws() as ws:
        yield ws


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
commands = st.fixed_dictionaries(
    {'cmd': st.sampled_from(['status', 'reset', 'set', 'snapshot_now', 'fly', '']) | st.text(max_size=12)},
    optional={'id': json_values, 'key': st.sampled_from(['sensitivity', 'quality', 'framesize',
                                                          'vflip', 'flash', 'nope']) | json_values,
              'value': json_values})
messages = (st.text(max_size=300) | json_values.map(json.dumps) | commands.map(json.dumps)
            | st.binary(max_size=64))


def strict(name):
    raise ValueError(name + ' is not JSON')


def check_reply(reply, message):
    assert isinstance(reply, dict) and isinstance(reply['ok'], bool)
    if not reply['ok']:
        assert reply.get('error') in ERRORS or reply.get('reason') in REASONS \
            or reply.get('reason', '').startswith('write failed: '), reply
    try:
        request = json.loads(message, parse_constant=strict) if isinstance(message, str) else None
    except ValueError:
        request = None
    if isinstance(request, dict) and 'id' in request:
        assert reply['id'] == request['id']


@PROPERTY
@given(message=messages)
def test_any_message_gets_a_documented_reply(control, message):
    control.send(message)
    check_reply(json.loads(control.recv(timeout=15)), message)


frames = st.lists(st.builds(
    dict, opcode=st.integers(0, 15), fin=st.booleans(), rsv=st.integers(0, 7),
    mask=st.booleans() | st.just(True), payload=st.binary(max_size=140)), min_size=1, max_size=4)


@PROPERTY
@given(frames=frames)
def test_any_frames_get_a_reply_or_a_documented_close(shared_board, frames):
    ws = RawWebSocket(shared_board, timeout=3)
    ws.send(b''.join(frame(**f) for f in frames))
    try:
        while True:
            opcode, payload = ws.recv_frame()
            assert opcode in (1, 8, 10), opcode
            if opcode == 8:
                assert len(payload) < 2 or struct.unpack('>H', payload[:2])[0] in CLOSE_CODES
                break
            if opcode == 1:
                check_reply(json.loads(payload), None)
    except (EOFError, ConnectionResetError):
        pass
    except (TimeoutError, socket.timeout):
        pass    # waiting for the rest of a fragmented message is right
    ws.close()
    assert shared_board.status()['camera'] == 'ok'

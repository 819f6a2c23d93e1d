"""Autobahn-style WebSocket cases, replayed from raw sockets against the
board's /control. Families follow the Autobahn TestSuite's numbering:
1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation,
6 UTF-8, 7 close handling, 9 limits; plus masking (RFC 6455 §5.1)."""
import json
import struct

import pytest

from wsraw import RawWebSocket, frame

TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
STATUS = '{"cmd": "status", "id": 1}'
MAX = 4096      # the board's default max_ws_message


@pytest.fixture
def raw(board):
    ws = RawWebSocket(board)
    assert ws.status == 101
    yield ws
    ws.close()


def reply(ws):
    opcode, payload = ws.recv_frame()
    assert opcode == TEXT, (opcode, payload)
    return json.loads(payload)


def assert_fails(ws, code):
    assert ws.recv_close_code() == code
    assert ws.closed_by_server()


# --- 1: framing --------------------------------------------------------------
@pytest.mark.parametrize('size', [0, 125, 126, 127, 1000, MAX - 1, MAX])
def test_1_text_messages_of_many_sizes(raw, size):
    message = STATUS + ' ' * (size - len(STATUS)) if size else ''
    raw.send(frame(TEXT, message))
    answer = reply(raw)
    if size:
        assert answer['ok'] is True and answer['id'] == 1
    else:
        assert answer == {'ok': False, 'error': 'bad json'}


def test_1_binary_message_gets_an_error_reply(raw):
    raw.send(frame(BINARY, b'\x00\xff' * 100))
    assert reply(raw)['ok'] is False
    raw.send(frame(TEXT, STATUS))
    assert reply(raw)['ok'] is True


# --- 2: ping/pong -------------------------------------------------------------
@pytest.mark.parametrize('payload', [b'', b'hello', bytes(range(125))])
def test_2_ping_is_answered_with_the_same_payload(raw, payload):
    raw.send(frame(PING, payload))
    assert raw.recv_frame() == (PONG, payload)


def test_2_ping_payload_over_125_fails(raw):
    raw.send(frame(PING, b'x' * 126))
    assert_fails(raw, 1002)


def test_2_unsolicited_pong_is_ignored(raw):
    raw.send(frame(PONG, b'unasked') + frame(TEXT, STATUS))
    assert reply(raw)['ok'] is True


def test_2_fragmented_ping_fails(raw):
    raw.send(frame(PING, b'x', fin=False))
    assert_fails(raw, 1002)


# --- 3: reserved bits ---------------------------------------------------------
@pytest.mark.parametrize('rsv', [1, 2, 3, 4, 5, 6, 7])
def test_3_reserved_bits_fail(raw, rsv):
    raw.send(frame(TEXT, STATUS, rsv=rsv))
    assert_fails(raw, 1002)


# --- 4: opcodes -----------------------------------------------------------------
@pytest.mark.parametrize('opcode', [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_4_reserved_opcodes_fail(raw, opcode):
    raw.send(frame(opcode, b'x'))
    assert_fails(raw, 1002)


# --- 5: fragmentation -------------------------------------------------------------
def test_5_fragmented_text_is_reassembled(raw):
    raw.send(frame(TEXT, '{"cmd": ', fin=False) + frame(CONT, '"status", ', fin=False)
             + frame(CONT, '"id": 5}'))
    assert reply(raw)['id'] == 5


def test_5_ping_between_fragments_is_answered(raw):
    raw.send(frame(TEXT, '{"cmd": "status",', fin=False) + frame(PING, b'mid')
             + frame(CONT, ' "id": 6}'))
    assert raw.recv_frame() == (PONG, b'mid')
    assert reply(raw)['id'] == 6


def test_5_continuation_without_a_start_fails(raw):
    raw.send(frame(CONT, STATUS))
    assert_fails(raw, 1002)


def test_5_new_message_inside_a_fragmented_one_fails(raw):
    raw.send(frame(TEXT, '{"cmd":', fin=False) + frame(TEXT, STATUS))
    assert_fails(raw, 1002)


def test_5_fragments_over_the_cap_fail_with_1009(raw):
    part = ' ' * 1500
    raw.send(frame(TEXT, part, fin=False) + frame(CONT, part, fin=False) + frame(CONT, part))
    assert_fails(raw, 1009)


# --- 6: UTF-8 -------------------------------------------------------------------------
@pytest.mark.parametrize('text', ['κόσμε', 'ሰማይ', '𝄞 clef', '\u00e9\u20ac\U0010ffff',
                                  # the edges of each length (Autobahn 6.2-6.4)
                                  '\u0080\u07ff', '\u0800\ud7ff\ue000\uffff', '\U00010000'])
def test_6_valid_utf8_is_accepted(raw, text):
    raw.send(frame(TEXT, json.dumps({'cmd': 'status', 'id': text}, ensure_ascii=False)))
    assert reply(raw)['id'] == text


def test_6_valid_utf8_split_across_fragments(raw):
    data = json.dumps({'cmd': 'status', 'id': 'κόσμε'}, ensure_ascii=False).encode()
    cut = data.index('ό'.encode()) + 1          # inside a two-byte character
    raw.send(frame(TEXT, data[:cut], fin=False) + frame(CONT, data[cut:]))
    assert reply(raw)['id'] == 'κόσμε'


@pytest.mark.parametrize('escaped, text', [
    (r'\ud83d\ude00', '\U0001f600'),                 # a surrogate pair: one character
    (r'x\ud83d\ude00y\u00e9', 'x\U0001f600y\u00e9'),
    (r'\\ud83d\\ude00', r'\ud83d\ude00'),           # escaped backslashes: plain text
    (r'\\\ud83d\ude00', '\\\U0001f600'),           # a backslash, then a pair
])
def test_6_json_surrogate_escapes_decode_as_one_character(raw, escaped, text):
    raw.send(frame(TEXT, '{"cmd": "status", "id": "%s"}' % escaped))
    assert reply(raw)['id'] == text


def test_6_an_escaped_backslash_is_no_surrogate_escape(raw):
    # "\\ud83d" is a backslash and the text ud83d: the \ude00 after it is a
    # lone surrogate, refused, not half of a pair to join into one character
    raw.send(frame(TEXT, r'{"cmd": "status", "id": "\\ud83d\ude00"}'))
    assert reply(raw) == {'ok': False, 'error': 'bad json'}


@pytest.mark.parametrize('bad', [
    b'\xff', b'\xfe', b'\xc0\xaf', b'\xe0\x80\xaf', b'\xf0\x80\x80\xaf',   # invalid, overlong
    b'\xed\xa0\x80', b'\xed\xbf\xbf',                                     # surrogates
    b'\xf4\x90\x80\x80', b'\xf8\x88\x80\x80\x80',                         # > U+10FFFF
    b'\xf5\x80\x80\x80', b'\xf7\xbf\xbf\xbf',                             # lead past F4
    b'\xe2\x82\x28', b'\xf0\x90\x80\x28',                                # bad last byte
    b'\xc2\xc0', b'\xdf\xc0', b'\xe0\xa0',                                # past the edges
    b'\xce\xba\xe1', b'\x80', b'\xc2',                                    # truncated, lone
])
def test_6_invalid_utf8_fails_with_1007(raw, bad):
    raw.send(frame(TEXT, b'{"cmd": "' + bad + b'"}'))
    assert_fails(raw, 1007)


# --- 7: close handling ------------------------------------------------------------------
@pytest.mark.parametrize('code', [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_7_close_is_echoed_with_its_code(raw, code):
    raw.send(frame(CLOSE, struct.pack('>H', code) + b'bye'))
    assert_fails(raw, code)


def test_7_empty_close_is_answered(raw):
    raw.send(frame(CLOSE, b''))
    assert raw.recv_close_code() == 1000       # no code given: a normal close
    assert raw.closed_by_server()


@pytest.mark.parametrize('code', [0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535])
def test_7_invalid_close_codes_fail(raw, code):
    raw.send(frame(CLOSE, struct.pack('>H', code)))
    assert_fails(raw, 1002)


def test_7_one_byte_close_payload_fails(raw):
    raw.send(frame(CLOSE, b'\x03'))
    assert_fails(raw, 1002)


def test_7_close_reason_with_invalid_utf8_fails(raw):
    raw.send(frame(CLOSE, struct.pack('>H', 1000) + b'\xce\xba\xe1\xbd'))
    assert_fails(raw, 1007)


def test_7_data_after_close_is_ignored(raw):
    raw.send(frame(CLOSE, struct.pack('>H', 1000)) + frame(TEXT, STATUS))
    assert_fails(raw, 1000)


# --- 9: limits --------------------------------------------------------------------------
@pytest.mark.parametrize('size', [MAX + 1, 65536, 1 << 20])
def test_9_oversize_message_fails_with_1009(raw, size):
    raw.send(frame(TEXT, b'', length=size))     # the header alone announces it
    assert_fails(raw, 1009)


def test_9_eight_byte_length_with_the_top_bit_set_fails(raw):
    raw.send(bytes([0x81, 0xFF]) + b'\x80' + b'\x00' * 7)
    # the length is checked against the cap before anything is read: too big
    assert_fails(raw, 1009)


# --- masking ------------------------------------------------------------------------------
def test_unmasked_client_frame_fails(raw):
    raw.send(frame(TEXT, STATUS, mask=False))
    assert_fails(raw, 1002)


def test_the_board_keeps_serving_after_every_failure(board):
    for data, code in [(frame(TEXT, STATUS, rsv=1), 1002), (frame(CONT, b'x'), 1002),
                       (frame(TEXT, b'\xff'), 1007), (frame(TEXT, b'', length=1 << 20), 1009),
                       (frame(TEXT, STATUS, mask=False), 1002)]:
        ws = RawWebSocket(board)
        ws.send(data)
        assert ws.recv_close_code() == code
        ws.close()
    assert board.status()['camera'] == 'ok'
    assert 'Traceback' not in board.output()


@pytest.mark.parametrize('cut', [1, 2, 6, 10])
def test_a_peer_that_closes_mid_frame_is_no_error(board, cut):
    ws = RawWebSocket(board)
    ws.send(frame(TEXT, STATUS)[:cut])
    ws.close()
    board.wait_for(lambda s: s['connections'] == 1)
    assert 'Traceback' not in board.output()

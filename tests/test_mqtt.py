"""The board on MQTT, with a real broker (mosquitto) and a real client
(paho-mqtt): availability and its last will, the coalesced state, commands
through the WebSocket's command layer, the camera topic, faults (power cut,
broker restart, broker down at boot, wrong password), TLS to the broker
(verified against the configured CA, and refused when the broker's certificate
is not from it), QoS 1 retransmission with DUP while the broker is frozen, a
fleet on one broker, and /stream as an ffmpeg input."""
import json
import os
import signal
import subprocess
import time

import pytest

from broker import Broker, Listener, board_config, make_ca, make_cert
from tools.sim.harness import SSE

ID = 'a0b1c2d3e4f5'
BASE = 'esp32cam/%s/' % ID
REFUSED = ('error: not authorized', 'error: bad user name or password')


def online(topic, payload):
    return topic == BASE + 'availability' and payload == b'online'


def command(listener, cmd):
    mark = listener.mark()
    listener.publish(BASE + 'commands', cmd if isinstance(cmd, (str, bytes)) else json.dumps(cmd))
    return listener.wait_json(BASE + 'results', start=mark)


def test_online_state_and_commands_as_over_the_websocket(make_board, broker, listener):
    board = make_board(config=board_config(broker), board_id=ID).start()
    listener.wait(online)
    state = listener.wait_json(BASE + 'state', lambda s: s['mqtt'] == 'connected')
    assert state['settings']['sensitivity'] == 50 and 'trigger_count' in state
    sse = SSE(board)
    assert sse.until(lambda s: s['mqtt'] == 'connected')
    # a setting over MQTT: the same reply as the WebSocket's, id echoed
    reply = command(listener, {'cmd': 'set', 'key': 'sensitivity', 'value': 80, 'id': 7})
    assert reply == {'ok': True, 'key': 'sensitivity', 'value': 80, 'id': 7}
    sse.until(lambda s: s['settings']['sensitivity'] == 80)
    listener.wait_json(BASE + 'state', lambda s: s['settings']['sensitivity'] == 80)
    # bad payloads: an error on the result topic, nothing changed
    assert command(listener, {'cmd': 'set', 'key': 'sensitivity', 'value': 101})['error'] == 'bad value'
    assert command(listener, 'not json')['error'] == 'bad json'
    assert command(listener, b'\xff\xfe')['ok'] is False
    assert command(listener, {'cmd': 'fly'})['error'] == 'unknown command'
    assert command(listener, [1, 2])['error'] == 'bad command'
    with board.ws() as ws:
        status = board.command(ws, cmd='status')['status']
    assert status['settings']['sensitivity'] == 80 and status['mqtt'] == 'connected'
    sse.close()


def test_a_snapshot_goes_out_whole_as_it_is_on_the_card(make_board, broker, listener):
    # no live frames (camera_s 0): the first image on the topic is the snapshot's
    board = make_board(config=board_config(broker, camera_s=0), board_id=ID).start()
    board.wait_frame()
    listener.wait(online)
    reply = command(listener, {'cmd': 'snapshot_now'})
    assert reply['ok'] is True
    name = reply['saved'].rsplit('/', 1)[1]
    _, jpeg = listener.wait(lambda t, p: t == BASE + 'camera')
    assert jpeg[:2] == b'\xff\xd8' and jpeg[-2:] == b'\xff\xd9'
    assert jpeg == board.card_files(raw=True)[name]       # the file, comment and all
    event = listener.wait_json(BASE + 'events', lambda e: e['event'] == 'snapshot')
    assert event['path'] == reply['saved']
    # on request: the latest frame
    mark = listener.mark()
    listener.publish(BASE + 'camera/get', b'')
    _, frame = listener.wait(lambda t, p: t == BASE + 'camera', start=mark)
    assert frame[:2] == b'\xff\xd8' and frame[-2:] == b'\xff\xd9'


def test_the_camera_topic_shows_what_the_camera_sees_now(make_board, broker, listener):
    """Home Assistant's camera shows the last image on the topic: a live
    frame comes every camera_s, with no snapshot saved, and no faster."""
    board = make_board(config=board_config(broker, camera_s=1), board_id=ID).start()
    board.wait_frame()
    listener.wait(online)
    assert command(listener, {'cmd': 'set', 'key': 'motion_armed', 'value': False})['ok']
    mark = listener.mark()
    time.sleep(6.5)
    with listener.cond:
        frames = [(p, r) for t, p, r in listener.messages[mark:] if t == BASE + 'camera']
    assert 4 <= len(frames) <= 8, len(frames)          # one a second, bounded
    for jpeg, retained in frames:
        assert jpeg[:2] == b'\xff\xd8' and jpeg[-2:] == b'\xff\xd9'
    # the figure walks through the scene: live frames, not one saved picture
    assert len({jpeg for jpeg, _ in frames}) >= 3
    assert board.status()['snapshot_count'] == 0
    # retained: Home Assistant, restarted, shows the newest one at once
    late = Listener(broker, topics=(BASE + 'camera',))
    try:
        _, jpeg = late.wait(lambda t, p: True)
        assert late.messages[0][2] is True and jpeg[:2] == b'\xff\xd8'
    finally:
        late.close()


def test_power_cut_leaves_offline_within_one_and_a_half_keepalives(make_board, broker, listener):
    board = make_board(config=board_config(broker, keepalive_s=2), board_id=ID).start()
    listener.wait(online)
    mark = listener.mark()
    board.power_cut()
    cut = time.monotonic()
    listener.wait(lambda t, p: t == BASE + 'availability' and p == b'offline',
                  timeout=2 * 1.5 + 1, start=mark)
    assert time.monotonic() - cut <= 2 * 1.5 + 0.5


def test_broker_restart_reconnects_and_serving_never_stalls(make_board, tmp_path, broker):
    board = make_board(config=board_config(broker), board_id=ID).start()
    board.wait_for(lambda s: s['mqtt'] == 'connected')
    broker.stop()
    status = board.wait_for(lambda s: s['mqtt'].startswith('error'))
    with board.http() as client:
        for _ in range(20):     # serving on while the broker is away
            assert client.get('/snapshot.jpg').status_code == 200
            time.sleep(0.1)
    broker.start()
    listener = Listener(broker)
    listener.wait(online, timeout=15)           # retained, republished
    listener.wait_json(BASE + 'state', lambda s: s['mqtt'] == 'connected', timeout=15)
    status = board.wait_for(lambda s: s['mqtt'] == 'connected')
    print('loop_stall_ms across a broker restart:', status['loop_stall_ms'])
    assert status['loop_stall_ms'] < 1000       # a blocking connect or read: >= 1000
    listener.close()


def test_broker_down_at_boot_then_up(make_board, tmp_path):
    broker = Broker(tmp_path)           # configured, not running
    board = make_board(config=board_config(broker), board_id=ID).start()
    status = board.wait_for(lambda s: s['mqtt'].startswith('error'))
    with board.http() as client:
        assert client.get('/').status_code == 200
    broker.start()
    try:
        board.wait_for(lambda s: s['mqtt'] == 'connected', timeout=15)
        listener = Listener(broker)
        listener.wait(online)
        listener.close()
    finally:
        broker.stop()


def test_wrong_password_is_reported_and_retried_with_backoff(make_board, tmp_path):
    broker = Broker(tmp_path, users={'cam': 'right'}).start()
    try:
        board = make_board(config=board_config(broker, user='cam', password='wrong',
                                                backoff_max_s=4), board_id=ID).start()
        status = board.wait_for(lambda s: s['mqtt'] != 'connecting')
        # CONNACK 5; mosquitto 2 answers a wrong password so (4 is the other's)
        assert status['mqtt'] in REFUSED
        time.sleep(6)
        attempts = broker.log().count('New connection from')
        assert 2 <= attempts <= 5, attempts     # 1 s, 2 s, 4 s apart: no tight loop
        status = board.status()
        assert status['mqtt'] in REFUSED
        assert status['loop_stall_ms'] < 1000       # a blocking connect or read: >= 1000
        board.stop()
        right = make_board(config=board_config(broker, user='cam', password='right'),
                           board_id=ID).start()
        right.wait_for(lambda s: s['mqtt'] == 'connected')
    finally:
        broker.stop()


@pytest.fixture
def tls(tmp_path):
    """A CA the board trusts, the broker's certificate from it, and a
    second certificate from a CA the board does not know."""
    ca = make_ca(tmp_path, 'camera-ca')
    rogue = make_ca(tmp_path, 'rogue-ca')
    return {'ca': ca, 'good': make_cert(tmp_path, 'broker', ca),
            'bad': make_cert(tmp_path, 'impostor', rogue)}


def test_tls_to_the_broker_verified_against_the_configured_ca(make_board, tmp_path, tls):
    broker = Broker(tmp_path, tls=tls['good']).start()
    try:
        listener = Listener(broker, cafile=tls['ca']['pem'])
        # as README.md says: tls on, the CA as a DER file on flash
        board = make_board(config=board_config(broker, tls=True, ca=tls['ca']['der']),
                           board_id=ID).start()
        # a TLS handshake in the unix port takes seconds when the host is busy
        listener.wait(online, timeout=60)
        listener.wait_json(BASE + 'state', lambda s: s['mqtt'] == 'connected', timeout=60)
        assert command(listener, {'cmd': 'set', 'key': 'sensitivity', 'value': 70})['ok'] is True
        status = board.status()
        assert status['mqtt'] == 'connected'
        assert status['loop_stall_ms'] < 1000       # the handshake does not block serving
        listener.close()
    finally:
        broker.stop()
    # the TLS listener really was one: the board's session came in over TLS
    log = broker.log()
    assert 'New client connected' in log and 'esp32cam-' + ID in log


def test_tls_broker_with_a_certificate_not_from_the_ca_is_refused(make_board, tmp_path, tls):
    broker = Broker(tmp_path, tls=tls['bad']).start()
    try:
        board = make_board(config=board_config(broker, tls=True, ca=tls['ca']['der'],
                                               backoff_max_s=4), board_id=ID).start()
        status = board.wait_for(lambda s: s['mqtt'] != 'connecting')
        assert status['mqtt'].startswith('error'), status['mqtt']
        time.sleep(6)
        status = board.status()
        assert status['mqtt'].startswith('error'), status['mqtt']
        assert status['loop_stall_ms'] < 1000
        log = broker.log()
        # handshakes tried, 1 s, 2 s, 4 s apart (no tight loop), none got to CONNECT
        attempts = log.count('OpenSSL Error')
        assert 'esp32cam-' + ID not in log and 'New client connected' not in log, log
        assert 2 <= attempts <= 10, log
    finally:
        broker.stop()


def test_unacknowledged_qos1_is_resent_with_dup_and_delivered_when_the_broker_is_back(
        make_board, broker, listener):
    # results go out at QoS 1. The card is made slow so that a snapshot_now
    # command is still being saved when the broker freezes (SIGSTOP: the TCP
    # connection stays up, nothing is acknowledged); the reply then waits for
    # its PUBACK and is resent with DUP after 5 s. keepalive_s 20: the board
    # does not give up on the silent broker (30 s) before that.
    board = make_board(config=board_config(broker, keepalive_s=20), board_id=ID).start()
    board.wait_frame()
    # the state comes after the discovery configs: the command is not queued behind them
    listener.wait_json(BASE + 'state', lambda s: s['mqtt'] == 'connected')
    board.set_faults(sd_bytes_per_s=8000)       # a snapshot takes seconds to save
    mark = listener.mark()
    listener.publish(BASE + 'commands', json.dumps({'cmd': 'snapshot_now', 'id': 'dup'}))
    time.sleep(0.5)                             # delivered; the board is saving
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(9)                           # the reply, and its resend after 5 s
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    reply = listener.wait_json(BASE + 'results', lambda r: r.get('id') == 'dup', start=mark)
    assert reply['ok'] is True
    board.set_faults()
    log = broker.log()
    sent = [line for line in log.splitlines()
            if 'Received PUBLISH from esp32cam-' + ID in line and BASE + 'results' in line]
    assert any('(d0, q1' in line for line in sent), sent
    assert any('(d1, q1' in line for line in sent), sent     # the retransmission
    # the session survived: the board did not reconnect, and QoS 1 still works
    assert log.count('New client connected from') == 2, log  # listener + board, once each
    assert command(listener, {'cmd': 'status', 'id': 'after'})['id'] == 'after'
    assert board.status()['mqtt'] == 'connected'


CLIENT_SCRIPT = """
import asyncio
from firmware.mqtt import Client
async def main():
    client = Client('127.0.0.1', %d, 'dup-acks', report=lambda text: print('report', text))
    client.start()
    while not client.connected:
        await asyncio.sleep_ms(20)
    for i in range(20):
        await client.publish('t', 'm%%d' %% i, qos=1)
        print('acked', i)
    print('pending', len(client._acked))
asyncio.run(main())
"""


def test_late_duplicate_pubacks_do_not_use_up_the_client(tmp_path):
    # A broker acknowledges the first send and the DUP resend of a QoS 1
    # publish alike: the second PUBACK finds nobody waiting and must not be
    # kept (the client once kept up to 8 and then ignored every PUBACK).
    import socket
    import threading
    from tools.sim.harness import REPO, free_port
    port = free_port()
    server = socket.create_server(('127.0.0.1', port))
    server.settimeout(30)

    def serve():
        conn, _ = server.accept()
        conn.settimeout(30)
        stream = conn.makefile('rb')
        try:
            while True:
                first = stream.read(1)
                if not first:
                    return
                n = shift = 0
                while True:
                    byte = stream.read(1)[0]
                    n |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = stream.read(n)
                if first[0] == 0x10:
                    conn.sendall(b'\x20\x02\x00\x00')
                elif first[0] & 0xF6 == 0x32:          # PUBLISH, QoS 1
                    size = int.from_bytes(body[:2], 'big')
                    pid = body[2 + size:4 + size]
                    conn.sendall(b'\x40\x02' + pid + b'\x40\x02' + pid)
        except OSError:
            pass                # the client went: its process ended
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    script = tmp_path / 'dup_acks.py'
    script.write_text(CLIENT_SCRIPT % port)
    out = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'micropython'), str(script)],
                         cwd=REPO, env=dict(os.environ, MICROPYPATH=REPO + ':.frozen'),
                         capture_output=True, text=True, timeout=120)
    server.close()
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'acked 19' in out.stdout and 'pending 0' in out.stdout, out.stdout


def test_three_boards_on_one_broker_never_collide(make_board, broker, listener):
    boards = [make_board(config=board_config(broker)).start() for _ in range(3)]
    ids = set()
    for board in boards:
        status = board.wait_for(lambda s: s['mqtt'] == 'connected')
        assert status['mqtt'] == 'connected'
    time.sleep(1)
    for topic, payload, _ in list(listener.messages):
        if topic.startswith('esp32cam/') and topic.endswith('/availability'):
            ids.add(topic.split('/')[1])
    assert len(ids) == 3
    configs = [(t, json.loads(p)) for t, p, _ in list(listener.messages)
               if t.startswith('homeassistant/') and p]
    unique_ids = [c['unique_id'] for _, c in configs]
    assert len(unique_ids) == len(set(unique_ids)) == 3 * len(configs) // 3
    assert len({t for t, _ in configs}) == len(configs)
    for board_id in ids:
        mine = [c for t, c in configs if t.split('/')[2] == board_id]
        assert all(c['availability_topic'] == 'esp32cam/%s/availability' % board_id for c in mine)
        assert all(board_id in c['unique_id'] for c in mine)
    # a command to one board changes that board only
    first = sorted(ids)[0]
    listener.publish('esp32cam/%s/commands' % first,
                     json.dumps({'cmd': 'set', 'key': 'quality', 'value': 20}))
    listener.wait_json('esp32cam/%s/results' % first)
    qualities = sorted(b.status()['settings']['quality'] for b in boards)
    assert qualities == [12, 12, 20]


def test_mqtt_leaves_a_socket_for_itself(make_board, broker):
    board = make_board(config=board_config(broker), board_id=ID, sockets=10).start()
    board.wait_for(lambda s: s['mqtt'] == 'connected')
    # 6 open streams fill max_connections (6 with MQTT): the 7th is refused with
    # 503 by the server, not dropped by lwIP, and MQTT stays connected
    import socket
    held = []
    try:
        for _ in range(6):
            s = socket.create_connection(('127.0.0.1', board.port))
            s.sendall(('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n'
                       % board.raw_auth()).encode())
            assert s.recv(4096).split(b'\r\n')[0].endswith(b' 200 OK')
            held.append(s)
        s = socket.create_connection(('127.0.0.1', board.port))
        s.settimeout(10)
        s.sendall(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        assert b' 503 ' in s.recv(4096).split(b'\r\n')[0]
        s.close()
    finally:
        for s in held:
            s.close()
    assert board.wait_for(lambda s: s['clients'] <= 1)['mqtt'] == 'connected'   # 1: this status query


def test_mqtt_is_off_without_a_host(board):
    assert board.status()['mqtt'] == 'off'


def test_stream_is_an_ffmpeg_input(board):
    # as go2rtc and Frigate take it (README): the API token in the URL
    out = subprocess.run(['ffmpeg', '-v', 'error', '-i', board.url + '/stream?token=' + board.token,
                          '-frames:v', '20', '-f', 'null', '-'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == '', out.stderr


def test_clip_events_and_the_boards_own_url_as_home_assistant_gets_them(make_board, broker,
                                                                        listener):
    # camera_s 0: the retained camera message is the snapshot's, not a live frame
    board = make_board(config=board_config(broker, camera_s=0), board_id=ID).start()
    board.wait_frame()
    listener.wait(online)
    # the console and Home Assistant's device page name the URL to open
    assert 'app: serving on %s/\n' % board.url in board.output()
    topic, payload = listener.wait(lambda t, p: t == 'homeassistant/camera/%s/camera/config' % ID)
    assert json.loads(payload)['device']['configuration_url'] == board.url + '/'
    assert command(listener, {'cmd': 'record_start'})['ok']
    time.sleep(2.5)
    mark = listener.mark()
    assert command(listener, {'cmd': 'record_stop'})['stopped']
    topic, payload = listener.wait(lambda t, p: t == BASE + 'events' and b'"clip"' in p,
                                   start=mark)
    event = json.loads(payload)
    assert event['event'] == 'clip' and event['path'].endswith('.avi') and event['frames'] > 10
    assert type(event['fps']) is int and 1 <= event['fps'] <= 12, payload
    # the latest snapshot waits on the retained camera topic for a late subscriber
    mark = listener.mark()
    with board.ws() as ws:
        saved = board.command(ws, cmd='snapshot_now')['saved']
    on_card = board.card_read(saved[len('/sdcard'):])
    listener.wait(lambda t, p: t == BASE + 'camera' and p == on_card, start=mark)
    late = Listener(broker, topics=[BASE + 'camera'])
    try:
        late.wait(lambda t, p: p == on_card)
        assert [r for t, p, r in late.messages if p == on_card] == [True]
    finally:
        late.close()

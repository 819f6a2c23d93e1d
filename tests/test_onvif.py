"""ONVIF with real clients: onvif-zeep-async (Home Assistant's ONVIF client)
walks the board as Home Assistant's setup does, ffprobe plays the stream
URI it gets, wsdiscovery's own Probe and parser find the board by a probe
sent straight to its (loopback) discovery port; and the recorder login,
which those use, opens nothing that changes the board."""
import asyncio
import base64
import datetime
import hashlib
import os
import socket
import subprocess
import time

import httpx
import pytest
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFAuthError, ONVIFError
from zeep.exceptions import Fault

from tools.sim.harness import Board

WIDTH, HEIGHT = 320, 240            # the simulator's frames
WSDL = os.path.join(os.path.dirname(__import__('onvif').__file__), 'wsdl')


@pytest.fixture(scope='module')
def board(tmp_path_factory):
    board = Board(tmp_path_factory.mktemp('onvif'), rtsp={'sockets': 3}, onvif=True).start()
    yield board
    board.stop()


def recorder_password(board):
    """The recorder login, as its owner reads it (GET /nvr, logged in)."""
    reply = httpx.get(board.url + '/nvr', headers=board.auth_headers(), timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.json()['user'] == 'recorder'
    return reply.json()['password']


def camera(board, password, user='recorder'):
    # no_cache: zeep keeps no sqlite cache; the WSDLs come from the package
    return ONVIFCamera('127.0.0.1', board.port, user, password, WSDL + '/', no_cache=True)


async def home_assistant_setup(board, password):
    """What homeassistant/components/onvif/device.py asks at setup (and for
    a picture), in its order; returns what it learnt."""
    cam = camera(board, password)
    try:
        await cam.update_xaddrs()
        capabilities = await cam.get_capabilities()
        device = await cam.create_devicemgmt_service()
        clock = await device.GetSystemDateAndTime()
        info = await device.GetDeviceInformation()
        interfaces = await device.GetNetworkInterfaces()
        scopes = await device.GetScopes()
        media = await cam.create_media_service()
        media_caps = await media.GetServiceCapabilities()
        profiles = await media.GetProfiles()
        request = media.create_type('GetStreamUri')
        request.ProfileToken = profiles[0].token
        request.StreamSetup = {'Stream': 'RTP-Unicast', 'Transport': {'Protocol': 'RTSP'}}
        stream = await media.GetStreamUri(request)
        snapshot = await cam.get_snapshot(profiles[0].token)
        return dict(capabilities=capabilities, clock=clock, info=info, interfaces=interfaces,
                    scopes=scopes, media_caps=media_caps, profiles=profiles,
                    stream_uri=stream.Uri, snapshot=snapshot)
    finally:
        await cam.close()


def test_home_assistants_client_sets_the_camera_up_and_ffprobe_plays_its_stream(board):
    password = recorder_password(board)
    got = asyncio.run(home_assistant_setup(board, password))
    assert got['info'].Manufacturer == 'AI-Thinker' and got['info'].Model == 'ESP32-CAM'
    assert got['capabilities']['Media']['XAddr'].endswith('/onvif/media_service')
    assert got['interfaces'][0].Enabled and len(got['interfaces'][0].Info.HwAddress) == 17
    assert any('Profile/Streaming' in s.ScopeItem for s in got['scopes'])
    assert got['media_caps'].SnapshotUri
    now = datetime.datetime.now(datetime.timezone.utc)
    date = got['clock'].UTCDateTime
    board_now = datetime.datetime(date.Date.Year, date.Date.Month, date.Date.Day, date.Time.Hour,
                                  date.Time.Minute, date.Time.Second, tzinfo=datetime.timezone.utc)
    assert abs((board_now - now).total_seconds()) < 30
    [profile] = got['profiles']
    encoder = profile.VideoEncoderConfiguration
    assert encoder.Encoding == 'JPEG'
    assert got['stream_uri'] == 'rtsp://127.0.0.1:%d/stream' % board.rtsp_port
    assert got['snapshot'][:2] == b'\xff\xd8'            # fetched with HTTP Digest
    # the NVR plays the URI it got, with the same login (RTSP Digest)
    url = got['stream_uri'].replace('rtsp://', 'rtsp://recorder:%s@' % password)
    probe = subprocess.run(['ffprobe', '-v', 'error', '-rtsp_transport', 'tcp',
                            '-show_entries', 'stream=codec_name,width,height',
                            '-of', 'csv=p=0', url], capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == 'mjpeg,%d,%d' % (WIDTH, HEIGHT), probe.stderr


def test_wrong_onvif_credentials_are_refused(board):
    async def ask(user, password):
        cam = camera(board, password, user)
        try:
            device = await cam.create_devicemgmt_service()
            return await device.GetDeviceInformation()
        finally:
            await cam.close()
    for user, password in (('recorder', 'not-it'), ('admin', recorder_password(board))):
        with pytest.raises(Fault) as refused:
            asyncio.run(ask(user, password))
        assert 'NotAuthorized' in str(refused.value.subcodes) or \
            'not authorized' in refused.value.message.lower()
    # the clock needs none (clients sync to it before they sign)
    body = soap('<tds:GetSystemDateAndTime/>')
    reply = httpx.post(board.url + '/onvif/device_service', content=body, timeout=10)
    assert reply.status_code == 200 and b'UTCDateTime' in reply.content
    # nor does a token or session open ONVIF: it is the recorder's
    reply = httpx.post(board.url + '/onvif/device_service', headers=board.auth_headers(),
                       content=soap('<tds:GetDeviceInformation/>'), timeout=10)
    assert reply.status_code == 400 and b'NotAuthorized' in reply.content


def soap(body, header=''):
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
            ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"'
            ' xmlns:trt="http://www.onvif.org/ver10/media/wsdl">'
            '<s:Header>%s</s:Header><s:Body>%s</s:Body></s:Envelope>' % (header, body)).encode()


def username_token(password, user='recorder'):
    nonce = os.urandom(16)
    created = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode())
                              .digest()).decode()
    return ('<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
            'oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/'
            'wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken>'
            '<wsse:Username>%s</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/'
            'wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">%s'
            '</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/'
            'oasis-200401-wss-soap-message-security-1.0#Base64Binary">%s</wsse:Nonce>'
            '<wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>'
            % (user, digest, base64.b64encode(nonce).decode(), created))


@pytest.mark.parametrize('body, status, subcode', [
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"></s:Envelope>', 400,
     b'ter:WellFormed'),
    (b'\xff\xfe<<<' * 50, 400, b'ter:WellFormed'),
    (b'', 400, b'ter:WellFormed'),
    (None, 500, b'ter:ActionNotSupported'),             # a well-signed SetHostname
    (b'<s:Body>' + b'x' * 9000 + b'</s:Body>', 400, b'ter:InvalidArgVal'),
])
def test_a_malformed_or_unknown_request_gets_a_fault_and_changes_nothing(
        board, body, status, subcode):
    password = recorder_password(board)
    if body is None:
        body = soap('<tds:SetHostname><tds:Name>evil</tds:Name></tds:SetHostname>',
                    username_token(password))
    reply = httpx.post(board.url + '/onvif/device_service', content=body, timeout=10)
    assert reply.status_code == status, reply.text
    assert b'<s:Fault>' in reply.content and subcode in reply.content
    info = httpx.post(board.url + '/onvif/device_service', timeout=10, content=soap(
        '<tds:GetHostname/>', username_token(password)))
    assert b'<tt:Name>esp32cam-sim</tt:Name>' in info.content
    assert recorder_password(board) == password


def test_the_recorder_login_only_looks(board):
    password = recorder_password(board)
    basic = {'Authorization': 'Basic ' + base64.b64encode(
        ('recorder:' + password).encode()).decode()}
    snapshot = httpx.get(board.url + '/snapshot.jpg', headers=basic, timeout=10)
    assert snapshot.status_code == 200 and snapshot.content[:2] == b'\xff\xd8'
    digest = httpx.DigestAuth('recorder', password)
    with httpx.stream('GET', board.url + '/stream', auth=digest, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers['Content-Type'].startswith('multipart/x-mixed-replace')
    changes = [('GET', '/control?var=framesize&val=5'), ('GET', '/status'),
               ('GET', '/nvr'), ('POST', '/nvr'), ('GET', '/snaps'),
               ('DELETE', '/snaps/x.jpg'), ('POST', '/ota'), ('GET', '/events')]
    for method, path in changes:
        for auth in (None, digest):
            reply = httpx.request(method, board.url + path, headers=basic if auth is None
                                  else None, auth=auth, timeout=10)
            assert reply.status_code in (401, 403), (method, path, reply.status_code)
    assert recorder_password(board) == password
    # an NVR is challenged for Digest; a browser (a dashboard whose session ran
    # out) is not, so it shows no login box of its own
    nvr = httpx.get(board.url + '/snapshot.jpg', timeout=10)
    assert nvr.status_code == 401 and nvr.headers['WWW-Authenticate'].startswith('Digest ')
    browser = httpx.get(board.url + '/snapshot.jpg', headers={'Sec-Fetch-Mode': 'no-cors'},
                        timeout=10)
    assert browser.status_code == 401 and browser.headers['WWW-Authenticate'] == 'Bearer'


def directed_probe(board, datagram, timeout=5):
    """Send one datagram to the board's discovery port; its reply or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        sock.settimeout(timeout)
        sock.sendto(datagram, ('127.0.0.1', board.discovery_port))
        try:
            return sock.recvfrom(65536)[0]
        except socket.timeout:
            return None


def test_wsdiscovery_finds_the_board_by_a_directed_probe(board):
    from wsdiscovery.actions.probe import constructProbe
    from wsdiscovery.message import createSOAPMessage, parseSOAPMessage
    from wsdiscovery.qname import QName
    # what a client floods and the board ignores, then still answers
    for junk in (b'', b'\x00' * 1500, b'<s:Envelope><s:Body><d:Probe', b'<' * 2048):
        assert directed_probe(board, junk, timeout=0.3) is None
    camera_type = QName('http://www.onvif.org/ver10/network/wsdl', 'NetworkVideoTransmitter')
    probe = constructProbe([camera_type], [])
    reply = directed_probe(board, createSOAPMessage(probe).encode())
    assert reply is not None
    match = parseSOAPMessage(reply, '127.0.0.1')
    assert match.getRelatesTo() == probe.getMessageId()
    [found] = match.getProbeResolveMatches()
    assert found.getXAddrs() == ['http://127.0.0.1:%d/onvif/device_service' % board.port]
    assert 'NetworkVideoTransmitter' in [t.getLocalname() for t in found.getTypes()]
    assert found.getEPR().startswith('urn:uuid:')
    # a probe for another kind of device gets no answer
    printer = constructProbe([QName('http://example.org/printers', 'Printer')], [])
    assert directed_probe(board, createSOAPMessage(printer).encode(), timeout=0.5) is None
    assert 'onvif: probe ignored' not in board.output()
    # on a network it hears multicast probes: it joined the group (the simulator
    # checks the request as lwIP does, and joins nothing on this machine)
    assert 'sim: multicast group 239.255.255.250 joined' in board.output()


def test_the_owner_renews_the_recorder_login_and_the_old_one_stops(board):
    old = recorder_password(board)
    renewed = httpx.post(board.url + '/nvr', headers=board.auth_headers(), timeout=10)
    assert renewed.status_code == 200
    new = renewed.json()['password']
    assert new != old and recorder_password(board) == new
    for password, status in ((old, 401), (new, 200)):
        reply = httpx.get(board.url + '/snapshot.jpg', timeout=10,
                          auth=httpx.DigestAuth('recorder', password))
        assert reply.status_code == status
    info = httpx.post(board.url + '/onvif/device_service', timeout=10,
                      content=soap('<tds:GetHostname/>', username_token(new)))
    assert info.status_code == 200


def test_wrong_recorder_logins_lock_the_address_out_as_other_logins_do(board):
    # last in this file: it locks 127.0.0.1 out for the backoff (2 s) and waits it out
    password = recorder_password(board)
    for _ in range(3):                          # config login.lock_after
        reply = httpx.post(board.url + '/onvif/device_service', timeout=10,
                           content=soap('<tds:GetHostname/>', username_token('guess')))
        assert reply.status_code == 400 and b'NotAuthorized' in reply.content
    right = soap('<tds:GetHostname/>', username_token(password))
    reply = httpx.post(board.url + '/onvif/device_service', content=right, timeout=10)
    assert reply.status_code == 400 and b'Locked out' in reply.content
    token = httpx.get(board.url + '/nvr', headers=board.auth_headers(), timeout=10)
    assert token.status_code == 429                 # the same lockout as the dashboard's
    snapshot = httpx.get(board.url + '/snapshot.jpg', timeout=10,
                         auth=httpx.DigestAuth('recorder', password))
    assert snapshot.status_code == 429
    deadline = time.monotonic() + 10
    while httpx.post(board.url + '/onvif/device_service', content=soap(
            '<tds:GetHostname/>', username_token(password)), timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_discovery_takes_its_socket_from_the_dashboards_and_onvif_needs_rtsp(make_board):
    from tools.sim.harness import sim_config
    config = sim_config()
    config['limits'] = {'max_connections': 7}
    board = make_board(rtsp={'sockets': 3}, onvif=True, config=config).start()
    output = board.output()
    assert 'config: rtsp.sockets is 2 at most with ONVIF discovery on' in output
    assert 'config: limits.max_connections is 3 at most with RTSP on' in output
    board.stop()
    config = sim_config()
    config['onvif'] = {'on': True}
    board = make_board(config=config).start()
    assert 'config: onvif.on needs rtsp.on' in board.output()
    reply = httpx.post(board.url + '/onvif/device_service', timeout=10,
                       content=soap('<tds:GetSystemDateAndTime/>'))
    assert reply.status_code == 404                 # no ONVIF service there


# --- board-side units under the MicroPython unix port --------------------------------
def micropython(code):
    from tools.sim.harness import REPO
    import sys
    binary = os.path.join(os.path.dirname(sys.executable), 'micropython')
    out = subprocess.run([binary, '-c', 'import sys\nsys.path.insert(0, %r)\n' % REPO + code],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def test_finding_an_element_costs_time_linear_in_the_body():
    # `<x a:Username a:Username ...>`: each near-match must not look back to the start
    out = micropython("""
import time
from firmware import soap
def cost(size):
    body = b'<x ' + b'a:Username ' * (size // 11)
    times = []
    for _ in range(31):     # beside two CPU hogs the least of 9 was preempted too
        t = time.ticks_us()
        soap.text(body, b'Username')
        times.append(time.ticks_diff(time.ticks_us(), t))
    return min(times)       # a loaded host only adds time: the least is the cost
print(cost(1000), cost(32000))
""")
    small, big = (int(x) for x in out.split())
    # 32x the body: linear is 32x, quadratic 1024x; a loaded host's slice of
    # a few ms fits in the 4x between linear and the limit
    assert big < 128 * max(small, 50), (small, big)


def test_username_tokens_must_be_fresh_and_the_http_nonce_is_renewed(tmp_path):
    out = micropython("""
import binascii, hashlib, time
from firmware import nvr
login = nvr.RecorderLogin(%r).load()
def token(created):
    nonce = b'0123456789abcdef'
    digest = binascii.b2a_base64(hashlib.sha1(nonce + created + login.password.encode())
                                 .digest()).strip()
    return (b'<Username>recorder</Username><Password>' + digest + b'</Password><Nonce>'
            + binascii.b2a_base64(nonce).strip() + b'</Nonce><Created>' + created
            + b'</Created>')
def stamp(offset):
    t = time.gmtime(time.time() + offset)
    return ('%%04d-%%02d-%%02dT%%02d:%%02d:%%02dZ' %% t[:6]).encode()
print(login.username_token_ok(token(stamp(0))), login.username_token_ok(token(stamp(-200))),
      login.username_token_ok(token(stamp(-600))), login.username_token_ok(token(stamp(600))),
      login.username_token_ok(token(b'yesterday')))
# zeep's form (+00:00), a fraction, another zone: the same moment
print(login.username_token_ok(token(stamp(0)[:-1] + b'+00:00')),
      login.username_token_ok(token(stamp(0)[:-1] + b'.250Z')),
      login.username_token_ok(token(stamp(3600)[:-1] + b'+01:00')),
      login.username_token_ok(token(stamp(0)[:-1] + b'+01:00')))
first = login.current_nonce()
print(login.current_nonce() == first, 'stale=true' in login.challenge(True))
login.nonce_s -= 3601                       # an hour on
second = login.current_nonce()
print(second != first, login.old_nonce == first)
""" % str(tmp_path / 'nvr.json'))
    assert out.split() == ['True', 'True', 'False', 'False', 'False', 'True', 'True', 'True',
                           'False', 'True', 'True', 'True', 'True']


def test_discovery_reads_only_when_a_datagram_is_there():
    # on the ESP32 a recvfrom that finds nothing has allocated its buffer all the same
    from tools.sim.harness import free_port
    out = micropython("""
import asyncio, io, socket
from firmware.discovery import Discovery
class Counting(io.IOBase):
    def __init__(self, sock):
        self.sock, self.calls = sock, 0
    def ioctl(self, request, arg):
        return self.sock.fileno() if request == 10 else -1      # MP_STREAM_GET_FILENO
    def recvfrom(self, size):
        self.calls += 1
        return self.sock.recvfrom(size)
    def sendto(self, data, peer):
        return self.sock.sendto(data, peer)
address = socket.getaddrinfo('127.0.0.1', %d)[0][-1]
raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw.bind(address)
raw.setblocking(False)
d = Discovery('uuid', 'cam', 'http://x/onvif/device_service')
d.sock = Counting(raw)
async def main():
    task = asyncio.create_task(d._serve())
    await asyncio.sleep_ms(600)
    idle = d.sock.calls
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'not a probe', address)
    await asyncio.sleep_ms(300)
    task.cancel()
    print(idle, d.sock.calls)
asyncio.run(main())
""" % free_port())
    assert out.split() == ['0', '1']


def test_the_device_advertises_only_the_security_it_checks(board):
    # the ONVIF services check WS-Security alone: no HTTP Digest promised there
    reply = httpx.post(board.url + '/onvif/device_service', timeout=10, content=soap(
        '<tds:GetServiceCapabilities/>', username_token(recorder_password(board))))
    assert reply.status_code == 200, reply.text
    assert b'UsernameToken="true"' in reply.content and b'HttpDigest="false"' in reply.content

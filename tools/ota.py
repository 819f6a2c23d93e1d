#!/usr/bin/env python3
"""Update a board over the air: pack the bundle (build/board/) into one
signed file and POST it to the board's /ota.

    python tools/ota.py --host esp32cam.local [--port 80] [--https]
        [--key ota.key] [--token TOKEN] [--bundle build/board] [--out FILE]
        [--pack-only] [--no-wait] [--downgrade]

The file: a line "ESP32CAM-OTA1 MAC LENGTH", the manifest (JSON: version,
its build number, [path, size, sha256] of every file of firmware/, static/
and lib/, and "downgrade": true with --downgrade), then the files. The board
refuses a build number not above the one it runs (an old file sent again)
unless the manifest says downgrade. MAC is HMAC-SHA256 of the manifest with the board's OTA key (the one
`make deploy` copied, ./ota.key by default), so the board takes only what
was made with its key. boot.py and main.py are not updated over the air:
they choose the slot and roll back, so only USB replaces them.

The board writes the files into its inactive slot, checks each SHA-256,
switches to the new slot and restarts. The update is kept once the new app
is healthy; after 3 boots without that, boot.py goes back to the old slot.
Without --no-wait this tool waits and prints the outcome (GET /ota).
The API token (--token, or ESP32CAM_TOKEN) is sent as a Bearer token.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from boardfiles import firmware_version  # noqa: E402
sys.path.insert(0, REPO)
from firmware import build_number  # noqa: E402  (plain Python: the board's own rule)
from bundle import listing  # noqa: E402

MAGIC = b'ESP32CAM-OTA1'
FOLDERS = ('firmware/', 'static/', 'lib/')   # what a slot holds (firmware/ota.py)


def read_key(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def manifest(bundle, version, downgrade=False):
    files = []
    for name in listing(bundle):
        if name.startswith(FOLDERS):
            with open(os.path.join(bundle, name), 'rb') as f:
                data = f.read()
            files.append([name, len(data), hashlib.sha256(data).hexdigest()])
    man = {'version': version, 'build': build_number(version), 'files': files}
    if downgrade:
        man['downgrade'] = True
    return man


def pack(bundle, key, out, version=None, downgrade=False):
    """Write the signed update file; returns its manifest. downgrade: the
    board takes it even if its build number is not above the running one."""
    man = manifest(bundle, version or firmware_version(), downgrade)
    text = json.dumps(man, separators=(',', ':')).encode()
    mac = hmac.new(key, text, hashlib.sha256).hexdigest().encode()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + '.part', 'wb') as f:
        f.write(MAGIC + b' ' + mac + b' ' + str(len(text)).encode() + b'\n' + text)
        for name, _, _ in man['files']:
            with open(os.path.join(bundle, name), 'rb') as src:
                f.write(src.read())
    os.replace(out + '.part', out)
    return man


def connection(host, port, https):
    if https:
        # the board's certificate is usually self-signed: pin it with your CA if you can
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port, timeout=30, context=context)
    return http.client.HTTPConnection(host, port, timeout=30)


def send(host, port, path, token=None, https=False):
    """POST the update file to /ota, streamed; returns (status, reply dict)."""
    conn = connection(host, port, https)
    headers = {'Content-Type': 'application/octet-stream',
               'Content-Length': str(os.path.getsize(path))}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    with open(path, 'rb') as body:
        conn.request('POST', '/ota', body=body, headers=headers)
        response = conn.getresponse()
        text = response.read()
    conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, {'ok': False, 'error': text.decode(errors='replace')}


def status(host, port, token=None, https=False):
    conn = connection(host, port, https)
    conn.request('GET', '/ota', headers={'Authorization': 'Bearer ' + token} if token else {})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return data


def wait_outcome(host, port, token, https, timeout):
    """The board's update status once the new slot is kept or rolled back."""
    deadline = time.monotonic() + timeout
    time.sleep(2)                       # it restarts a second after replying
    while time.monotonic() < deadline:
        try:
            now = status(host, port, token, https)
            if now.get('state') != 'trial' and not now.get('busy'):
                return now
        except (OSError, ValueError, http.client.HTTPException):
            pass                        # restarting
        time.sleep(1)
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--host', help='the board, e.g. esp32cam.local or 192.168.1.23')
    p.add_argument('--port', type=int)
    p.add_argument('--https', action='store_true')
    p.add_argument('--key', default=os.path.join(REPO, 'ota.key'))
    p.add_argument('--token', default=os.environ.get('ESP32CAM_TOKEN'))
    p.add_argument('--bundle', default=os.path.join(REPO, 'build', 'board'))
    p.add_argument('--out', default=os.path.join(REPO, 'build', 'update.ota'))
    p.add_argument('--pack-only', action='store_true', help='write the file, send nothing')
    p.add_argument('--no-wait', action='store_true')
    p.add_argument('--downgrade', action='store_true',
                   help='sign it as a deliberate downgrade: taken even if not newer')
    p.add_argument('--wait-s', type=float, default=600)
    args = p.parse_args()
    if not os.path.isdir(args.bundle):
        raise SystemExit('ota: no bundle at %s (run make bundle)' % args.bundle)
    if not os.path.exists(args.key):
        raise SystemExit('ota: no key at %s: the board takes updates made with the key '
                         '`make deploy` gave it' % args.key)
    try:
        man = pack(args.bundle, read_key(args.key), args.out, downgrade=args.downgrade)
    except ValueError as exc:
        raise SystemExit('ota: %s (firmware/__init__.py)' % exc)
    print('ota: %s, version %s (build %d%s), %d files' % (
        args.out, man['version'], man['build'], ', a downgrade' if args.downgrade else '',
        len(man['files'])))
    if args.pack_only:
        return 0
    if not args.host:
        raise SystemExit('ota: --host is needed to send it')
    host, _, given_port = args.host.partition(':')     # HOST=name:port works too
    port = args.port or int(given_port or (443 if args.https else 80))
    args.host = host
    code, reply = send(args.host, port, args.out, args.token, args.https)
    print('ota: board replied %d %s' % (code, json.dumps(reply)))
    if code == 401:
        print('ota: the board wants its API token: make ota ... TOKEN=<token> '
              '(or --token, or ESP32CAM_TOKEN)')
    if code != 200:
        return 1
    if args.no_wait:
        return 0
    outcome = wait_outcome(args.host, port, args.token, args.https, args.wait_s)
    print('ota: %s' % (outcome and outcome.get('last') or 'no answer from the board'))
    return 0 if outcome and outcome.get('state') == 'ok' and \
        outcome.get('version') == man['version'] else 1


if __name__ == '__main__':
    sys.exit(main())

"""Host side only, never goes onto a board: a real MQTT broker (Debian's
mosquitto) on a free loopback port, and a real client (paho-mqtt) that
records what it receives. Shared by the tests (tests/conftest.py,
test_mqtt.py, test_homeassistant.py, test_clips.py) and tools/bench_mqtt.py."""
import getpass
import json
import os
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as paho

from tools.sim.harness import REPO, free_port

MOSQUITTO = shutil.which('mosquitto') or '/usr/sbin/mosquitto'
MOSQUITTO_PASSWD = shutil.which('mosquitto_passwd') or '/usr/bin/mosquitto_passwd'


def ensure_mosquitto():
    if not os.path.exists(MOSQUITTO):
        subprocess.run(['bash', os.path.join(REPO, 'tools', 'system-deps.sh')], check=True)


class Broker:
    """mosquitto with a generated config; users={name: password} turns
    anonymous access off (a password file); acl=PATH adds that ACL file;
    tls={'cert': PEM, 'key': PEM} makes the listener TLS only (see
    make_ca/make_cert)."""

    def __init__(self, tmp_path, users=None, port=None, tls=None, acl=None):
        ensure_mosquitto()
        self.dir = tmp_path / ('broker-%d' % id(self))
        self.dir.mkdir()
        self.port = port or free_port()
        self.log_path = str(self.dir / 'mosquitto.log')
        lines = ['listener %d 127.0.0.1' % self.port, 'persistence false',
                 'log_dest file %s' % self.log_path, 'log_type all',
                 'connection_messages true',
                 # as root mosquitto drops to user "mosquitto", which cannot read tmp_path
                 'user ' + getpass.getuser()]
        if tls:
            lines += ['certfile ' + tls['cert'], 'keyfile ' + tls['key']]
        if users:
            passwd = str(self.dir / 'passwd')
            open(passwd, 'w').close()
            for name, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, '-b', passwd, name, password], check=True,
                               capture_output=True)
            lines += ['allow_anonymous false', 'password_file ' + passwd]
        else:
            lines += ['allow_anonymous true']
        if acl:
            lines += ['acl_file ' + acl]
        self.conf = str(self.dir / 'mosquitto.conf')
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, '-c', self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None, 'mosquitto exited: ' + self.log()
                time.sleep(0.05)
        raise RuntimeError('mosquitto did not start')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self):
        try:
            return open(self.log_path, errors='replace').read()
        except OSError:
            return ''


def _openssl(*args):
    subprocess.run(('openssl',) + args, check=True, capture_output=True)


def make_ca(directory, name):
    """A self-signed CA: {'pem', 'key', 'der'} (the board takes DER)."""
    pem, key, der = (str(directory / (name + ext)) for ext in ('.pem', '.key', '.der'))
    _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
             '-nodes', '-keyout', key, '-out', pem, '-days', '2', '-subj', '/CN=' + name)
    _openssl('x509', '-in', pem, '-outform', 'der', '-out', der)
    return {'pem': pem, 'key': key, 'der': der}


def make_cert(directory, name, ca):
    """A server certificate for 127.0.0.1/localhost signed by `ca`: {'cert', 'key'}."""
    cert, key, csr = (str(directory / (name + ext)) for ext in ('.pem', '.key', '.csr'))
    ext = directory / (name + '.ext')
    ext.write_text('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    _openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
             '-keyout', key, '-out', csr, '-subj', '/CN=localhost')
    _openssl('x509', '-req', '-in', csr, '-CA', ca['pem'], '-CAkey', ca['key'],
             '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', str(ext))
    return {'cert': cert, 'key': key}


class Listener:
    """A paho client subscribed to `topics`; keeps every message in order."""

    def __init__(self, broker, topics=('#',), user=None, password=None, cafile=None):
        self.messages = []          # (topic, payload bytes, retain)
        self.cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        if user:
            self.client.username_pw_set(user, password)
        if cafile:
            self.client.tls_set(ca_certs=cafile)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect('127.0.0.1', broker.port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.messages.append((message.topic, message.payload, message.retain))
            self.cond.notify_all()

    def wait(self, predicate, timeout=20, start=0):
        """The first message from index `start` on with predicate(topic,
        payload), waiting up to `timeout` s for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for topic, payload, _ in self.messages[start:]:
                    if predicate(topic, payload):
                        return topic, payload
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('no such message; got %r' % [
                        (t, p[:80]) for t, p, _ in self.messages[-20:]])
                self.cond.wait(left)

    def wait_json(self, topic, predicate=lambda v: True, timeout=20, start=0):
        def match(t, p):
            if t != topic:
                return False
            try:
                return predicate(json.loads(p))
            except ValueError:
                return False
        return json.loads(self.wait(match, timeout, start)[1])

    def mark(self):
        with self.cond:
            return len(self.messages)

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def board_config(broker, **mqtt):
    """The sim board's config with MQTT pointed at `broker`."""
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['loop_monitor'] = True
    config['mqtt'] = dict({'host': '127.0.0.1', 'port': broker.port, 'keepalive_s': 4,
                           'backoff_max_s': 2}, **mqtt)
    return config

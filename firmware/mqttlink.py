"""The board on MQTT (when mqtt.host is set): topics under esp32cam/<board id>/.

  availability  online/offline, retained (offline is the last will)
  state         the status object of SSE, retained; coalesced like SSE: the
                newest state goes out, never a backlog (and every state_s)
  events        snapshot/motion/motion_end/deleted, as SSE names them
  camera        the latest frame every camera_s (when the camera has a new
                one), on any message to camera/get, and the JPEG of every
                saved snapshot (the file on the card); retained; one at a
                time, sent or dropped whole
  commands      the WebSocket's JSON commands (firmware/commands.py), as
                mqtt.commands allows: "all", "read-only" (status), "none"
                (not subscribed, nor camera/get)
  results       their replies
Home Assistant discovery (firmware/homeassistant.py) is sent on every
connect, when homeassistant/status says online and when the motion zones
change (a binary_sensor per zone); with mqtt.discovery
false the retained configs are cleared instead.
"""
import asyncio
import os
from micropython import const
from firmware import VERSION, commands, homeassistant, ticks
from firmware.mqtt import Client
from firmware.text import utf8_valid

_MAX_COMMANDS = const(4)        # waiting commands; more are answered 'busy'


def board_id():
    """The station MAC as 12 hex digits: unique per board, stable."""
    import binascii
    import network
    try:
        mac = network.WLAN(network.STA_IF).config('mac')
    except Exception:
        mac = None
    if not mac:
        import machine
        mac = machine.unique_id()
    return binascii.hexlify(mac).decode()


class MqttLink:
    """Owns the MQTT client and the task that publishes for the board."""

    def __init__(self, board, config):
        self.board = board
        self.state = board.state
        self.config = config
        self.id = board_id()
        self.base = 'esp32cam/%s/' % self.id
        self.prefix = config['discovery_prefix']
        ssl = None
        if config['tls']:
            import ssl as ssl_module
            ssl = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
            if config['ca']:
                with open(config['ca'], 'rb') as f:
                    ssl.load_verify_locations(cadata=f.read())
                ssl.verify_mode = ssl_module.CERT_REQUIRED
            else:
                ssl.verify_mode = ssl_module.CERT_NONE
        self.client = Client(
            config['host'], config['port'] or (8883 if ssl else 1883),
            config['client_id'] or 'esp32cam-' + self.id, config['user'],
            config['password'], ssl, config['keepalive_s'],
            (self.base + 'availability', b'offline', True), config['backoff_max_s'],
            self._on_connect, self._on_message, lambda text: self.state.update(mqtt=text))
        self.commands = []
        self.allowed = None if config['commands'] == 'all' else commands.READ_ONLY
        self.announce = False
        self.zone_names = None          # the motion zones the last discovery told
        self.image_path = None
        self.frame_wanted = False
        self.sent_frame = -1            # camera.frame_count of the last frame sent
        self.seen_version = -1
        self.seen_event = self.state.last_event_id
        self.state_ms = 0
        self._wake = asyncio.Event()

    def start(self):
        self.state.gauges['rssi'] = _rssi
        self.client.start()
        asyncio.create_task(self._follow_state())
        asyncio.create_task(self._pump())
        if self.config['camera_s']:
            asyncio.create_task(self._live_frames())

    # --- what the broker tells us ----------------------------------------
    async def _on_connect(self):
        client = self.client
        # subscribed before "online": the broker takes packets in order, so
        # a command sent on seeing it reaches us
        if self.config['commands'] != 'none':
            await client.subscribe(self.base + 'commands')
            await client.subscribe(self.base + 'camera/get')
        await client.subscribe(self.prefix + '/status')
        await client.publish(self.base + 'availability', 'online', retain=True, qos=1)
        self.announce = True            # the pump sends discovery, then the state again
        self.seen_version = -1
        self._wake.set()

    def _on_message(self, topic, payload):
        if topic == self.base + 'commands':
            if len(self.commands) < _MAX_COMMANDS:
                self.commands.append(payload)
            else:
                print('mqtt: command dropped, too many waiting')
        elif topic == self.base + 'camera/get':
            self.frame_wanted = True
        elif topic == self.prefix + '/status' and payload == b'online':
            self.announce = True        # Home Assistant restarted
        self._wake.set()

    # --- publishing -------------------------------------------------------
    def _zone_names(self):
        return [zone['name'] for zone in self.state.state['settings'].get('motion_zones', [])]

    async def _discovery(self):
        client = self.client
        self.zone_names = self._zone_names()
        if self.config['discovery']:
            for topic, payload in homeassistant.configs(
                    self.id, self.base, VERSION, self.board.url, self.prefix,
                    controls=self.config['commands'] == 'all', zone_names=self.zone_names):
                # a clear (an empty zone slot, a control not allowed) needs no
                # acknowledgement: every connect sends them all again
                await client.publish(topic, payload, retain=True, qos=1 if payload else 0)
        else:
            # the feature was turned off: empty retained configs remove the entities
            for topic in homeassistant.config_topics(self.id, self.prefix):
                await client.publish(topic, b'', retain=True, qos=1)

    async def _follow_state(self):
        while True:
            await self.state.wait()
            self._wake.set()

    async def _live_frames(self):
        # Home Assistant's camera shows the last image on the topic: a new
        # frame every camera_s keeps it what the camera sees now, at a bounded rate
        camera = self.board.camera
        while True:
            await asyncio.sleep(self.config['camera_s'])
            if self.client.connected and camera.frame_count != self.sent_frame:
                self.frame_wanted = True
                self._wake.set()

    async def _pump(self):
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.client.connected:
                continue
            try:
                await self._publish_pending()
            except Exception as exc:    # the connection went: the client reconnects
                print('mqtt: publish failed:', exc)

    async def _publish_pending(self):
        client = self.client
        state = self.state
        if self.config['discovery'] and self.zone_names is not None and \
                self.zone_names != self._zone_names():
            self.announce = True        # a zone's binary_sensor came, went or was renamed
        if self.announce:
            self.announce = False
            try:
                await self._discovery()
            except Exception:
                self.announce = True    # not all acknowledged: all again on the next pass
                raise
        while self.commands:
            payload = self.commands.pop(0)
            text = payload.decode() if utf8_valid(payload) else payload
            reply = await commands.handle(text, self.board, self.allowed)
            await client.publish(self.base + 'results', commands.encode(reply), qos=1)
        if self.seen_event < state.last_event_id:
            events = state.events_after(self.seen_event)
            if not events:
                self.seen_event = state.last_event_id   # gone from the ring already
            # one emitted while these are sent waits for the next pass
            for number, name, data in events:
                self.seen_event = number
                event = dict(data)
                event['event'] = name
                await client.publish(self.base + 'events', commands.encode(event))
                if name == 'snapshot':
                    self.image_path = data['path']  # only the newest waits
        if self.seen_version != state.version or \
                ticks.now_ms() - self.state_ms >= self.config['state_s'] * 1000:
            self.seen_version = state.version
            self.state_ms = ticks.now_ms()
            await client.publish(self.base + 'state', commands.encode(state.status()),
                                 retain=True)
        if self.image_path:
            path = self.image_path
            self.image_path = None
            await self._publish_file(path)
        if self.frame_wanted:
            self.frame_wanted = False
            await self._publish_frame()
        if self.commands or self.image_path or self.seen_version != state.version \
                or self.seen_event < state.last_event_id:
            self._wake.set()            # more came in meanwhile

    async def _publish_frame(self):
        """The latest frame, sent from the camera's buffer: held while it is
        sent, never copied (the camera takes another buffer meanwhile)."""
        camera = self.board.camera
        jpeg, slot = camera.hold()
        try:
            if jpeg:
                self.sent_frame = camera.frame_count
                await self.client.publish(self.base + 'camera', jpeg, retain=True)
        finally:
            camera.release(slot)

    async def _publish_file(self, path):
        """The snapshot file as it is on the card, read piecewise."""
        try:
            size = os.stat(path)[6]
            f = open(path, 'rb')
        except OSError:
            return                      # deleted meanwhile: nothing to send
        try:
            await self.client.publish(self.base + 'camera', f.readinto, retain=True,
                                      size=size)
        finally:
            f.close()


def _rssi():
    try:
        import network
        return network.WLAN(network.STA_IF).status('rssi')
    except Exception:
        return None

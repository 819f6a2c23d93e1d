"""The Board: builds the parts from the config, owns them as named
attributes, and starts their tasks. The one place that knows them all;
routes, commands and tasks get the Board and use its parts."""
import asyncio
import gc

from firmware import auth, clock, settings as settings_module, state as state_module, watchdog
from firmware.app import create_app
from firmware.camera import CameraTask
from firmware.clips import Recorder
from firmware.guard import SESSIONS_FILE, Guard
from firmware.led import FlashLed
from firmware.motion import Motion
from firmware.nvr import RecorderLogin
from firmware.settingsfile import SettingsFile
from firmware.snapshots import SnapshotService
from firmware.startup import url
from firmware.card import mount_card
from firmware.snapstore import SnapshotStore
from firmware.timeline import MotionTimeline


class Board:
    """config, state, store, camera, snapshots, motion, led, guard, settings,
    nvr (the recorder login), and rtsp, onvif, discovery when on."""

    def __init__(self, config, card_mounted, camera_module, ip='127.0.0.1', problems=()):
        self.config = config
        self.ip = ip
        self.tls = bool(config['tls']['cert'])
        self.url = url(ip, config['http_port'], self.tls)     # the dashboard's address
        self.state = state = state_module
        state.update(config_problems=list(problems))   # also on the console (startup)
        # the settings changed at run time come back: the parts below are
        # built from the config with them
        configured = settings_module.defaults(settings_module.LED)
        for owner in (settings_module.CAMERA, settings_module.MOTION):
            for name in settings_module.defaults(owner):
                configured[name] = config[owner][name]
        self.settings_file = SettingsFile(configured)
        values = self.settings_file.load()
        for name, value in values.items():
            owner = settings_module.TABLE[name][2]
            if owner != settings_module.LED:
                config[owner][name] = value
        sd = config['sd']
        self.store = SnapshotStore(
            sd['mount'], sd['folder'], card_mounted,
            on_change=lambda store: state.update(sd_free=store.free_bytes()),
            tz_offset_s=config['tz_offset_min'] * 60, min_free=sd['min_free_bytes'],
            on_delete=lambda names: state.emit('deleted', {'names': names}))
        self.camera = CameraTask(camera_module, config['camera'],
                                 report=lambda status: state.update(camera=status))
        self.snapshots = SnapshotService(self.camera, self.store, state,
                                         config['snapshot_rate'])
        self.motion = Motion(state, self.snapshots, self.camera, config['motion'])
        self.recorder = Recorder(self.camera, self.store, state, config['clips'],
                                 config['camera']['fps'])
        self.store.reclaim = self.recorder.reclaim     # clips go before motion snapshots
        self.led = FlashLed(config['flash_pin'])
        self.timeline = MotionTimeline(state, self.store, config['tz_offset_min'] * 60)
        self.guard = Guard(config, ip, auth.load(), self.tls, SESSIONS_FILE)
        self.settings = settings_module.Settings(state, {
            settings_module.CAMERA: self.camera.apply,
            settings_module.MOTION: self.motion.apply,
            settings_module.LED: self.led.apply}, values, self.settings_file.changed)
        from firmware.ota import Updater
        self.ota = Updater(state, config['ota_health_s'],
                           feed_watchdog=config['watchdog_s'] <= 0)
        self.pir_pin = None
        self.mqtt = None
        # the view-only login for recorders (RTSP, ONVIF, snapshots), made on first boot
        self.nvr = RecorderLogin().load()
        self.rtsp = None
        self.onvif = None
        self.discovery = None
        if config['rtsp']['on']:
            from firmware.rtsp import RtspServer
            self.rtsp = RtspServer(config['rtsp'], self.camera, self.guard, ip,
                                   config['stream_max_fps'], config['limits'], self.nvr)
        if config['onvif']['on']:
            self._make_onvif()
        if config['mqtt']['host']:
            from firmware.mqttlink import MqttLink
            self.mqtt = MqttLink(self, config['mqtt'])

    def start(self):
        """Open the card and start every task of the board's parts."""
        config = self.config
        sd = config['sd']
        self.store.open()
        flash = self.settings.values()['flash']
        if flash:
            self.led.set(flash)         # kept from before the restart
        asyncio.create_task(self.settings_file.run(self.settings.values))
        asyncio.create_task(self.store.watch(
            lambda: mount_card(sd['mount'], sd['width'], quiet=True)))
        self.camera.start()
        self.motion.start()
        self.recorder.start()
        self.timeline.start()
        motion = config['motion']
        if motion['pir_pin'] >= 0:
            self.pir_pin = self.motion.start_pir(motion['pir_pin'], motion['pir_debounce_ms'])
        asyncio.create_task(self.state.heartbeat(config['limits']['heartbeat_s']))
        if config['loop_monitor']:
            self._start_loop_monitor()
        if config['watchdog_s'] > 0:
            asyncio.create_task(watchdog.feed_while_healthy(config['watchdog_s']))
        asyncio.create_task(clock.keep_time(lambda ok: self.state.update(clock_set=ok)))
        if self.mqtt:
            self.mqtt.start()
        if self.rtsp:
            asyncio.create_task(self.rtsp.serve())
        if self.discovery:
            self.discovery.start()

    def _make_onvif(self):
        from firmware.mqttlink import board_id
        from firmware.onvif import DEVICE_PATH, Onvif
        config = self.config
        hex_id = board_id()
        mac = ':'.join(hex_id[i:i + 2] for i in range(0, len(hex_id), 2))

        def facts():
            values = self.settings.values()
            return {'hostname': config['hostname'], 'ip': self.ip,
                    'http_port': config['http_port'], 'rtsp_port': config['rtsp']['port'],
                    'mac': mac, 'framesize': values.get('framesize', 'VGA'),
                    'quality': values.get('quality', 12),
                    'fps': min(config['camera']['fps'], config['stream_max_fps'])}
        self.onvif = Onvif(facts, self.nvr, self.guard)
        if config['onvif']['discovery']:
            from firmware.discovery import Discovery
            self.discovery = Discovery(self.nvr.uuid, config['hostname'], 'http://%s:%d%s' % (
                self.ip, config['http_port'], DEVICE_PATH))

    def _start_loop_monitor(self):
        from firmware.loopmon import LoopMonitor
        monitor = LoopMonitor(lambda: self.state.free_heap(True))
        self.state.gauges['loop_stall_ms'] = lambda: monitor.worst_stall_ms
        self.state.gauges['loop_stall_p99_ms'] = monitor.stall_p99_ms
        self.state.gauges['lowest_free_heap'] = lambda: monitor.lowest_free
        self.state.on_reset.append(monitor.clear)
        # how long one capture() held the loop: the camera's share of the stall
        self.state.gauges['capture_block_ms'] = lambda: self.camera.worst_block_ms
        self.state.on_reset.append(self.camera.clear_block)
        asyncio.create_task(monitor.run())

    async def serve(self, port):
        """Start the tasks and serve the app until the server stops."""
        self.start()
        gc.collect()
        app = create_app(self)
        asyncio.create_task(app.reap())
        # healthy: serving, the camera delivering, the card checked (start() opened it)
        asyncio.create_task(self.ota.confirm_when_healthy(
            lambda: app.server is not None and self.state.state['camera'] == 'ok'))
        await app.start_server(host='0.0.0.0', port=port, ssl=_tls_context(self.config['tls']))


def _tls_context(tls):
    """An SSLContext from the DER files named in the config, or None."""
    if not tls['cert']:
        return None
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls['cert'], tls['key'])
    return context


def main():
    """Entry point of main.py."""
    from firmware import startup
    import camera
    started = startup.started or startup.run()
    if started.safe:
        return          # safe mode: leave the REPL to the person with the cable
    if started.setup:
        from firmware import setup
        setup.run(started)          # ends in a restart
        return
    board = Board(started.config, started.card_mounted, camera, started.ip, started.problems)
    print('app: serving on', board.url)
    try:
        asyncio.run(board.serve(started.config['http_port']))
    except KeyboardInterrupt:
        print(_stopped_by_hand(started.config, board.ota.pointer[2] == 'trial'))
        raise


def _stopped_by_hand(config, on_trial):
    """What the console says when Ctrl-C (mpremote, make repl) stops the app:
    nothing feeds the watchdog at the REPL, so it resets the board."""
    limit_s = config['watchdog_s'] if config['watchdog_s'] > 0 else \
        config['ota_health_s'] if on_trial else 0
    if limit_s:
        then = 'the watchdog resets the board within %d s and the app starts again' % limit_s
    else:
        then = 'it stays stopped until the board is reset'
    return ('app: stopped by Ctrl-C (the REPL has the board): %s; machine.reset() '
            'restarts it now, a SAFE file keeps it stopped (README: Safe mode)' % then)

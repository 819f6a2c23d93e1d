"""The microdot routes. Thin: each handler calls one of the modules."""
import asyncio
import gc
import os
from microdot import Response, send_file

from firmware import clock, commands, compat, events, watchdog, state as state_module, stream as mjpeg
from firmware.guard import COOKIE, Guard, login_page
from firmware.server import Server
from firmware.wsock import StrictWebSocket, keepalive, with_strict_websocket
from firmware.storage import valid_name

_STATIC = 'static'
_SNAPS_LIMIT = 100
_TYPES = {'html': 'text/html; charset=UTF-8', 'js': 'text/javascript',
          'css': 'text/css', 'svg': 'image/svg+xml', 'ico': 'image/x-icon',
          'json': 'application/json', 'png': 'image/png'}


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _static_name_ok(name):
    # one flat folder: letters, digits, '-', '_', and a dot that is not leading
    if not (1 <= len(name) <= 64) or name[0] == '.' or '..' in name:
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in '-_.'):
            return False
    return True


def serve_static(request, name):
    """A file of the static folder, the .gz copy when the client takes it."""
    if not _static_name_ok(name):
        return 'Not found', 404
    path = _STATIC + '/' + name
    ctype = _TYPES.get(name.rsplit('.', 1)[-1], 'application/octet-stream')
    headers = {'Cache-Control': 'no-cache', 'Vary': 'Accept-Encoding'}
    if 'gzip' in request.headers.get('Accept-Encoding', '') and _exists(path + '.gz'):
        response = send_file(path + '.gz', content_type=ctype, compressed=True)
    elif _exists(path):
        response = send_file(path, content_type=ctype)
    else:
        return 'Not found', 404
    response.headers.update(headers)
    return response


def create_app(board):
    """Build the app around a board dict: state, camera, store, settings."""
    limits = board['config']['limits']
    app = Server(limits)
    state = board['state']
    state.gauges['connections'] = lambda: len(app.connections)
    state.gauges['frames'] = lambda: board['camera'].frame_count
    StrictWebSocket.max_message = limits['max_ws_message']
    ping_ms = limits['ws_ping_s'] * 1000
    app.tick_hooks.append(lambda conn, now: keepalive(conn, now, ping_ms))

    guard = board['guard']
    app.before_request(guard.before_request)

    @app.get('/login')
    async def login_form(request):
        return login_page()

    @app.post('/login')
    async def login(request):
        if not guard.token or guard.check_login(request.form and request.form.get('token')):
            response = Response.redirect('/')
            if guard.token:
                response.set_cookie(COOKIE, guard.session, path='/', http_only=True,
                                    secure=board['tls'], max_age=30 * 86400)
                response.headers['Set-Cookie'][-1] += '; SameSite=Strict'
            return response
        page, _, headers = login_page('<p role="alert">Wrong token.</p>')
        return page, 401, headers

    @app.get('/')
    async def index(request):
        return serve_static(request, 'index.html')

    @app.get('/static/<path:name>')
    async def static(request, name):
        return serve_static(request, name)

    @app.get('/stream')
    async def stream(request):
        max_fps = board['config']['stream_max_fps']
        try:
            fps = min(max_fps, max(1, int(request.args.get('fps', max_fps))))
        except ValueError:
            return 'Bad fps', 400
        viewer = mjpeg.MjpegStream(board['camera'], state, fps)
        request.sock[0].kind = 'stream'
        request.sock[0].on_close.append(viewer.release)
        return viewer, 200, mjpeg.headers()

    @app.get('/capture')
    @app.get('/snapshot.jpg')
    async def snapshot(request):
        camera = board['camera']
        jpeg, slot = camera.hold()
        request.sock[0].on_close.append(lambda: camera.release(slot))
        if jpeg is None:
            return 'No frame yet', 503, {'Retry-After': '1'}
        return jpeg, 200, {'Content-Type': 'image/jpeg', 'Content-Length': str(len(jpeg)),
                           'Cache-Control': 'no-store'}

    @app.get('/events')
    async def status_events(request):
        last_id = state.parse_event_id(request.headers.get('Last-Event-ID'))
        stream = events.StatusStream(state, last_id)
        request.sock[0].kind = 'sse'
        request.sock[0].on_close.append(stream.release)
        return stream, 200, events.headers()

    @app.get('/snaps')
    async def snaps(request):
        items = board['store'].newest(_SNAPS_LIMIT)
        return [{'name': name, 'bytes': size} for name, size in items]

    @app.get('/snaps/<name>')
    async def snap_file(request, name):
        path = board['store'].path_of(name)
        if path is None:
            return 'Not found', 404
        return send_file(path, content_type='image/jpeg', max_age=86400)

    @app.delete('/snaps/<name>')
    async def snap_delete(request, name):
        if not board['store'].delete(name):
            return 'Not found', 404
        return {'ok': True, 'deleted': name}

    @app.get('/status')
    async def camera_status(request):
        return compat.status(state.state['settings'])

    @app.get('/control')
    async def control(request):
        # one path, two APIs: WebSocket commands, or CameraWebServer's GET
        if request.headers.get('Upgrade', '').lower() == 'websocket':
            return await control_socket(request)
        return '', await compat.control(request.args, board)

    @with_strict_websocket
    async def control_socket(request, ws):
        conn = request.sock[0]
        conn.kind = 'ws'
        conn.ws = ws
        conn.read_timeout_ms = limits['dead_peer_s'] * 1000
        state.add('clients', 1)
        try:
            while True:
                message = await ws.receive()
                reply = await commands.handle(message, board)
                await ws.send(commands.encode(reply))
        finally:
            state.add('clients', -1)

    return app


def build_board(config, card_mounted, camera_module, ip='127.0.0.1'):
    """Wire the modules together: the one place that knows them all."""
    from firmware.camera import CameraTask
    from firmware.motion import Motion
    from firmware.storage import SnapshotStore
    from firmware.led import FlashLed

    state = state_module
    sd = config['sd']
    store = SnapshotStore(sd['mount'], sd['folder'], card_mounted,
                          on_change=lambda s: state.update(sd_free=s.free_bytes()),
                          tz_offset_s=config['tz_offset_min'] * 60,
                          min_free=sd['min_free_bytes'],
                          on_delete=lambda names: state.emit('deleted', {'names': names}))
    motion = Motion(state, store, config['motion'])
    camera = CameraTask(camera_module, config['camera'],
                        report=lambda status: state.update(camera=status),
                        on_frame=motion.frame)
    motion.camera = camera
    led = FlashLed(config.get('flash_pin', 4))

    def set_motion(key, value):
        motion.sensitivity = value

    settings = dict(config['camera'])
    settings.pop('fps', None)
    settings['sensitivity'] = motion.sensitivity
    settings['flash'] = 0
    state.update(settings=settings)
    rate = config['snapshot_rate']
    return {'config': config, 'state': state, 'store': store,
            'guard': Guard(config, ip), 'tls': bool(config['tls']['cert']),
            'snapshot_bucket': {'tokens': rate['burst'], 'burst': rate['burst'],
                                'per_s': rate['per_s'], 'at': None}, 'camera': camera, 'motion': motion,
            'led': led,
            'settings': {'motion': set_motion, 'camera': camera.apply,
                         'led': lambda key, value: led.set(value)}}


async def serve(board, port):
    """Start the tasks and serve until the server stops."""
    from firmware.storage import mount_card
    sd = board['config']['sd']
    board['store'].open()
    asyncio.create_task(board['store'].watch(
        lambda: mount_card(sd['mount'], sd['width'], quiet=True)))
    board['camera'].start()
    pir = board['config']['motion']
    if pir['pir_pin'] >= 0:
        board['pir'] = board['motion'].start_pir(pir['pir_pin'], pir['pir_debounce_ms'])
    asyncio.create_task(board['state'].heartbeat(board['config']['limits']['heartbeat_s']))
    if board['config']['loop_monitor']:
        from firmware.loopmon import LoopMonitor
        monitor = LoopMonitor()
        board['state'].gauges['loop_stall_ms'] = lambda: monitor.worst_stall_ms
        board['state'].gauges['lowest_free_heap'] = lambda: monitor.lowest_free
        board['state'].on_reset.append(monitor.clear)
        asyncio.create_task(monitor.run())
    if board['config']['watchdog_s'] > 0:
        asyncio.create_task(watchdog.feed_while_healthy(board['config']['watchdog_s']))
    asyncio.create_task(clock.keep_time(
        lambda ok: board['state'].update(clock_set=ok)))
    gc.collect()
    app = create_app(board)
    asyncio.create_task(app.reap())
    await app.start_server(host='0.0.0.0', port=port, ssl=_tls_context(board['config']['tls']))


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
    info = startup.board or startup.run()
    if info['safe']:
        return          # safe mode: leave the REPL to the person with the cable
    board = build_board(info['config'], info['card_mounted'], camera, info['ip'])
    print('app: serving on http://%s:%d/' % (info['ip'], info['config']['http_port']))
    asyncio.run(serve(board, info['config']['http_port']))

"""The microdot routes. Thin: each handler calls a part of the Board
(firmware/board.py). The HTTP API is documented in README.md."""
from microdot import Response

from firmware import commands, compat, download, events, ota, pages, stream as mjpeg
from firmware.assets import serve_static
from firmware.guard import COOKIE
from firmware.server import Server, on_close
from firmware.wsock import with_strict_websocket

_SNAPS_LIMIT = 100


def create_app(board):
    """The microdot app around a Board."""
    app = Server(board.config['limits'])
    state = board.state
    camera = board.camera
    store = board.store
    state.gauges['connections'] = lambda: len(app.connections)
    state.gauges['frames'] = lambda: camera.frame_count
    guard = board.guard
    app.before_request(guard.before_request)

    @app.get('/login')
    async def login_form(request):
        return pages.login()

    @app.post('/login')
    async def login(request):
        if not guard.auth_on:
            return Response.redirect('/')
        session, refusal = await guard.login(request,
                                             request.form and request.form.get('password'))
        if session is None:
            return pages.login(*refusal)
        return '', 302, {'Location': '/', 'Set-Cookie': guard.session_cookie(session)}

    @app.post('/logout')
    async def logout(request):
        guard.sessions.drop(request.cookies.get(COOKIE))
        return '', 302, {'Location': '/login', 'Set-Cookie': guard.session_cookie('', 0)}

    @app.get('/auth')
    async def auth_state(request):
        return {'auth': 'on' if guard.auth_on else 'off'}

    ota.allow_large_body(app, '/ota')

    @app.post('/ota')
    async def ota_upload(request):
        reply, status = await board.ota.receive(request.stream, request.content_length)
        return reply, status

    @app.get('/ota')
    async def ota_status(request):
        return board.ota.status()

    @app.get('/')
    async def index(request):
        return serve_static(request, 'index.html')

    @app.get('/static/<path:name>')
    async def static(request, name):
        return serve_static(request, name)

    @app.get('/stream')
    async def stream(request):
        max_fps = board.config['stream_max_fps']
        try:
            fps = min(max_fps, max(1, int(request.args.get('fps', max_fps))))
        except ValueError:
            return 'Bad fps', 400
        viewer = mjpeg.MjpegStream(camera, state, fps)
        on_close(request, viewer.release)
        return viewer, 200, mjpeg.headers()

    @app.get('/capture')
    @app.get('/snapshot.jpg')
    async def snapshot(request):
        jpeg, slot = camera.hold()
        on_close(request, lambda: camera.release(slot))
        if jpeg is None:
            return 'No frame yet', 503, {'Retry-After': '1'}
        return jpeg, 200, {'Content-Type': 'image/jpeg', 'Content-Length': str(len(jpeg)),
                           'Cache-Control': 'no-store'}

    @app.get('/events')
    async def status_events(request):
        last_id = state.parse_event_id(request.headers.get('Last-Event-ID'))
        stream = events.StatusStream(state, last_id)
        on_close(request, stream.release)
        return stream, 200, events.headers()

    @app.get('/motion')
    async def motion_view(request):
        return board.motion.view()

    @app.get('/timeline')
    async def timeline(request):
        return board.timeline.view()

    @app.get('/snaps')
    async def snaps(request):
        items = await store.newest(_SNAPS_LIMIT)
        return [{'name': name, 'bytes': size} for name, size in items]

    @app.get('/snaps/<name>')
    async def snap_file(request, name):
        path = store.path_of(name)
        if path is None:
            return 'Not found', 404
        return download.respond(request, path, 'image/jpeg', 86400, on_close)

    @app.delete('/snaps/<name>')
    async def snap_delete(request, name):
        refused = download.refuse_if_busy(store.path_of(name))
        if refused:
            return refused
        if not await store.delete(name):
            return 'Not found', 404
        return {'ok': True, 'deleted': name}

    @app.get('/clips')
    async def clips(request):
        items = await board.recorder.newest(_SNAPS_LIMIT)
        return [{'name': name, 'bytes': size} for name, size in items]

    @app.get('/clips/<name>')
    async def clip_file(request, name):
        path = board.recorder.path_of(name)
        if path is None:
            return 'Not found', 404
        return download.respond(request, path, 'video/x-msvideo', None, on_close)

    @app.get('/clips/<name>/play')
    async def clip_play(request, name):
        path = board.recorder.path_of(name)
        if path is None:
            return 'Not found', 404
        return download.play(request, path, on_close)

    @app.delete('/clips/<name>')
    async def clip_delete(request, name):
        refused = download.refuse_if_busy(board.recorder.path_of(name))
        if refused:
            return refused
        if not await board.recorder.delete(name):
            return 'Not found', 404
        return {'ok': True, 'deleted': name}

    @app.get('/status')
    async def camera_status(request):
        return compat.status(board.settings.values())

    @app.get('/control')
    async def control(request):
        # one path, two APIs: WebSocket commands, or CameraWebServer's GET
        if request.headers.get('Upgrade', '').lower() == 'websocket':
            return await control_socket(request)
        return '', compat.control(request.args, board.settings)

    @with_strict_websocket
    async def control_socket(request, ws):
        state.add('clients', 1)
        try:
            while True:
                message = await ws.receive()
                reply = await commands.handle(message, board)
                await ws.send(commands.encode(reply))
        finally:
            state.add('clients', -1)

    return app

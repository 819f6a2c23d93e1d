# Host-side benchmark helper, run under MicroPython, never on a board: the
# floors the board's figures are compared with, in the same interpreter.
#   micropython bench_floor.py echo PORT          a bare microdot WebSocket echo
#   micropython bench_floor.py fat IMG SIZE N     write N files of SIZE bytes to IMG
#   micropython bench_floor.py import             heap used by importing microdot
#   micropython bench_floor.py sim                heap the simulator's stand-ins use
#                                                 (C modules and driver memory on a board)
import gc
import sys
import time

mode = sys.argv[1]
if mode == 'echo':
    from microdot import Microdot
    from microdot.websocket import with_websocket
    app = Microdot()

    @app.route('/echo')
    @with_websocket
    async def echo(request, ws):
        while True:
            await ws.send(await ws.receive())

    app.run(host='127.0.0.1', port=int(sys.argv[2]))
elif mode == 'fat':
    import os
    import vfs
    import machine      # tools/sim's: the same block device as the simulator
    vfs.mount(machine.SDCard(), '/sdcard')
    data = bytes(range(256)) * (int(sys.argv[3]) // 256)
    view = memoryview(data)
    times = []
    for i in range(int(sys.argv[4])):
        t = time.ticks_us()
        with open('/sdcard/floor-%d.bin' % i, 'wb') as f:
            for start in range(0, len(view), 4096):
                f.write(view[start:start + 4096])
        times.append(time.ticks_diff(time.ticks_us(), t))
    for i in range(int(sys.argv[4])):
        os.remove('/sdcard/floor-%d.bin' % i)
    times.sort()
    print('median_ms', times[len(times) // 2] / 1000)
elif mode == 'import':
    gc.collect()
    before = gc.mem_alloc()
    import microdot             # noqa: F401
    import microdot.websocket   # noqa: F401
    gc.collect()
    print('import_bytes', gc.mem_alloc() - before)
elif mode == 'sim':
    gc.collect()
    before = gc.mem_alloc()
    import camera, machine, network, ntptime, simctl, socket  # noqa: F401,E401
    gc.collect()
    modules = gc.mem_alloc() - before
    cam = camera.Camera(pixel_format=camera.PixelFormat.JPEG)
    print('sim_bytes', modules, len(cam.buffer))

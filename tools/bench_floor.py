# Host-side benchmark helper, run under MicroPython, never on a board: the
# floors the board's figures are compared with, in the same interpreter.
#   micropython bench_floor.py echo PORT          a bare microdot WebSocket echo
#   micropython bench_floor.py fat IMG SIZE N     write N files of SIZE bytes to IMG
#   micropython bench_floor.py import             heap used by importing microdot
#   micropython bench_floor.py sim                heap the simulator's stand-ins use
#                                                 (C modules and driver memory on a board)
#   micropython bench_floor.py blocks IMG SIZE N  block writes (and bytes) of a plain FAT
#                                                 write of SIZE bytes and of the firmware's
#                                                 snapshot save of the same bytes, per file
#   micropython bench_floor.py reads IMG N REPO   block reads of a snapshot save and of a
#                                                 delete among N snapshots (in the board's
#                                                 numbered folders); IMG keeps them
import gc
import sys
import time

mode = sys.argv[1]


class Counting:
    """The card, counting what a real card pays for: block reads and writes."""

    def __init__(self, card):
        self.card = card
        self.reads = self.writes = self.bytes = 0

    def readblocks(self, block, buf, offset=0):
        self.reads += (len(buf) + 511) // 512
        return self.card.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=0):
        self.writes += 1
        self.bytes += len(buf)
        return self.card.writeblocks(block, buf, offset)

    def ioctl(self, op, arg):
        return self.card.ioctl(op, arg)

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
elif mode == 'blocks':
    import asyncio
    import os
    import vfs
    import machine      # tools/sim's: the same block device as the simulator
    sys.path.append(sys.argv[5])        # the firmware's tree

    card = Counting(machine.SDCard())
    vfs.mount(card, '/sdcard')
    size, count = int(sys.argv[3]), int(sys.argv[4])
    data = b'\xff\xd8' + bytes(range(256)) * (size // 256)
    view = memoryview(data)

    def counted(write):
        before = (card.writes, card.bytes)
        write()
        return card.writes - before[0], card.bytes - before[1]

    def plain(i):
        with open('/sdcard/plain-%d.jpg' % i, 'wb') as f:
            for start in range(0, len(view), 4096):
                f.write(view[start:start + 4096])

    from firmware.snapstore import SnapshotStore
    store = SnapshotStore('/sdcard', 'snaps', True)
    store.open()
    plain_runs = sorted(counted(lambda: plain(i)) for i in range(count))
    ours = sorted(counted(lambda: asyncio.run(store.save('manual', data))) for _ in range(count))
    print('plain_writes %d %d ours_writes %d %d' % (plain_runs[count // 2] + ours[count // 2]))
elif mode == 'reads':
    # FatFs finds a name by reading the folder from its start, one block a
    # command: what a crowded folder costs the board is these reads
    import asyncio
    import os
    import vfs
    import machine
    sys.path.append(sys.argv[4])

    card = Counting(machine.SDCard(sim_ignore_faults=True))
    vfs.VfsFat.mkfs(card)
    vfs.mount(card, '/sdcard')
    os.mkdir('/sdcard/snaps')
    from firmware.cardlayout import folder_of, PER_FOLDER
    for seq in range(int(sys.argv[3])):
        folder = '/sdcard/snaps/' + folder_of(seq)     # the board's layout
        if seq % PER_FOLDER == 0:
            os.mkdir(folder)
        with open(folder + '/motion-20260101-%06d-%04d.jpg' % (seq % 86400, seq), 'wb') as f:
            f.write(b'\xff\xd8')
    with open('/sdcard/snaps/.seq', 'w') as f:
        f.write('%010d' % int(sys.argv[3]))
    vfs.umount('/sdcard')
    from firmware.card import Mount     # as the board mounts it: its sector cache too
    vfs.mount(Mount(card), '/sdcard')
    from firmware.snapstore import SnapshotStore
    store = SnapshotStore('/sdcard', 'snaps', True)
    store.open()
    data = b'\xff\xd8' + bytes(30000)
    card.reads = 0
    path, _ = asyncio.run(store.save('manual', data))
    save_reads = card.reads
    card.reads = 0
    asyncio.run(store.delete(path.rsplit('/', 1)[1]))
    # what the simulated card charges a single-block read (one place: machine.py)
    print('save_reads %d delete_reads %d read_us %d' % (save_reads, card.reads,
          machine._COMMAND_US + machine._BLOCK_US_1BIT))
    vfs.umount('/sdcard')
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

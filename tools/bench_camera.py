#!/usr/bin/env python3
"""How long the camera holds the event loop, for each driver API, beside the
stand-in's frame interval (the most a blocking capture can take).

    python tools/bench_camera.py          # prints the rows
tools/bench.py calls bench(row) with its own row() printer.

micropython-camera-API: the firmware polls frame_available() with
asyncio.sleep_ms() and calls capture() only once a frame waits, so capture()
returns at once. micropython-camera-driver: capture() blocks until the frame
being filled is complete, every time: there is nothing to poll first.
"""
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from tools.sim.harness import Board  # noqa: E402

FPS = 10
FRAMES = 50         # captures measured per API


def measure(tmp, api, fps=FPS, frames=FRAMES):
    """(longest loop stall, longest capture() call) in ms over `frames` frames."""
    config = json.load(open(os.path.join(HERE, 'sim', 'config.json')))
    config['camera']['fps'] = fps
    config.update(loop_monitor=True, watchdog_s=0)
    path = Path(tmp) / api
    path.mkdir(parents=True, exist_ok=True)
    board = Board(path, camera_api=api, fps=fps, config=config).start()
    try:
        board.wait_frame()
        with board.ws() as ws:
            board.command(ws, cmd='reset')          # measure from here
            before = board.command(ws, cmd='status')['status']['frames']
        status = board.wait_for(lambda s: s['frames'] >= before + frames,
                                timeout=10 + 3 * frames / fps)
        assert status['camera'] == 'ok', status['camera']
        return status['loop_stall_ms'], status['capture_block_ms']
    finally:
        board.stop()


def bench(row, fps=FPS):
    interval = 1000 // fps
    with tempfile.TemporaryDirectory(prefix='bench-camera-') as tmp:
        for api, label in (('cnadler86', 'micropython-camera-API'),
                           ('lemariva', 'micropython-camera-driver')):
            stall, block = measure(tmp, api, fps)
            floor = 'frame interval %d ms' % interval
            if api == 'cnadler86':
                row('longest loop stall, %s, %d fps (ms)' % (label, fps), stall, floor,
                    '<= 1/4 interval', stall <= interval // 4)
            else:       # blocks by design: reported, not budgeted
                row('longest loop stall, %s, %d fps (ms)' % (label, fps), stall, floor,
                    'report')
            row('  of which one capture() call (ms)', block, floor, 'report')


def main():
    def row(figure, value, floor, budget, ok=None):
        mark = '' if ok is None else ('ok' if ok else 'MISSED')
        print('%-58s %-10s %-22s %-16s %s' % (figure, value, floor, budget, mark), flush=True)
    print('%-58s %-10s %-22s %-16s' % ('figure', 'value', 'floor (same run)', 'budget'))
    bench(row)


if __name__ == '__main__':
    main()

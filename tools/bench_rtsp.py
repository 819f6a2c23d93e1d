#!/usr/bin/env python3
"""What RTSP costs the board per frame: firmware/rtpjpeg.py parsing one VGA
JPEG and cutting it into RTP packets, under the MicroPython unix port,
beside the bare slice copies of the same packets (the floor: what any
packetiser must copy) in the same run.

    python tools/bench_rtsp.py

bench(row) reports through tools/bench.py's row().
"""
import json
import os
import subprocess
import sys
import tempfile

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), 'micropython')
if not os.path.exists(MICROPYTHON):
    MICROPYTHON = os.path.join(REPO, '.venv', 'bin', 'micropython')
# bytecode on an ESP32 runs 100-250x slower than the unix port here (README,
# "Speed"); packetising is bytecode, not C calls, so the slow end is taken
ESP32_SLOWER = 250
BUDGET_MS = 20          # on the board, per frame and viewer: a fifth of a 10 fps interval

# Runs under MicroPython: parse + packetise, then the bare copies, per frame.
DRIVER = r'''
import sys, time, json
sys.path.insert(0, %r)
from firmware import rtpjpeg
jpeg = open(sys.argv[1], 'rb').read()
packetiser = rtpjpeg.Packetiser(0x1234, 1400, 4)
def packetise():
    frame = rtpjpeg.parse(jpeg)
    n = 0
    for packet in packetiser.packets(frame, 0):
        n += 1
    return n
def copies(count):
    view = memoryview(jpeg)
    buf = bytearray(1404)
    for i in range(count):
        buf[28:1400] = view[i * 1372:i * 1372 + 1372]
count = packetise()
runs, floors = [], []
for _ in range(50):
    t = time.ticks_us()
    packetise()
    runs.append(time.ticks_diff(time.ticks_us(), t))
    t = time.ticks_us()
    copies(count)
    floors.append(time.ticks_diff(time.ticks_us(), t))
runs.sort()
floors.sort()
print(json.dumps({'us': runs[25], 'floor_us': floors[25], 'packets': count, 'bytes': len(jpeg)}))
'''


def vga_frame(path):
    """A camera-like VGA JPEG: 4:2:2 as the ESP32's encoder makes, ~40 KB."""
    image = Image.effect_noise((640, 480), 5).convert('RGB')
    image.save(path, quality=80, subsampling=1)


def packetise_figures(row):
    """One VGA frame parsed and packetised (host time, and x ESP32_SLOWER)."""
    with tempfile.TemporaryDirectory(prefix='bench-rtsp-') as tmp:
        path = os.path.join(tmp, 'vga.jpg')
        vga_frame(path)
        out = subprocess.run([MICROPYTHON, '-c', DRIVER % REPO, path], capture_output=True,
                             text=True, check=True)
    figures = json.loads(out.stdout)
    board_ms = figures['us'] * ESP32_SLOWER / 1000
    row('rtsp: packetise one VGA frame (%d KB, %d packets, sim)'
        % (figures['bytes'] // 1024, figures['packets']),
        '%.2f ms' % (figures['us'] / 1000), '%.2f ms of copies' % (figures['floor_us'] / 1000),
        'x%d: <= %d ms' % (ESP32_SLOWER, BUDGET_MS), board_ms <= BUDGET_MS)


def bench(row):
    packetise_figures(row)


if __name__ == '__main__':
    def _row(figure, value, floor, budget, ok=None):
        print(figure, value, floor, budget, '' if ok is None else ('ok' if ok else 'MISSED'))
    bench(_row)

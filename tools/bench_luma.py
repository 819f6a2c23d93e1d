#!/usr/bin/env python3
"""How fast firmware/jpegluma.py makes a 1/8 luma map, beside libjpeg.

    python tools/bench_luma.py [--frames 30] [--slice 100]

Decodes camera-like frames (QVGA, VGA, and a VGA of pure noise as the worst
case) under the MicroPython unix port, median over the frames, beside
Pillow's C decoder in draft mode (libjpeg's 1/8 DCT scaling to greyscale:
the same work) in the same run; then the longest single step(N) slice.
bench(row) reports through tools/bench.py's row().
"""
import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), 'micropython')
if not os.path.exists(MICROPYTHON):
    MICROPYTHON = os.path.join(REPO, '.venv', 'bin', 'micropython')
SLICE = 100         # MCUs per step(): the recommended slice

# Runs under MicroPython: times luma_map over the frames, then step(N).
DRIVER = r'''
import sys, time, json
sys.path.insert(0, '.')
from firmware.jpegluma import LumaDecoder, luma_map
n = int(sys.argv[1])
frames = [open(p, 'rb').read() for p in sys.argv[2:]]
out = bytearray(80 * 60)
luma_map(frames[0], out)
times = []
for data in frames:
    t = time.ticks_us()
    luma_map(data, out)
    times.append(time.ticks_diff(time.ticks_us(), t))
dec = LumaDecoder(frames[0], out)
slices = []
for data in frames:
    dec.reset(data)
    while True:
        t = time.ticks_us()
        done = dec.step(n)
        slices.append(time.ticks_diff(time.ticks_us(), t))
        if done:
            break
slices.sort()
print(json.dumps({'times': times, 'longest': slices[-1], 'slices': len(slices) // len(frames),
                  'median_slice': slices[len(slices) // 2]}))
'''


def camera_like(w, h, seed):
    """A garden scene with sensor noise, like tools/make_frames.py's, at w x h."""
    rnd = random.Random(seed)
    img = Image.new('RGB', (w, h))
    draw = ImageDraw.Draw(img)
    sky = h * 5 // 8
    for y in range(sky):
        draw.line([(0, y), (w, y)], fill=(110 + y * 80 // sky, 160 + y * 60 // sky, 230))
    draw.rectangle([0, sky, w, h], fill=(70, 130, 60))
    draw.rectangle([w * 19 // 32, h // 3, w * 29 // 32, h * 2 // 3], fill=(180, 90, 70))
    draw.ellipse([w // 10, h // 4, w * 10 // 32, h * 13 // 24], fill=(40, 110, 50))
    x = rnd.randrange(w)
    draw.rectangle([x, h // 3, x + w // 12, h * 7 // 8], fill=(30, 30, 160))
    noise = Image.effect_noise((w, h), 12).convert('RGB')
    return Image.blend(img, noise, 0.08)


def make_frames(folder, count):
    sets = {}
    for name, (w, h), noisy in (('QVGA', (320, 240), False), ('VGA', (640, 480), False),
                                ('VGA noise', (640, 480), True)):
        paths = []
        for i in range(count):
            if noisy:
                img = Image.effect_noise((w, h), 80 + i).convert('RGB')
            else:
                img = camera_like(w, h, i)
            path = os.path.join(folder, '%s-%02d.jpg' % (name.replace(' ', '-'), i))
            img.save(path, quality=85, subsampling=1)    # the OV2640's 4:2:2
            paths.append(path)
        sets[name] = paths
    return sets


def pillow_ms(paths):
    datas = [open(p, 'rb').read() for p in paths]
    times = []
    for data in datas * 3:
        t = time.perf_counter()
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        im.draft('L', (w // 8, h // 8))
        im.load()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def micropython_run(paths, slice_mcus):
    with tempfile.TemporaryDirectory() as tmp:
        driver = os.path.join(tmp, 'driver.py')
        with open(driver, 'w') as f:
            f.write(DRIVER)
        proc = subprocess.run([MICROPYTHON, '-X', 'heapsize=16m', driver, str(slice_mcus)] + paths, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    return json.loads(proc.stdout)


def bench(row, count=30, slice_mcus=SLICE):
    """Report through row(figure, value, floor, budget, ok). The budget is a
    PC figure: the ESP32 runs viper code ~40x slower than this machine's
    x64 (an estimate, not measured here), so 2.5 ms here ~ 100 ms there."""
    with tempfile.TemporaryDirectory() as folder:
        sets = make_frames(folder, count)
        for name, paths in sets.items():
            kb = statistics.mean(os.path.getsize(p) for p in paths) / 1024
            run = micropython_run(paths, slice_mcus)
            ms = statistics.median(run['times']) / 1000
            floor = pillow_ms(paths)
            typical = name != 'VGA noise'
            row('luma map %s 4:2:2 %.0f KB, median' % (name, kb), '%.2f ms' % ms,
                'Pillow draft %.2f ms' % floor, '< 2.5 ms' if typical else '-',
                ms < 2.5 if typical else None)
            if name.startswith('VGA'):
                row('  longest step(%d), %d slices/frame' % (slice_mcus, run['slices']),
                    '%.3f ms' % (run['longest'] / 1000),
                    'median slice %.3f ms' % (run['median_slice'] / 1000),
                    '< 0.25 ms' if typical else '-',
                    run['longest'] < 250 if typical else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--slice', type=int, default=SLICE)
    args = parser.parse_args()

    def row(figure, value, floor, budget, ok=None):
        mark = '' if ok is None else ('ok' if ok else 'MISSED')
        print('%-44s %-10s %-26s %-10s %s' % (figure, value, floor, budget, mark), flush=True)

    bench(row, args.frames, args.slice)


if __name__ == '__main__':
    main()

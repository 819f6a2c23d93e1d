#!/usr/bin/env python3
"""Generate the simulator's camera frames: a still garden scene with sensor
noise, and a striped figure that walks through it.

    python tools/make_frames.py [OUT_DIR] [--count 48] [--still-only]
        [--segments 1] [--jitter 6] [--drift 0]

The sequence is cut into 2*segments+1 equal parts: still, walk, still, ...,
still; during each walk the figure crosses the scene. With the defaults,
frames 0..15 are still, 16..31 have the walk, 32..47 are still again.
--jitter is the sensor noise (pixel steps), --drift the change in
brightness over the whole sequence, in percent (slow light change).
"""
import argparse
import os
import random

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 320, 240
HERE = os.path.dirname(os.path.abspath(__file__))


def scene():
    img = Image.new('RGB', (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(img)
    for y in range(150):                                    # sky
        draw.line([(0, y), (WIDTH, y)], fill=(110 + y // 3, 160 + y // 4, 230))
    draw.rectangle([0, 150, WIDTH, HEIGHT], fill=(70, 130, 60))       # lawn
    draw.rectangle([190, 80, 290, 160], fill=(180, 90, 70))           # house
    draw.polygon([(180, 80), (240, 40), (300, 80)], fill=(120, 50, 40))
    draw.rectangle([225, 120, 250, 160], fill=(90, 60, 40))
    draw.ellipse([30, 60, 100, 130], fill=(40, 110, 50))               # tree
    draw.rectangle([60, 130, 70, 165], fill=(90, 60, 30))
    return img


def add_noise(img, rng, amount=6):
    # sensor noise: a still scene still changes the JPEG size a little
    px = img.load()
    for _ in range(WIDTH * HEIGHT // 8):
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        r, g, b = px[x, y]
        d = rng.randint(-amount, amount)
        px[x, y] = (max(0, min(255, r + d)), max(0, min(255, g + d)), max(0, min(255, b + d)))


def figure(draw, x):
    # a walker in a striped jumper: fine detail the encoder must spend bytes on
    draw.ellipse([x + 12, 70, x + 36, 94], fill=(230, 190, 160))
    for i, y in enumerate(range(96, 160, 4)):
        draw.rectangle([x, y, x + 48, y + 3], fill=(220, 30, 30) if i % 2 else (250, 250, 250))
    draw.rectangle([x + 6, 160, x + 18, 200], fill=(30, 30, 120))
    draw.rectangle([x + 30, 160, x + 42, 200], fill=(30, 30, 120))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out', nargs='?', default=os.path.join(HERE, 'sim', 'frames'))
    p.add_argument('--count', type=int, default=48)
    p.add_argument('--still-only', action='store_true')
    p.add_argument('--quality', type=int, default=80)
    p.add_argument('--segments', type=int, default=1)
    p.add_argument('--jitter', type=int, default=6)
    p.add_argument('--drift', type=float, default=0)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(2026)
    base = scene()
    part = args.count // (2 * args.segments + 1)
    for i in range(args.count):
        img = base.copy()
        if args.drift:
            gain = 1 + args.drift / 100 * i / args.count
            img = img.point(lambda v: min(255, int(v * gain)))
        n = i // part
        if not args.still_only and n % 2 == 1 and n < 2 * args.segments:
            figure(ImageDraw.Draw(img), -40 + (i - n * part) * (WIDTH + 40) // part)
        add_noise(img, rng, args.jitter)
        img.save(os.path.join(args.out, 'frame-%03d.jpg' % i), quality=args.quality)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Generate the simulator's camera frames: a still garden scene with sensor
noise, and a striped figure that walks through it.

    python tools/make_frames.py [OUT_DIR] [--count 48] [--still-only]

Frames 0..15 are still, 16..31 have the figure walking across, 32..47 are
still again, so a replay at 10 fps shows motion for 1.6 s out of 4.8 s.
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
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(2026)
    base = scene()
    third = args.count // 3
    for i in range(args.count):
        img = base.copy()
        if not args.still_only and third <= i < 2 * third:
            figure(ImageDraw.Draw(img), -40 + (i - third) * (WIDTH + 40) // third)
        add_noise(img, rng)
        img.save(os.path.join(args.out, 'frame-%03d.jpg' % i), quality=args.quality)


if __name__ == '__main__':
    main()

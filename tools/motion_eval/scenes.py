"""Synthetic motion scenes with exact labels, for the motion detector's
evaluation (host only, CPython + Pillow).

    python tools/motion_eval/scenes.py OUT_DIR [--split tuning|heldout] [--scene NAME]

Each scene is a folder of 640x480 JPEG frames (frame-0000.jpg ..., name
order = play order, 10 fps, so `tools/simulate.py --frames DIR --fps 10`
replays it) and a labels.json:
  fps, width, height, frames, present (per frame 0/1: some pixel of a figure
  is in the frame), episodes ([first, last] frame of each stretch of
  presence), area (each figure's full silhouette as a fraction of the frame),
  mask (48 hex digits or null: the region-of-interest mask to run with).
Every scene starts with 3 s of still lead-in. Same seed -> same bytes: the
tuning and held-out splits differ only by seed (textures, colours, paths).
"""
import argparse
import functools
import json
import math
import os
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

W, H = 640, 480
FPS = 10
LEAD = 3 * FPS
QUALITY = 80
SPLITS = {'tuning': 1000, 'heldout': 5000}

# name: (frames, description); the builders below give the content
SCENES = [
    'still', 'lamp', 'flicker', 'small', 'person3', 'large', 'slow',
    'foliage', 'foliage_masked', 'combo',
    'shadow_fast', 'shadow_mid', 'shadow_slow', 'shadow_walk', 'trees', 'arrival2',
]
# no figure anywhere: the time the motion flag stays on is scored
STILL_SCENES = ('still', 'lamp', 'flicker', 'shadow_fast', 'shadow_mid', 'shadow_slow',
                'trees')


def background(rng):
    """A textured garden: sky, ground, houses, trees, fine grain; and the
    horizon (y of the first ground row)."""
    img = Image.new('RGB', (W, H))
    d = ImageDraw.Draw(img)
    horizon = rng.randrange(H // 3, H // 2)
    sky = [rng.randrange(90, 150), rng.randrange(140, 190), rng.randrange(200, 250)]
    for y in range(horizon):
        d.line([(0, y), (W, y)], fill=(sky[0] + y // 4, sky[1] + y // 6, sky[2]))
    ground = (rng.randrange(50, 110), rng.randrange(90, 150), rng.randrange(40, 90))
    d.rectangle([0, horizon, W, H], fill=ground)
    for _ in range(rng.randrange(2, 5)):                       # houses
        x = rng.randrange(-50, W - 50)
        w, h = rng.randrange(80, 200), rng.randrange(60, 160)
        col = tuple(rng.randrange(60, 230) for _ in range(3))
        d.rectangle([x, horizon - h, x + w, horizon + 10], fill=col)
        d.polygon([(x - 10, horizon - h), (x + w // 2, horizon - h - 50),
                   (x + w + 10, horizon - h)], fill=tuple(c // 2 for c in col))
        for wx in range(x + 10, x + w - 20, 35):
            d.rectangle([wx, horizon - h + 15, wx + 18, horizon - h + 40],
                        fill=(40, 50, 70))
    for _ in range(rng.randrange(6, 14)):                      # bushes, stones, beds
        x, y = rng.randrange(W), rng.randrange(horizon, H)
        r = rng.randrange(8, 40)
        d.ellipse([x - r, y - r // 2, x + r, y + r // 2],
                  fill=tuple(rng.randrange(20, 200) for _ in range(3)))
    for y in range(horizon, H, 6):                             # lawn stripes
        if rng.random() < 0.3:
            d.line([(0, y), (W, y)], fill=tuple(max(0, c - 15) for c in ground), width=2)
    grain = Image.frombytes('L', (W, H), rng.randbytes(W * H)).point(
        lambda v: 128 + (v - 128) // 6).filter(ImageFilter.BoxBlur(1))
    return ImageChops.add(img, Image.merge('RGB', (grain,) * 3), 1, -128), horizon


def shadow_ramp(rng):
    """A cloud's shadow edge: (strip, depth). strip is an L image 4W + H
    wide: 255 (shade) left of 2W, a soft ramp 100-200 px wide, 0 to the
    right; slanted 10-35 degrees from vertical (each row shifted 0..H)."""
    soft = rng.randrange(100, 200)
    slant = math.tan(math.radians(rng.uniform(10, 35))) * rng.choice((-1, 1))
    wide = 4 * W + H
    row = bytes(255 if x < 2 * W else max(0, 255 - (x - 2 * W) * 255 // soft)
                for x in range(wide))
    ramp = Image.frombytes('L', (wide, 1), row).resize((wide, H))
    sheared = ramp.transform((wide, H), Image.AFFINE,
                             (1, slant, -slant * H if slant < 0 else 0, 0, 1, 0))
    return sheared, rng.uniform(0.35, 0.55), soft


def foliage(rng):
    """A leafy canopy (RGBA) to sway over the background; box in the frame."""
    w, h = rng.randrange(150, 200), rng.randrange(110, 150)
    img = Image.new('RGBA', (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    for _ in range(400):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(4, 12)
        g = rng.randrange(60, 200)
        d.ellipse([x - r, y - r, x + r, y + r], fill=(g // 3, g, g // 4, 255))
    x = rng.choice([rng.randrange(10, 80), rng.randrange(W - w - 80, W - w - 10)])
    return img, (x, rng.randrange(5, 40))


def figure_template(rng):
    """A walking person at height 100 as (mask, colours); legs swing by phase."""
    return {'shirt': rng.choice([(200, 40, 40), (30, 30, 40), (230, 230, 220), (40, 60, 150),
                                 (200, 170, 60), (90, 60, 40)]),
            'trousers': rng.choice([(30, 40, 90), (40, 40, 40), (150, 130, 100), (20, 20, 20),
                                    (200, 200, 190)]),
            'skin': rng.choice([(230, 190, 160), (160, 110, 80), (100, 70, 50)])}


def draw_figure(img, look, cx, foot, height, phase):
    """Draw the person with feet at (cx, foot); returns its pixel mask (L)."""
    s = height / 100
    mask = Image.new('L', (W, H), 0)
    md = ImageDraw.Draw(mask)
    d = ImageDraw.Draw(img)
    top = foot - height
    swing = math.sin(phase) * 12 * s

    def part(shape, box, colour, **kw):
        getattr(d, shape)(box, fill=colour, **kw)
        getattr(md, shape)(box, fill=255, **kw)

    part('ellipse', [cx - 8 * s, top, cx + 8 * s, top + 17 * s], look['skin'])
    part('rectangle', [cx - 13 * s, top + 17 * s, cx + 13 * s, top + 55 * s], look['shirt'])
    part('polygon', [(cx - 10 * s, top + 53 * s), (cx - 2 * s, top + 53 * s),
                     (cx - 2 * s + swing, foot), (cx - 10 * s + swing, foot)], look['trousers'])
    part('polygon', [(cx + 2 * s, top + 53 * s), (cx + 10 * s, top + 53 * s),
                     (cx + 10 * s - swing, foot), (cx + 2 * s - swing, foot)], look['trousers'])
    part('rectangle', [cx - 17 * s - swing / 2, top + 19 * s, cx - 13 * s - swing / 2,
                       top + 50 * s], look['shirt'])
    part('rectangle', [cx + 13 * s + swing / 2, top + 19 * s, cx + 17 * s + swing / 2,
                       top + 50 * s], look['shirt'])
    return mask


@functools.lru_cache()
def height_for(area):
    """Figure height (px) whose silhouette covers `area` of the frame."""
    m = draw_figure(Image.new('RGB', (W, H)), figure_template(random.Random(0)),
                    W // 2, 400, 100, 0)
    a100 = (W * H - m.histogram()[0]) / (W * H)
    return 100 * math.sqrt(area / a100)


class Walk:
    """One crossing: frames [start, start+duration), side to side."""

    def __init__(self, rng, start, seconds, area, band=(0.6, 1.0)):
        self.start, self.frames = start, int(seconds * FPS)
        self.area = area
        self.seen = []          # per rendered frame: 1 when some pixel is in the frame
        self.height = height_for(area)
        self.look = figure_template(rng)
        lo, hi = band
        self.foot = min(H + self.height * 0.1,
                        rng.uniform(max(lo * H, self.height + 5), hi * H))
        margin = self.height * 0.3       # arms and legs swing up to 0.23 h out
        self.x0, self.x1 = -margin, W + margin
        if rng.random() < 0.5:
            self.x0, self.x1 = self.x1, self.x0

    def draw(self, img, i):
        k = i - self.start
        if not 0 <= k < self.frames:
            return None
        x = self.x0 + (self.x1 - self.x0) * k / (self.frames - 1)
        return draw_figure(img, self.look, x, self.foot, self.height, k * 0.9)


def mask_for(box, pad=16):
    """The 16x12 mask (48 hex digits) covering pixel box (x0, y0, x1, y1)."""
    bits = [0] * 192
    x0, y0, x1, y1 = box
    for cy in range(12):
        for cx in range(16):
            if (cx + 1) * W / 16 > x0 - pad and cx * W / 16 < x1 + pad and \
                    (cy + 1) * H / 12 > y0 - pad and cy * H / 12 < y1 + pad:
                bits[cy * 16 + cx] = 1
    return ''.join('%x' % (bits[i] * 8 + bits[i + 1] * 4 + bits[i + 2] * 2 + bits[i + 3])
                   for i in range(0, 192, 4))


def plan(name, seed):
    """The scene's content: frames, walks, light(i) -> (gain, lamp), foliage, mask."""
    rng = random.Random('%s-%d' % (name, seed))
    p = {'frames': 300, 'walks': [], 'light': lambda i: (1.0, 0.0), 'foliage': None,
         'mask': None, 'rng': rng}
    speed = lambda: rng.uniform(4.0, 6.0)         # seconds to cross
    if name == 'lamp':
        on, off = LEAD + rng.randrange(20, 40), LEAD + rng.randrange(90, 110)
        dim0 = LEAD + 150
        def light(i):
            lamp = 1.0 if on <= i < off else 0.0
            gain = 1.0 - 0.3 * min(1, max(0, (i - dim0) / (300 - dim0)))
            return gain, lamp
        p['light'] = light
    elif name in ('flicker', 'combo'):
        steps, i, g = {}, LEAD, 1.0
        while i < 300:
            g = rng.uniform(0.94, 1.06)
            steps[i] = g
            i += rng.randrange(5, 30)
        def light(i):
            k = max([s for s in steps if s <= i], default=None)
            return (steps[k] if k is not None else 1.0), 0.0
        p['light'] = light
        if name == 'combo':
            p['frames'] = 200
            p['walks'] = [Walk(rng, LEAD + 40, speed(), 0.05)]
    elif name == 'small':
        p['frames'] = LEAD + 80
        p['walks'] = [Walk(rng, LEAD + 10, speed(), 0.04)]
    elif name == 'person3':
        p['frames'] = LEAD + 3 * 100
        p['walks'] = [Walk(rng, LEAD + 10 + 100 * k, speed(), 0.05) for k in range(3)]
    elif name == 'large':
        p['frames'] = LEAD + 80
        p['walks'] = [Walk(rng, LEAD + 10, speed(), 0.20)]
    elif name == 'slow':
        p['frames'] = LEAD + 190
        p['walks'] = [Walk(rng, LEAD + 10, 15.0, 0.05)]
    elif name in ('foliage', 'foliage_masked'):
        p['foliage'] = foliage(rng)
        p['walks'] = [Walk(rng, LEAD + 150, speed(), 0.05, band=(0.85, 1.0))]
        if name == 'foliage_masked':
            img, (x, y) = p['foliage']
            p['mask'] = mask_for((x - 10, y, x + img.width + 10, y + img.height))
    elif name.startswith('shadow_'):
        # a cloud's shadow sweeps over the ground (not the sky), holds, leaves
        sweep = {'shadow_fast': (2, 4), 'shadow_mid': (6, 10), 'shadow_slow': (14, 20),
                 'shadow_walk': (5, 8)}[name]
        t_in, t_out = rng.uniform(*sweep), rng.uniform(*sweep)
        p['shadow'] = (LEAD, LEAD + int(t_in * FPS), int(4 * FPS), int(t_out * FPS))
        p['frames'] = LEAD + int((t_in + 4 + t_out + 2) * FPS)
        if name == 'shadow_walk':       # a walker while the shade comes in
            p['walks'] = [Walk(rng, LEAD + int(t_in * FPS / 3), speed(), 0.05)]
    elif name == 'trees':
        # wind in two canopies from the first frame, in gusts: 2-12 px, 1.2-2 s
        p['frames'] = 300
        p['trees'] = [foliage(rng) for _ in range(2)]
        p['gusts'] = [(rng.uniform(1.2, 2.0), rng.uniform(0, 6.3)) for _ in range(2)]
    elif name == 'arrival2':
        # a slow walker still in the picture when a second one comes in from
        # the other side lower down: each is its own episode
        first = Walk(rng, LEAD + 10, 14.0, 0.04, band=(0.55, 0.7))
        second = Walk(rng, LEAD + 10 + rng.randrange(40, 60), speed(), 0.05, band=(0.9, 1.0))
        second.x0, second.x1 = first.x1, first.x0
        p['frames'] = LEAD + 170
        p['walks'] = [first, second]
        p['separate'] = True
    return p


def shade(p, i, strip, soft):
    """The shadow's mask (L, 255 = full shade) at frame i, or None."""
    t0, t1, hold, leave = p['shadow']
    clear, full = 2 * W + soft, W - H       # crop offsets: no shade, all shade
    if i < t0:
        return None
    if i < t1:
        x = clear + (full - clear) * (i - t0) / (t1 - t0)
    elif i < t1 + hold:
        x = full
    elif i < t1 + hold + leave:
        x = full + (clear - full) * (i - t1 - hold) / leave    # it leaves the way it came
    else:
        return None
    x = int(x)
    return strip.crop((x, 0, x + W, H))


def render(name, seed, out):
    """Write the scene's frames and labels.json into out/."""
    p = plan(name, seed)
    rng = random.Random('%s-%d-noise' % (name, seed))
    base, horizon = background(random.Random('bg-%s-%d' % (name, seed)))
    if 'shadow' in p:
        strip, depth, soft = shadow_ramp(random.Random('shade-%s-%d' % (name, seed)))
    lampx, lampy = rng.randrange(W), rng.randrange(H // 2)
    pool = Image.radial_gradient('L').resize((W * 2, H * 2)).crop(
        (W - lampx, H - lampy, 2 * W - lampx, 2 * H - lampy))   # 0 at the lamp, 255 far
    noise = [Image.frombytes('L', (W, H), rng.randbytes(W * H)).point(
        lambda v: 128 + (v - 128) * 5 // 128) for _ in range(8)]    # sensor noise +-5
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):
        if n.endswith('.jpg'):
            os.remove(os.path.join(out, n))
    present, last = [], None
    for i in range(p['frames']):
        gain, lamp = p['light'](i)
        img = base.copy()
        if p['foliage']:                # wind after the lead-in: 8 px each way, 1.7 s
            leaves, (fx, fy) = p['foliage']
            sway = int(8 * math.sin((i - LEAD) * 2 * math.pi / 17)) if i >= LEAD else 0
            img.paste(leaves, (fx + sway, fy), leaves)
        for k, (leaves, (fx, fy)) in enumerate(p.get('trees', ())):
            period, phase = p['gusts'][k]
            t = i / FPS
            amp = 2 + 5 * (1 + math.sin(t * 2 * math.pi / 9 + phase))    # gusts every 9 s
            sway = int(amp * math.sin(t * 2 * math.pi / period + phase))
            img.paste(leaves, (fx + sway, fy + int(sway / 4)), leaves)
        masks = []
        for w in p['walks']:
            m = w.draw(img, i)
            w.seen.append(1 if m is not None and m.getbbox() else 0)
            masks.append(m)
        masks = [m for m in masks if m is not None]
        if 'shadow' in p:              # on the ground and whoever walks there
            mask = shade(p, i, strip, soft)
            if mask is not None:
                mask.paste(0, (0, 0, W, horizon))      # the sky takes no shade
                dark = img.point(lambda v: int(v * (1 - depth)))
                img = Image.composite(dark, img, mask)
        if lamp:
            # a lamp: +35 % overall, +60 % near it
            boost = pool.point(lambda v: int(255 * (1.35 + 0.25 * (1 - v / 255)) / 1.6))
            lit = Image.merge('RGB', [ImageChops.multiply(c, boost) for c in img.split()])
            img = lit.point(lambda v: min(255, int(v * 1.6)))
        if gain != 1.0:
            img = img.point(lambda v: min(255, int(v * gain + 0.5)))
        nz = ImageChops.offset(noise[i % 8], rng.randrange(W), rng.randrange(H))
        img = ImageChops.add(img, Image.merge('RGB', (nz, nz, nz)), 1, -128)
        img.save(os.path.join(out, 'frame-%04d.jpg' % i), quality=QUALITY)
        present.append(1 if any(m.getbbox() for m in masks) else 0)
    episodes, start = [], None
    if p.get('separate'):       # one episode per walker, even when they overlap
        for w in p['walks']:
            seen = [i for i, v in enumerate(w.seen) if v]
            episodes.append([seen[0], seen[-1]])
    for i, v in enumerate([] if p.get('separate') else present + [0]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if episodes and start - episodes[-1][1] <= FPS:
                episodes[-1][1] = i - 1     # a swinging arm at the edge: one episode
            else:
                episodes.append([start, i - 1])
            start = None
    labels = {'scene': name, 'seed': seed, 'fps': FPS, 'width': W, 'height': H,
              'frames': p['frames'], 'present': present, 'episodes': episodes,
              'area': [w.area for w in p['walks']], 'mask': p['mask']}
    with open(os.path.join(out, 'labels.json'), 'w') as f:
        json.dump(labels, f)
    return labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out')
    ap.add_argument('--split', default='tuning', choices=sorted(SPLITS))
    ap.add_argument('--scene', action='append', choices=SCENES)
    args = ap.parse_args()
    for name in args.scene or SCENES:
        render(name, SPLITS[args.split], os.path.join(args.out, name))


if __name__ == '__main__':
    main()

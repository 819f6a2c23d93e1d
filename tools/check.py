#!/usr/bin/env python3
"""The static check: the board files (boot.py, main.py, firmware/) type-checked
by pyright against the published MicroPython ESP32 stubs, with microdot on the
path. An attribute, module or keyword the ESP32 port does not have fails it.

    .venv/bin/python tools/check.py             # the repository (make check)
    .venv/bin/python tools/check.py --root DIR  # another tree laid out alike

Pyright reads pyrightconfig.json in the root; this script adds what depends on
the machine: --typeshedpath, the venv's site-packages, where
micropython-stdlib-stubs installs its stdlib/ (so `time`, `os`, `asyncio`...
are MicroPython's, not CPython's), and --pythonpath, the venv, where
micropython-esp32-stubs (machine, network, vfs, ...) and microdot are.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import sysconfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Diagnostics that are not about the ESP32 API, matched by file, rule and a
# piece of the message (not the line number, which moves). One reason each.
IGNORE = [
    ('firmware/led.py', 'reportCallIssue', 'No parameter named "duty"',
     "the ESP32 port's PWM takes duty= (0..1023, machine_pwm.c); the stubs "
     'list only the portable duty_u16/duty_ns'),
    ('firmware/app.py', 'reportCallIssue', 'Argument missing for parameter "ws"',
     "microdot's websocket_wrapper has no return type in its .pyi, so pyright "
     'takes the decorated handler as undecorated, (request, ws)'),
    ('firmware/camera.py', 'reportCallIssue', 'No overloads for "__setitem__"',
     'self._buffers starts as [None] * _POOL, which pyright reads as list[None]'),
    ('firmware/camera.py', 'reportArgumentType', 'of type "None" in function "__setitem__"',
     'the same [None] * _POOL list'),
    ('firmware/jpegluma.py', 'reportCallIssue', 'No overloads for "__setitem__"',
     'self._dht starts as [None] * 8, which pyright reads as list[None]'),
    ('firmware/jpegluma.py', 'reportArgumentType', 'of type "Iterable[None]" in function "__setitem__"',
     'the same [None] * 8 list'),
    ('firmware/compat.py', 'reportArgumentType', 'cannot be assigned to parameter "value" of type "int"',
     "dict(_FIXED) reads as dict[str, int]; to_api's None (a value outside "
     'the table, which settings never hold) would be valid JSON anyway'),
    ('firmware/motion.py', 'reportArgumentType', 'parameter "obj" of type "ReadableBuffer"',
     'decoder.luma is None only before the first decode, which _luma has just run'),
    ('firmware/motion.py', 'reportGeneralTypeIssues', '"None" is not iterable',
     'self.frame_size is None until the first decode, which comes before _where'),
]


def inputs_digest(root):
    """A digest of everything the verdict depends on: the board files, the
    config and stubs, this script and the pinned versions."""
    names = ['boot.py', 'main.py', 'pyrightconfig.json']
    for folder in ('firmware', os.path.join('tools', 'stubs')):
        for base, dirs, files in os.walk(os.path.join(root, folder)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            names += [os.path.relpath(os.path.join(base, n), root) for n in files
                      if n.endswith(('.py', '.pyi'))]
    digest = hashlib.sha256(sys.version.encode())
    paths = [os.path.join(root, n) for n in sorted(names)]
    for path in paths + [os.path.abspath(__file__), os.path.join(REPO, 'requirements.txt')]:
        digest.update(path.encode() + b'\0')
        if os.path.exists(path):
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def site_packages():
    """The venv's site-packages: the stubs, the stdlib stubs and microdot."""
    return sysconfig.get_path('purelib')


def run_pyright(root):
    """Pyright's JSON report on the board files under root."""
    cmd = [sys.executable, '-m', 'pyright', '--outputjson',
           '--project', os.path.join(root, 'pyrightconfig.json'),
           '--typeshedpath', site_packages(), '--venvpath', REPO]
    env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS='1')
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    try:
        return json.loads(done.stdout)
    except ValueError:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit('check: pyright failed (exit %d)' % done.returncode)


def reason_to_ignore(diag, rel):
    """The IGNORE entry covering this diagnostic, or None."""
    for entry in IGNORE:
        path, rule, fragment, _ = entry
        if rel == path and diag.get('rule') == rule and fragment in diag['message']:
            return entry
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default=REPO, help='the tree to check (default: this repository)')
    parser.add_argument('--fresh', action='store_true',
                        help='run pyright even if these exact inputs passed before')
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    # a pass is remembered by the digest of its inputs: an unchanged tree
    # (make test, then make check) answers at once
    passed = os.path.join(REPO, 'build', 'check', 'passed-' + inputs_digest(root))
    if os.path.exists(passed) and not args.fresh:
        print('check: board files match the MicroPython ESP32 API (unchanged since the last pass)')
        return 0

    report = run_pyright(root)
    analysed = report['summary']['filesAnalyzed']
    if analysed == 0:
        raise SystemExit('check: pyright analysed no files under %s' % root)

    errors, used = [], set()
    for diag in report['generalDiagnostics']:
        if diag['severity'] != 'error':
            continue
        rel = os.path.relpath(diag.get('file', root), root).replace(os.sep, '/')
        entry = reason_to_ignore(diag, rel)
        if entry:
            used.add(entry)
            continue
        start = diag['range']['start']
        errors.append('%s:%d:%d: %s [%s]' % (rel, start['line'] + 1, start['character'] + 1,
                                             diag['message'], diag.get('rule', 'error')))
    for entry in IGNORE:
        if entry not in used:
            print('check: note: ignore entry no longer needed: %s %s %r'
                  % entry[:3], file=sys.stderr)
    for line in errors:
        print(line)
    if errors:
        print('check: %d error(s) against the MicroPython ESP32 API (%d files)'
              % (len(errors), analysed))
        return 1
    print('check: board files match the MicroPython ESP32 API (%d files, %d known exceptions)'
          % (analysed, len(used)))
    folder = os.path.dirname(passed)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    open(passed, 'w').close()
    return 0


if __name__ == '__main__':
    sys.exit(main())

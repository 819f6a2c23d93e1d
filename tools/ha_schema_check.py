"""Check MQTT discovery configs against Home Assistant's own schemas.

Runs in build/ha-venv (Home Assistant as pinned in tools/ha-requirements.txt;
`python tools/ha_schema_check.py --setup` makes it).
Reads a JSON list of [topic, payload text] on stdin; for each one it
validates the payload with
homeassistant.components.mqtt.<component>.DISCOVERY_SCHEMA (the light's
picks the basic/json/template schema by "schema"), and, since those schemas
silently drop keys they do not know (vol.REMOVE_EXTRA), also reports every
key that did not survive validation. Prints one line per problem; exit 1
if there was any.
"""
import fcntl
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, 'build', 'ha-venv')
PYTHON = os.path.join(VENV, 'bin', 'python')
REQUIREMENTS = os.path.join(REPO, 'tools', 'ha-requirements.txt')


def setup():
    """Create build/ha-venv from tools/ha-requirements.txt, once per version of it."""
    os.makedirs(os.path.dirname(VENV), exist_ok=True)
    # parallel test workers: one builds it, the others wait and reuse it
    with open(VENV + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _setup_locked()


def _setup_locked():
    ready = os.path.join(VENV, '.ready')
    wanted = open(REQUIREMENTS).read()
    if os.path.exists(ready) and open(ready).read() == wanted:
        return PYTHON
    subprocess.run([sys.executable, '-m', 'venv', '--clear', VENV], check=True)
    # every package is pinned there: no resolving. pip writes the .pyc files
    # now (make test-deps), not the first check beside the test's boards
    subprocess.run([PYTHON, '-m', 'pip', 'install', '-q', '--no-deps',
                    '-r', REQUIREMENTS], check=True)
    with open(ready, 'w') as f:
        f.write(wanted)
    return PYTHON


def check(configs):
    import importlib
    problems = []
    for topic, text in configs:
        component = topic.split('/')[1]
        module = importlib.import_module('homeassistant.components.mqtt.' + component)
        payload = json.loads(text)
        try:
            valid = module.DISCOVERY_SCHEMA(dict(payload))
        except Exception as exc:   # vol.Invalid
            problems.append('%s: %s' % (topic, exc))
            continue
        dropped = sorted(set(payload) - set(valid))
        if dropped:
            problems.append('%s: keys ignored by Home Assistant: %s' % (topic, dropped))
    return problems


def main():
    if sys.argv[1:] == ['--setup']:
        print(setup())
        return 0
    problems = check(json.load(sys.stdin))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())

"""Check MQTT discovery configs against Home Assistant's own schemas.

Runs in build/ha-venv (Home Assistant HA_VERSION, the newest that installs
on Python 3.11; `python tools/ha_schema_check.py --setup` makes it).
Reads a JSON list of [topic, payload text] on stdin; for each one it
validates the payload with
homeassistant.components.mqtt.<component>.DISCOVERY_SCHEMA (the light's
picks the basic/json/template schema by "schema"), and, since those schemas
silently drop keys they do not know (vol.REMOVE_EXTRA), also reports every
key that did not survive validation. Prints one line per problem; exit 1
if there was any.
"""
import json
import os
import subprocess
import sys

HA_VERSION = '2024.3.3'     # 2024.4 and newer need Python 3.12
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, 'build', 'ha-venv')
PYTHON = os.path.join(VENV, 'bin', 'python')
# homeassistant's own requirements pin hundreds of packages and pip's resolver
# backtracks for a long time over habluetooth's; the schemas need only these
# (the camera schema imports the stream component: numpy, av, turbojpeg)
EXTRA = ['paho-mqtt==1.6.1', 'numpy==1.26.0', 'PyTurboJPEG==1.7.1', 'ha-av==10.1.1']


def setup():
    """Create build/ha-venv with the pinned Home Assistant, once."""
    if os.path.exists(os.path.join(VENV, '.ready')):
        return PYTHON
    subprocess.run([sys.executable, '-m', 'venv', VENV], check=True)
    pip = [PYTHON, '-m', 'pip', 'install', '-q']
    subprocess.run(pip + ['--no-deps', 'homeassistant==' + HA_VERSION], check=True)
    from_metadata = subprocess.run(
        [PYTHON, '-c', 'from importlib.metadata import requires; '
         'print("\\n".join(r for r in requires("homeassistant") if "extra" not in r))'],
        check=True, capture_output=True, text=True).stdout.split('\n')
    subprocess.run(pip + [r.replace(' (', '').replace(')', '') for r in from_metadata if r]
                   + EXTRA, check=True)
    open(os.path.join(VENV, '.ready'), 'w').close()
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

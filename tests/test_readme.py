"""The README's own commands, as a new user types them: the simulated board
started with the system's Python, and the simulated board's deploy and
over-the-air update examples, read from README.md and run in a checkout."""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import httpx

from flashboard import checkout, in_terminal, make
from tools.sim.harness import REPO, free_port

SYSTEM_PYTHON = os.path.join(sys.base_prefix, 'bin', 'python3')     # not .venv's


def readme_command(start):
    """The README's command line that begins with `start`, without its comment."""
    with open(os.path.join(REPO, 'README.md')) as f:
        for line in f:
            if line.startswith(start):
                return line.split('  #', 1)[0].strip()
    raise AssertionError('README.md has no command starting %r' % start)


class Simulator:
    """tools/simulate.py run as a command line, its output in a file."""

    def __init__(self, args, cwd, log_path):
        self.log_path = log_path
        self.log = open(log_path, 'wb')
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, 'simulator exited:\n' + self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)
        return self.output()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def test_the_simulator_runs_with_the_systems_python(tmp_path):
    # the system's Python has neither microdot nor MicroPython: .venv has them
    assert subprocess.run([SYSTEM_PYTHON, '-c', 'import microdot'],
                          capture_output=True).returncode != 0
    port = free_port()
    sim = Simulator([SYSTEM_PYTHON, 'tools/simulate.py', '--port', str(port),
                     '--sdcard', str(tmp_path / 'sdcard.img')], REPO, str(tmp_path / 'sim.log'))
    try:
        out = sim.wait_for('Dashboard: http://127.0.0.1:%d/' % port)
        assert 'Traceback' not in out
        assert httpx.get('http://127.0.0.1:%d/login' % port, timeout=10).status_code == 200
    finally:
        assert sim.stop() == 0, sim.output()


def test_without_make_setup_the_simulator_says_what_to_do(tmp_path):
    repo = checkout(tmp_path / 'repo')
    os.remove(os.path.join(repo, '.venv'))          # never set up
    result = subprocess.run([SYSTEM_PYTHON, 'tools/simulate.py'], cwd=repo, capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, PATH='/usr/bin:/bin'))
    assert result.returncode != 0
    assert 'make setup' in result.stderr and 'Traceback' not in result.stderr, result.stderr


def test_the_readme_update_example_on_a_simulated_board(tmp_path):
    repo = checkout(tmp_path / 'repo')
    port = free_port()
    # python tools/simulate.py --flash build/sim/flash.img --serial --port 8080
    args = shlex.split(readme_command('python tools/simulate.py --flash'))
    args = [SYSTEM_PYTHON] + [a.replace('8080', str(port)) for a in args[1:]]
    sim = Simulator(args, repo, str(tmp_path / 'sim.log'))
    try:
        serial = sim.wait_for('Serial: ').split('Serial: ', 1)[1].split()[0]
        # make deploy PORT=/dev/pts/3 ARCH=host CONFIG=tools/sim/config.json
        deploy = shlex.split(readme_command('make deploy PORT=/dev/pts/3 ARCH=host'))
        status, out = in_terminal(make(repo, *[a.replace('/dev/pts/3', serial)
                                               for a in deploy[1:]]), lambda console: True)
        assert status == 0, out
        sim.wait_for('app: serving on')
        # a new version, sent as the README says
        init = os.path.join(repo, 'firmware', '__init__.py')
        text = open(init).read()
        open(init, 'w').write(re.sub(r"VERSION = '[^']+'", "VERSION = '9.9.9'", text))
        line = readme_command('make ota HOST=127.0.0.1:8080 ARCH=host').replace('8080', str(port))
        assert line.startswith('make ')
        line = 'make --no-print-directory -o .venv/.installed ' + line[len('make '):]
        result = subprocess.run(['bash', '-c', line], cwd=repo, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert 'ota: updated to 9.9.9' in result.stdout, result.stdout
    finally:
        sim.stop()

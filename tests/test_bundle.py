"""The deploy bundle boots on the simulator, and `make deploy` would copy
exactly it."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tools.sim.harness import REPO, frame_set

BUNDLE_TOOL = os.path.join(REPO, 'tools', 'bundle.py')
DEPLOY_TOOL = os.path.join(REPO, 'tools', 'deploy.py')


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    """The bundle as the simulator runs it: native modules for this CPU."""
    out = str(tmp_path_factory.mktemp('bundle') / 'board')
    subprocess.run([sys.executable, BUNDLE_TOOL, '--out', out, '--arch', 'host'], check=True)
    return out


@pytest.fixture(scope='module')
def esp32_bundle(tmp_path_factory):
    """The bundle `make deploy` copies: native modules for the ESP32."""
    out = str(tmp_path_factory.mktemp('bundle-esp32') / 'board')
    subprocess.run([sys.executable, BUNDLE_TOOL, '--out', out], check=True)
    return out


def files_of(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


def test_the_bundle_holds_the_board_files_and_nothing_else(bundle):
    files = files_of(bundle)
    assert 'boot.py' in files and 'main.py' in files
    assert 'firmware/app.mpy' in files and 'lib/microdot/microdot.mpy' in files
    assert 'static/app.js.gz' in files and 'static/index.html.gz' in files
    assert not [f for f in files if f.startswith(('tools', 'tests')) or f == 'config.json']
    assert not [f for f in files if f.startswith('firmware/') and f.endswith('.py')]
    sources = [n for n in os.listdir(os.path.join(REPO, 'firmware')) if n.endswith('.py')]
    assert sorted(f[len('firmware/'):-4] for f in files if f.startswith('firmware/')) == \
        sorted(n[:-3] for n in sources)


def test_the_bundle_boots_and_works(make_board, bundle):
    board = make_board(board_root=bundle).start()
    board.wait_frame()
    with board.http() as client:
        page = client.get('/', headers={'Accept-Encoding': 'gzip'})
        assert page.status_code == 200 and page.headers['content-encoding'] == 'gzip'
        assert 'snap-btn' in page.text          # httpx inflates it
        assert client.get('/static/app.js', headers={'Accept-Encoding': 'identity'}) \
            .headers.get('content-encoding') is None
    with board.ws() as ws:
        reply = board.command(ws, cmd='snapshot_now')
        status = board.command(ws, cmd='status')['status']
    assert reply['ok'] is True
    assert board.card_files()[reply['saved'].rsplit('/', 1)[1]] in frame_set()
    assert status['camera'] == 'ok' and status['free_heap'] > 0
    print('free heap, bundle:', status['free_heap'])


def test_a_module_missing_from_the_bundle_fails_to_boot(make_board, bundle, tmp_path):
    broken = str(tmp_path / 'broken')
    shutil.copytree(bundle, broken)
    os.remove(os.path.join(broken, 'firmware', 'snapstore.mpy'))
    board = make_board(board_root=broken)
    with pytest.raises(RuntimeError):
        board.start(timeout=15)
    assert 'snapstore' in board.output()


def test_deploy_dry_run_copies_exactly_the_bundle(bundle):
    out = subprocess.run([sys.executable, DEPLOY_TOOL, '--port', '/dev/ttyUSB0',
                          '--bundle', bundle, '--dry-run'],
                         capture_output=True, text=True, check=True).stdout
    files = out.split('files:\n')[1].split('commands:')[0].split()
    assert files == files_of(bundle)
    commands = out.split('commands:\n')[1].strip().splitlines()
    # safe mode first: the app and its watchdog must not run while copying
    assert 'connect /dev/ttyUSB0 resume exec' in commands[0] and 'SAFE' in commands[0]
    assert commands[0].endswith('+ reset')
    copy = [c for c in commands if ' fs cp -r ' in c]
    assert len(copy) == 1 and copy[0].endswith(' :') and 'resume exec' in copy[0]
    assert 'endswith(".py")' in copy[0]        # stale sources cannot shadow .mpy
    assert 'SAFE' in commands[-2] and commands[-2].endswith('+ reset')
    assert commands[-1].endswith('repl')
    assert 'config.json' not in out


def test_deploy_config_only_when_asked_and_present(bundle, tmp_path):
    result = subprocess.run([sys.executable, DEPLOY_TOOL, '--port', '/dev/ttyUSB0',
                             '--bundle', bundle, '--dry-run', '--config'],
                            capture_output=True, text=True)
    if os.path.exists(os.path.join(REPO, 'config.json')):
        assert ':config.json' in result.stdout
    else:
        assert result.returncode != 0 and 'config.example.json' in result.stderr


def test_the_whole_dashboard_is_at_most_25_kb_gzipped(bundle):
    static = os.path.join(bundle, 'static')
    gz = [n for n in os.listdir(static) if n.endswith('.gz')]
    assert {n[:-3] for n in gz} >= {'index.html', 'app.js', 'style.css'}
    total = sum(os.path.getsize(os.path.join(static, n)) for n in gz)
    print('dashboard gzipped: %d bytes' % total)
    assert total <= 25 * 1024


def _mpy_arch(path):
    # .mpy header: 'M', version, flags (arch in the top bits), small int bits
    with open(path, 'rb') as f:
        header = f.read(4)
    assert header[0] == ord('M')
    return header[2] >> 2


def test_the_esp32_bundle_differs_only_in_its_native_modules(bundle, esp32_bundle):
    assert files_of(bundle) == files_of(esp32_bundle)
    native = []
    for name in files_of(bundle):
        if not name.endswith('.mpy'):
            continue
        with open(os.path.join(bundle, name), 'rb') as a, \
                open(os.path.join(esp32_bundle, name), 'rb') as b:
            if a.read() != b.read():
                native.append(name)
    for name in native:
        # MP_NATIVE_ARCH_XTENSAWIN is 10; the simulator's is x64 (3) here
        assert _mpy_arch(os.path.join(esp32_bundle, name)) == 10, name
        assert _mpy_arch(os.path.join(bundle, name)) != 10, name
        source = os.path.join(REPO, name[:-4] + '.py')
        assert '@micropython.viper' in open(source).read() or \
            '@micropython.native' in open(source).read()


def _manifest_modules():
    """The modules manifest.py freezes, evaluated the way MicroPython's
    makemanifest does: package() takes every .py below the package folder."""
    frozen = []

    def package(name, files=None, base_path='.', opt=None):
        folder = os.path.join(REPO if base_path == '.' else base_path, name)
        names = files or sorted(n for n in os.listdir(folder) if n.endswith('.py'))
        for file_name in names:
            assert os.path.exists(os.path.join(folder, file_name)), file_name
            frozen.append('%s/%s' % (name, file_name[:-3]))

    def module(name, base_path='.', opt=None):
        frozen.append(name[:-3])

    with open(os.path.join(REPO, 'manifest.py')) as f:
        code = f.read()
    exec(code, {'include': lambda path: None, 'package': package, 'module': module,
                'require': lambda *a, **k: None})
    return sorted(frozen)


def test_the_manifest_freezes_exactly_the_bundles_modules(bundle):
    bundled = sorted(f[:-4].replace('lib/', '', 1) for f in files_of(bundle)
                     if f.endswith('.mpy'))
    assert _manifest_modules() == bundled


def test_package_json_lists_every_board_file_and_the_pinned_microdot(bundle):
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    import boardfiles
    assert subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'boardfiles.py'),
                           '--check']).returncode == 0
    urls = json.load(open(os.path.join(REPO, 'package.json')))['urls']
    destinations = [dest for dest, _ in urls]
    sources = [f for f in files_of(bundle) if not f.endswith(('.gz', '.mpy'))]
    sources += [f[:-4] + '.py' for f in files_of(bundle) if f.endswith('.mpy')]
    assert sorted(destinations) == sorted(sources)
    pinned = boardfiles.microdot_version()
    assert pinned in open(os.path.join(REPO, 'requirements.txt')).read()
    assert all('/v%s/' % pinned in src for dest, src in urls if dest.startswith('lib/'))


def test_a_bundle_is_the_same_bytes_from_any_checkout(esp32_bundle, tmp_path):
    from flashboard import bundle_hashes, checkout, make
    other = checkout(tmp_path / 'elsewhere' / 'clone')
    subprocess.run(make(other, 'bundle'), check=True, capture_output=True)
    theirs = os.path.join(other, 'build', 'board')
    assert bundle_hashes(theirs) == bundle_hashes(esp32_bundle)
    # the .mpy files name their sources by the board's paths, not the host's
    for name in files_of(theirs):
        data = open(os.path.join(theirs, name), 'rb').read()
        assert other.encode() not in data and REPO.encode() not in data, name
    board_py = open(os.path.join(theirs, 'firmware', 'board.mpy'), 'rb').read()
    assert b'firmware/board.py' in board_py

"""pytest fixtures around the simulated board; the harness itself is
tools/sim/harness.py, shared with tools/bench.py."""
import os
import shutil
import subprocess
import sys
import tempfile

import httpx._transports.default as httpx_transport
import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.sim.harness import REPO, Board  # noqa: E402
from chromium import ARGS, CHROMIUM  # noqa: E402
from tools.broker import Broker, Listener  # noqa: E402  (mosquitto + paho)


# httpx builds a verifying SSL context (certifi's CA file, ~40 ms of CPU) for
# every client, though the tests' clients talk plain HTTP to loopback, and
# make thousands: they share one (an explicit verify= still gets its own)
_new_ssl_context = httpx_transport.create_ssl_context
_ca_context = []


def _shared_ssl_context(verify=True, cert=None, trust_env=True):
    if verify is not True or cert:
        return _new_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    if not _ca_context:
        _ca_context.append(_new_ssl_context(trust_env=trust_env))
    return _ca_context[0]


httpx_transport.create_ssl_context = _shared_ssl_context


def pytest_configure(config):
    # Every board of the run boots from one host bundle (firmware as .mpy,
    # the tree the board gets; tools/bundle.py), built here once: compiling
    # ~60 sources at each of ~1,000 boots was half of a boot's time. A test
    # that names its own board_root still gets it.
    if not hasattr(config, 'workerinput') and not os.environ.get('SIM_TEST_BUNDLE'):
        out = tempfile.mkdtemp(prefix='sim-bundle-')
        subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'bundle.py'),
                        '--out', out, '--arch', 'host'], check=True, capture_output=True)
        os.environ['SIM_TEST_BUNDLE'] = out      # the workers inherit it
        config.sim_bundle = out


# The longest tests (30-90 s each; a module-scoped fixture's tests stay in
# their module), longest first. Run last, they made the run's tail: each
# worker now starts with its share of them (see below).
LONG = (
    'tests/test_months.py::test_ninety_days_of_a_busy_camera_on_a_small_card',
    'tests/test_clips.py::test_cuts_at_single_block_writes_of_a_clip_its_close_and_its_repair',
    'tests/test_power_cut.py::test_power_cuts_never_leave_a_broken_snapshot_or_lost_space',
    'tests/test_attacks_storage.py::test_24_5_a_cut_at_every_block_write_of_an_old_seq_migration_never_reuses_a_number',
    'tests/test_clips.py::test_power_cuts_while_recording_leave_playable_clips',
    'tests/test_attacks_storage.py::test_9_a_motion_snapshot_counts_if_and_only_if_its_file_is_on_the_card',
    'tests/test_power_cut.py::test_a_cut_after_every_single_block_write_of_a_save',
    'tests/test_card_migration.py::test_10000_flat_snapshots_move_into_folders_through_random_cuts',
    'tests/test_attacks_storage.py::test_3_a_cut_at_every_block_write_of_a_seq_renewal_never_reuses_a_number',
    'tests/test_deploy.py::test_mpremote_stops_the_app_and_the_console_says_until_when',
    'tests/test_readme.py::test_the_readme_update_example_on_a_simulated_board',
    'tests/test_check.py::test_what_the_esp32_port_lacks_fails_the_check',
    'tests/test_deploy.py::test_soft_reset_and_machine_reset_reboot_through_boot_py',
    'tests/test_limits.py::test_connect_disconnect_cycles_and_commands_do_not_leak',
    'tests/test_clips.py::test_retention_removes_oldest_clips_then_motion_snapshots',
    'tests/test_deploy.py::test_deploy_to_a_blank_board_then_only_what_changed',
    'tests/test_mqtt.py::test_tls_to_the_broker_verified_against_the_configured_ca',
    'tests/test_mqtt.py::test_tls_broker_with_a_certificate_not_from_the_ca_is_refused',
)


def pytest_collection_modifyitems(config, items):
    # pytest-xdist's worksteal hands each worker one contiguous share of the
    # list (then idle workers take the back half of a busy one's queue):
    # every share begins with its round-robin part of LONG. Every worker
    # computes the same order, as xdist requires.
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT') or 0)
    if workers < 2:
        return
    rank = {nodeid: i for i, nodeid in enumerate(LONG)}
    long = sorted((item for item in items if item.nodeid in rank), key=lambda i: rank[i.nodeid])
    rest = iter([item for item in items if item.nodeid not in rank])
    ordered = []
    left = len(items)
    for k in range(workers):
        share = left // (workers - k)       # as the scheduler cuts it
        left -= share
        part = long[k::workers]
        ordered += part + [next(rest) for _ in range(share - len(part))]
    items[:] = ordered + list(rest)


def pytest_unconfigure(config):
    if getattr(config, 'sim_bundle', None):
        shutil.rmtree(config.sim_bundle, ignore_errors=True)
        del os.environ['SIM_TEST_BUNDLE']


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # a failed test's report ends with what its boards printed: CI keeps nothing else
    report = (yield).get_result()
    if report.failed:
        for number, board in enumerate(getattr(item, 'sim_boards', ())):
            try:
                tail = board.output()[-6000:]
            except OSError:
                continue
            report.sections.append(('board %d console (last 6000 chars)' % number, tail))


@pytest.fixture
def make_board(tmp_path, request):
    boards = request.node.sim_boards = []

    def make(**kwargs):
        board = Board(tmp_path, **kwargs)
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.stop()


@pytest.fixture
def board(make_board):
    """A booted board with a fresh card and the default frames."""
    b = make_board().start()
    b.wait_frame()
    return b


@pytest.fixture
def broker(tmp_path):
    """Debian's mosquitto on a free loopback port, stopped after the test."""
    b = Broker(tmp_path).start()
    yield b
    b.stop()


@pytest.fixture
def listener(broker):
    """A paho-mqtt client subscribed on that broker."""
    listener = Listener(broker)
    yield listener
    listener.close()


@pytest.fixture(scope='module')
def still_frames(tmp_path_factory):
    """A scene nobody walks through: the gallery holds only what a test saves.
    240 frames (24 s at 10 fps): a clip's frame order is told from a gap of a
    loaded host's seconds, where a 48-frame loop wraps within one."""
    out = str(tmp_path_factory.mktemp('still') / 'frames')
    subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'make_frames.py'), out,
                    '--still-only', '--count', '240'], check=True)
    return out


@pytest.fixture(scope='session')
def browser():
    """Debian's Chromium, headless, driven by Playwright. A machine without it
    fails the browser tests (never skips them): tools/system-deps.sh installs it."""
    assert os.path.exists(CHROMIUM), '%s missing: run tools/system-deps.sh' % CHROMIUM
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(board): the dashboard in a fresh browser context, logged in
    through the board's login form, online."""
    contexts = []

    def open_page(board, width=1280, height=900):
        context = browser.new_context(viewport={'width': width, 'height': height},
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on('console', lambda m: m.type == 'error' and page.errors.append(m.text))
        page.on('pageerror', lambda e: page.errors.append('pageerror: %s' % e))
        page.goto(board.url + '/')
        if board.password and page.url.endswith('/login'):
            page.get_by_label('Dashboard password').fill(board.password)
            page.get_by_role('button', name='Log in').click()
            page.wait_for_url(board.url + '/')
        expect(page.locator('#conn')).to_have_text('online')
        return page

    yield open_page
    for context in contexts:
        context.close()

"""pytest fixtures around the simulated board; the harness itself is
tools/sim/harness.py, shared with tools/bench.py."""
import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.sim.harness import REPO, Board  # noqa: E402
from chromium import ARGS, CHROMIUM  # noqa: E402
from tools.broker import Broker, Listener  # noqa: E402  (mosquitto + paho)


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

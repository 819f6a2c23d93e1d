"""A board with every connection taken, as people meet it: three dashboards
open, a fourth person loads the page. Nothing dead-ends: the page says the
board is busy and gets in by itself, its stylesheet and script arrive, and
the open dashboards' galleries still show new snapshots."""
import re

from playwright.sync_api import expect

from test_sockets import frames_change, set_hidden

QUIET = re.compile('503|net::ERR_')         # Chromium logs each refused request


def test_a_fourth_dashboard_beside_three_gets_in_by_itself(make_board, still_frames, browser,
                                                           open_page):
    board = make_board(frames=still_frames, sockets=10).start()     # max_connections 7
    board.wait_frame()
    open_ = [open_page(board) for _ in range(3)]
    for page in open_:
        expect(page.locator('#live-state')).to_have_text('live')
    # the fourth person has logged in, then loads the page while the last
    # connection is taken too (a script's /control)
    fourth = browser.new_context(viewport={'width': 390, 'height': 844}).new_page()
    fourth.errors = []
    fourth.on('console', lambda m: m.type == 'error' and fourth.errors.append(m.text))
    fourth.on('pageerror', lambda e: fourth.errors.append('pageerror: %s' % e))
    fourth.context.request.post(board.url + '/login', form={'password': board.password},
                                max_redirects=0)
    with board.ws() as ws:
        reply = fourth.goto(board.url + '/')
        assert reply.status == 503
        expect(fourth.get_by_role('heading', name='Board busy')).to_be_visible()
        # a snapshot now: no dashboard can fetch /snaps, each shows it anyway
        saved = board.command(ws, cmd='snapshot_now')['saved'].rsplit('/', 1)[1]
        for page in open_:
            expect(page.locator('#gallery li').first).to_contain_text(saved[:-4])
    # the script lets go: the busy page reloads itself into the dashboard,
    # styled and running, status first (the picture waits for a free connection)
    expect(fourth.locator('#conn')).to_have_text('online', timeout=30000)
    fourth.wait_for_function("getComputedStyle(document.body).backgroundColor === 'rgb(14, 18, 22)'",
                             timeout=20000)
    expect(fourth.locator('#live-state')).to_have_text(re.compile('board busy'))
    # another person puts a tab in the background: the fourth's picture and
    # gallery come in by themselves
    set_hidden(open_[0], True)
    expect(fourth.locator('#live-state')).to_have_text('live', timeout=40000)
    frames_change(fourth)
    expect(fourth.locator('#gallery li').first).to_contain_text(saved[:-4], timeout=30000)
    for page in open_ + [fourth]:
        assert [e for e in page.errors if not QUIET.search(e)] == []
    fourth.context.close()

"""The last 24 hours of motion on the dashboard: triggers per 15 minutes
from the board's counters (/timeline), each bar opening its snapshots and
clips; after a restart the counts come back from the snapshot names.
Screenshots: build/screenshots/timeline-desktop.png, timeline-phone.png."""
import json
import os
import re
import time

from playwright.sync_api import expect

from tools.sim.harness import REPO

SHOTS = os.path.join(REPO, 'build', 'screenshots')


def sim_config(**motion):
    config = json.load(open(os.path.join(REPO, 'tools', 'sim', 'config.json')))
    config['motion'].update(motion)
    return config


def bar_start(name):
    """'HH:MM' of the 15-minute bar a snapshot or clip name falls in."""
    hms = re.search(r'-\d{8}-(\d{6})-', name).group(1)
    return '%s:%02d' % (hms[:2], int(hms[2:4]) // 15 * 15)


def timeline(board):
    with board.http() as client:
        reply = client.get('/timeline')
    assert reply.status_code == 200
    return reply.json()


def test_the_day_of_motion_as_bars_that_open_their_snapshots_and_clips(make_board, tmp_path,
                                                                       open_page):
    board = make_board(config=sim_config()).start()    # a figure walks through the scene
    board.wait_for(lambda s: s['trigger_count'] >= 2, timeout=60)
    with board.ws() as ws:
        assert board.command(ws, cmd='set', key='motion_armed', value=False)['ok']
        assert board.command(ws, cmd='record_start')['ok']
        board.wait_for(lambda s: s['recording'], timeout=20)
        board.command(ws, cmd='record_stop')
        assert board.command(ws, cmd='snapshot_now')['ok']     # in the clip's quarter hour
    status = board.wait_for(lambda s: not s['recording'] and s['snapshot_count'] >= 3)
    motion_snaps = sorted(n for n in board.card_files() if n.startswith('motion-'))
    with board.http() as client:
        clip = client.get('/clips').json()[0]['name']
    # the snapshots named in the clip's 15 minutes, newest (number) first, as listed
    in_bar = sorted((n for n in board.card_files() if bar_start(n) == bar_start(clip)),
                    key=lambda n: int(n.rsplit('-', 1)[1][:-4]), reverse=True)
    assert in_bar
    view = timeline(board)
    assert view['clock_set'] and view['step_s'] == 900 and len(view['counts']) == 96
    assert sum(view['counts']) == status['trigger_count'] >= 2

    for label, width, height in (('desktop', 1280, 900), ('phone', 390, 844)):
        page = open_page(board, width, height)
        bars = page.get_by_role('group', name=re.compile('^Motion triggers per 15 minutes'))
        expect(bars.get_by_role('button')).to_have_count(96)
        expect(page.locator('#tl-total')).to_have_text('%d triggers' % status['trigger_count'])
        # the bar of the clip just made holds it and the snapshots of its 15 minutes
        bar = bars.get_by_role('button', name=re.compile('^%s–' % bar_start(clip)))
        bar.click()
        detail = page.locator('#tl-detail')
        expect(detail).to_be_visible()
        expect(page.locator('#tl-when')).to_contain_text(bar_start(clip) + '–')
        expect(detail.locator('#tl-clips li')).to_have_text([clip[:-4] + 'Play'])
        shown = detail.locator('#tl-snaps li')
        expect(shown).to_have_count(len(in_bar))
        assert [t.split('\n')[-1] + '.jpg' for t in shown.all_inner_texts()] == in_bar
        page.wait_for_function("[...document.querySelectorAll('#tl-snaps img')]"
                               ".every(i => i.complete && i.naturalWidth)")
        os.makedirs(SHOTS, exist_ok=True)
        page.locator('section.timeline').screenshot(
            path=os.path.join(SHOTS, 'timeline-%s.png' % label))
        width_used = page.evaluate('document.documentElement.scrollWidth')
        assert width_used <= width, 'the page scrolls sideways at %d px' % width
        # a snapshot opens in the viewer, as from the gallery
        shown.first.get_by_role('button').click()
        expect(page.locator('#viewer')).to_be_visible()
        expect(page.locator('#viewer-img')).to_have_attribute('src', '/snaps/' + in_bar[0])
        assert page.errors == []
        page.context.close()

    # after a restart (motion off now), the counts come back from the names
    (tmp_path / 'config.json').write_text(json.dumps(sim_config(motion_armed=False)))
    board.stop()
    board.start()
    # (once the clock is set: before that, names carry no real time)
    deadline = time.monotonic() + 20
    while sum(timeline(board)['counts']) != len(motion_snaps):
        assert time.monotonic() < deadline, timeline(board)
        time.sleep(0.2)
    assert board.status()['trigger_count'] == 0

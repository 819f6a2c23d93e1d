"""The dashboard in a real Chromium (Debian's, driven by Playwright) against
the simulated board: buttons, slider, gallery, reconnecting, screenshots."""
import os
import re
import time

import pytest
from playwright.sync_api import expect

from tools.sim.harness import REPO

SHOTS = os.path.join(REPO, 'build', 'screenshots')
# what Chromium itself logs when the board is down: not our page's errors
NETWORK_NOISE = re.compile(r'ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|'
                           r'WebSocket connection to .* failed|net::ERR_')

expect.set_options(timeout=20000)


@pytest.fixture
def board(make_board, still_frames):
    b = make_board(frames=still_frames).start()
    b.wait_frame()
    return b


def test_save_snapshot_reset_and_slider(board, open_page):
    page = open_page(board)
    expect(page.locator('#live-state')).to_have_text('live')
    page.click('#snap-btn')
    expect(page.locator('#message')).to_have_text(re.compile(r'^Saved manual-\d{8}-\d{6}-\d{4}\.jpg$'))
    name = page.locator('#message').inner_text().split(' ')[1]
    assert name in board.card_files()
    expect(page.locator('#last-snapshot')).to_have_text(name)
    expect(page.locator('#gallery li')).to_have_count(1)

    page.click('#reset-btn')
    expect(page.locator('#trigger-count')).to_have_text('0')
    expect(page.locator('#message')).to_have_text('Counters reset')

    page.locator('#sensitivity').fill('83')
    expect(page.locator('#message')).to_have_text('sensitivity set to 83')
    assert board.status()['settings']['sensitivity'] == 83      # another client sees it
    assert page.errors == []


def test_camera_settings_and_keyboard(board, open_page):
    page = open_page(board)
    page.select_option('#framesize', 'QVGA')
    expect(page.locator('#message')).to_have_text('framesize set to QVGA')
    page.locator('#vflip').check()
    expect(page.locator('#message')).to_have_text('vflip set to true')
    page.locator('#quality').focus()
    page.keyboard.press('ArrowRight')
    expect(page.locator('#message')).to_have_text('quality set to 13')
    page.locator('#snap-btn').focus()
    page.keyboard.press('Enter')
    expect(page.locator('#message')).to_have_text(re.compile('^Saved '))
    settings = board.status()['settings']
    assert settings['framesize'] == 'QVGA' and settings['vflip'] is True and settings['quality'] == 13
    assert page.errors == []


def test_every_setting_has_a_control_and_updates_sit_under_system(board, open_page):
    from firmware.settings import TABLE
    page = open_page(board)
    settings = page.get_by_role('region', name='Settings')
    for name in TABLE:
        if name not in ('motion_mask', 'motion_zones'):     # drawn in the mask and zone editors
            expect(settings.locator('[data-key="%s"]' % name)).to_have_count(1)
    for key, value in (('contrast', 2), ('saturation', -1), ('gainceiling', 4)):
        settings.locator('#' + key).fill(str(value))
        expect(page.locator('#message')).to_have_text('%s set to %d' % (key, value))
    settings.get_by_label('Motion detection armed').uncheck()
    expect(page.locator('#message')).to_have_text('motion_armed set to false')
    now = board.status()['settings']
    assert (now['contrast'], now['saturation'], now['gainceiling'], now['motion_armed']) == \
        (2, -1, 4, False)
    # the update controls are the System section's, not the status card's
    system = page.get_by_role('region', name='System')
    expect(system.get_by_label('Update file')).to_be_visible()
    expect(system.locator('#fw-version')).not_to_have_text('–')
    expect(page.get_by_role('region', name='Status').locator('#update-file, #fw-version')).to_have_count(0)
    assert page.errors == []


def test_gallery_shows_opens_and_deletes(board, open_page):
    with board.ws() as ws:
        saved = [board.command(ws, cmd='snapshot_now')['saved'].rsplit('/', 1)[1] for _ in range(3)]
    page = open_page(board)
    thumbs = page.locator('#gallery li')
    expect(thumbs).to_have_count(3)
    expect(thumbs.first).to_contain_text(saved[-1][:-4])       # newest first
    thumbs.first.locator('button').click()
    expect(page.locator('#viewer')).to_be_visible()
    expect(page.locator('#viewer-img')).to_have_attribute('src', '/snaps/' + saved[-1])
    assert page.locator('#viewer-img').evaluate('img => img.complete && img.naturalWidth') == 320
    expect(page.locator('#viewer-download')).to_have_attribute('download', saved[-1])
    page.once('dialog', lambda dialog: dialog.accept())
    page.click('#viewer-delete')
    expect(thumbs).to_have_count(2)
    assert saved[-1] not in board.card_files()
    # a snapshot taken elsewhere shows up without a reload
    with board.ws() as ws:
        board.command(ws, cmd='snapshot_now')
    expect(thumbs).to_have_count(3)
    assert page.errors == []


def test_board_restart_offline_then_working_again_without_reload(board, open_page):
    page = open_page(board)
    board.stop()
    expect(page.locator('#conn')).to_have_text(re.compile('reconnecting|offline'))
    expect(page.locator('#snap-btn')).to_be_disabled()
    # the last frame stays, greyed out, so nobody takes it for the live scene
    expect(page.locator('.frame')).to_have_class(re.compile('stale'))
    expect(page.locator('#live-state')).not_to_have_text('live')
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, 'dashboard-offline.png'))
    board.start()           # same port, same card
    expect(page.locator('#conn')).to_have_text('online', timeout=40000)
    expect(page.locator('#snap-btn')).to_be_enabled()
    page.click('#snap-btn')
    expect(page.locator('#message')).to_have_text(re.compile('^Saved '))
    name = page.locator('#message').inner_text().split(' ')[1]
    assert name in board.card_files()
    expect(page.locator('#live-state')).to_have_text('live')
    expect(page.locator('.frame')).not_to_have_class(re.compile('stale'))
    assert [e for e in page.errors if not NETWORK_NOISE.search(e)] == []


def test_error_reasons_in_plain_words(make_board, open_page):
    board = make_board(sdcard=None).start()
    page = open_page(board)
    page.click('#snap-btn')
    expect(page.locator('#message')).to_have_text('Failed: there is no SD card in the board')
    expect(page.locator('#sd-free')).to_have_text('no card')


def test_screenshots_desktop_and_phone(board, open_page):
    with board.ws() as ws:
        for _ in range(4):
            board.command(ws, cmd='snapshot_now')
    os.makedirs(SHOTS, exist_ok=True)
    for label, width, height in (('desktop', 1280, 900), ('phone', 390, 844)):
        # one dashboard at a time: each holds three of the board's sockets
        page = open_page(board, width, height)
        expect(page.locator('#live-state')).to_have_text('live')
        expect(page.locator('#gallery li')).to_have_count(4)
        page.wait_for_function("[...document.querySelectorAll('#gallery img')]"
                               ".every(i => i.complete && i.naturalWidth)")
        page.screenshot(path=os.path.join(SHOTS, 'dashboard-%s.png' % label), full_page=True)
        assert page.errors == []
        width_used = page.evaluate('document.documentElement.scrollWidth')
        assert width_used <= width, 'the page scrolls sideways at %d px' % width
        page.context.close()


# --- motion tuning --------------------------------------------------------------

@pytest.fixture
def walking_board(make_board):
    """The default frames: a still garden, then a figure walking through it."""
    b = make_board().start()
    b.wait_frame()
    return b


def mask_hex(cells):
    """The board's motion_mask for a set of (row, col) cells of the 16x12 grid."""
    bits = [1 if (i // 16, i % 16) in cells else 0 for i in range(192)]
    return ''.join('%x' % int(''.join(map(str, bits[i:i + 4])), 2) for i in range(0, 192, 4))


def trigger_text(m):
    if m['cause'] == 'pir':
        return 'Last trigger: #%d PIR' % m['count']
    x0, y0, x1, y1 = m['box']
    return ('Last trigger: #%d picture change, %.1f %% of the picture at (%d, %d)–(%d, %d)'
            % (m['count'], m['area'], x0, y0, x1, y1))


# pixels of the overlay canvas in the colour of changed blocks / the region box
OVERLAY_PIXELS = """([r0, g0, b0]) => {
    const c = document.getElementById('overlay');
    if (c.hidden || !c.width) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
        if (d[i + 3] > 60 && Math.abs(d[i] - r0) < 40 && Math.abs(d[i + 1] - g0) < 40 && Math.abs(d[i + 2] - b0) < 40) n++;
    return n;
}"""
CHANGED_RGB = [255, 77, 79]
BOX_RGB = [255, 210, 63]


def test_motion_overlay_shows_changed_blocks_while_a_figure_walks(walking_board, open_page):
    page = open_page(walking_board)
    expect(page.locator('#live-state')).to_have_text('live')
    expect(page.locator('#overlay')).to_be_hidden()
    page.get_by_label('Show motion').check()
    expect(page.locator('#overlay')).to_be_visible()
    # the figure crosses the scene every few seconds: blocks and the box appear
    page.wait_for_function('([f, rgb]) => eval(f)(rgb) > 50', arg=[OVERLAY_PIXELS, CHANGED_RGB])
    page.wait_for_function('([f, rgb]) => eval(f)(rgb) > 20', arg=[OVERLAY_PIXELS, BOX_RGB])
    # the overlay sits exactly on the picture
    img = page.locator('#live').bounding_box()
    box = page.locator('#overlay').bounding_box()
    assert abs(box['width'] - img['width']) < 2 and abs(box['x'] - img['x']) < 2
    expect(page.locator('#motion-now')).to_have_text('motion')
    # the trigger line says what the board recorded
    deadline = time.monotonic() + 20
    while True:
        last = walking_board.status()['last_motion']
        shown = page.locator('#last-trigger').inner_text()
        if last and shown == trigger_text(last):
            break
        assert time.monotonic() < deadline, (shown, last)
        time.sleep(0.2)
    assert last['cause'] == 'frame' and last['frame'] == [320, 240]
    os.makedirs(SHOTS, exist_ok=True)
    page.wait_for_function('([f, rgb]) => eval(f)(rgb) > 50', arg=[OVERLAY_PIXELS, CHANGED_RGB])
    page.locator('section.live').screenshot(path=os.path.join(SHOTS, 'motion-overlay-desktop.png'))
    page.get_by_label('Show motion').uncheck()
    expect(page.locator('#overlay')).to_be_hidden()
    assert page.errors == []


def paint_rows(page, cells, rows, first_col, last_col):
    """Drag along each of `rows` of the 16 x 12 grid from one column to another."""
    for row in rows:
        start = cells.nth(row * 16 + first_col).bounding_box()
        end = cells.nth(row * 16 + last_col).bounding_box()
        page.mouse.move(start['x'] + 3, start['y'] + 3)
        page.mouse.down()
        page.mouse.move(end['x'] + 5, end['y'] + 3, steps=8)
        page.mouse.up()


def test_zones_drawn_in_the_ui_reach_the_board_and_show_their_motion(walking_board, open_page):
    page = open_page(walking_board, 390, 844)
    expect(page.locator('#live-state')).to_have_text('live')
    page.get_by_role('button', name='Edit zones').click()
    grid = page.get_by_role('group', name=re.compile('^Motion zone'))
    expect(grid).to_be_visible()
    cells = grid.get_by_role('button')
    tools = page.locator('#zone-tools')
    # zone 1: the left half; zone 2: the right half, count only
    tools.get_by_label('Name').fill('front door')
    paint_rows(page, cells, range(12), 0, 7)
    expect(page.locator('#zone-count')).to_have_text('96 of 192 cells in this zone')
    tools.get_by_label('Zone').select_option(label='New zone')
    expect(tools.get_by_label('Name')).to_have_value('zone 2')
    expect(page.locator('#zone-count')).to_have_text('0 of 192 cells in this zone')
    tools.get_by_label('Name').fill('street')
    tools.get_by_label('Sensitivity').fill('60')
    tools.get_by_label('Count only').check()
    paint_rows(page, cells, range(12), 8, 15)
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, 'zone-editor-phone.png'))
    tools.get_by_role('button', name='Save zones').click()
    expect(page.locator('#message')).to_have_text('Motion zones saved: front door, street')
    expect(grid).to_be_hidden()
    want = [{'name': 'front door', 'cells': 'ff00' * 12, 'sensitivity': 50, 'count_only': False},
            {'name': 'street', 'cells': '00ff' * 12, 'sensitivity': 60, 'count_only': True}]
    assert walking_board.status()['settings']['motion_zones'] == want
    # the walker: the pill and the trigger line name the zone; the overlay tints it
    page.get_by_label('Show motion').check()
    expect(page.locator('#motion-now')).to_have_text(re.compile('^motion in (front door|street)'),
                                                     timeout=30000)
    expect(page.locator('#last-trigger')).to_contain_text(' in front door', timeout=30000)
    page.locator('section.live').screenshot(path=os.path.join(SHOTS, 'zones-overlay-phone.png'))
    # a bad name is refused before it is sent; Cancel changes nothing
    page.get_by_role('button', name='Edit zones').click()
    expect(tools.get_by_label('Name')).to_have_value('front door')
    tools.get_by_label('Name').fill("it's")
    tools.get_by_role('button', name='Save zones').click()
    expect(page.locator('#message')).to_contain_text('zone names')
    expect(grid).to_be_visible()
    tools.get_by_role('button', name='Cancel').click()
    assert walking_board.status()['settings']['motion_zones'] == want
    # delete one: the other stays
    page.get_by_role('button', name='Edit zones').click()
    tools.get_by_role('button', name='Delete zone').click()
    expect(tools.get_by_label('Name')).to_have_value('street')
    tools.get_by_role('button', name='Save zones').click()
    expect(page.locator('#message')).to_have_text('Motion zones saved: street')
    assert walking_board.status()['settings']['motion_zones'] == want[1:]
    width_used = page.evaluate('document.documentElement.scrollWidth')
    assert width_used <= 390, 'the page scrolls sideways at 390 px'
    assert page.errors == []


def test_mask_drawn_in_the_ui_reaches_the_board(walking_board, open_page):
    page = open_page(walking_board, 390, 844)
    expect(page.locator('#live-state')).to_have_text('live')
    page.get_by_role('button', name='Edit motion mask').click()
    grid = page.get_by_role('group', name=re.compile('^Motion mask'))
    expect(grid).to_be_visible()
    cells = grid.get_by_role('button')
    expect(cells).to_have_count(192)
    cells.nth(15).click()                         # top right
    cells.nth(15).click()                         # and back
    cells.nth(15).click()
    cells.nth(0).click()                          # top left
    expect(cells.nth(0)).to_have_attribute('aria-pressed', 'true')
    # keyboard: the focused cell moves with the arrows, Space toggles
    page.keyboard.press('ArrowDown')
    page.keyboard.press('ArrowRight')
    page.keyboard.press('Space')
    expect(page.get_by_role('button', name='Row 2, column 2')).to_have_attribute('aria-pressed', 'true')
    # drag along the bottom row paints four cells
    first, fourth = cells.nth(176).bounding_box(), cells.nth(179).bounding_box()
    page.mouse.move(first['x'] + 3, first['y'] + 3)
    page.mouse.down()
    page.mouse.move(fourth['x'] + 5, fourth['y'] + 3, steps=6)
    page.mouse.up()
    expect(page.locator('#mask-count')).to_have_text('7 of 192 cells ignored')
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, 'mask-editor-phone.png'))
    page.get_by_role('button', name='Save mask').click()
    expect(page.locator('#message')).to_have_text('Motion mask saved: 7 of 192 cells ignored')
    want = mask_hex({(0, 0), (0, 15), (1, 1), (11, 0), (11, 1), (11, 2), (11, 3)})
    assert want == '8001' + '4000' + '0' * 36 + 'f000'
    assert walking_board.status()['settings']['motion_mask'] == want
    with page.expect_response(lambda r: r.url.endswith('/motion')) as seen:
        page.get_by_label('Show motion').check()
    assert seen.value.json()['mask'] == want
    # masked cells are shaded in the overlay
    page.wait_for_function("""() => {
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(2, 2, 1, 1).data;
        return d[3] > 100; }""")

    # Clear and Cancel change nothing on the board; Clear then Save clears it
    page.get_by_role('button', name='Edit motion mask').click()
    expect(cells.nth(0)).to_have_attribute('aria-pressed', 'true')
    page.get_by_role('button', name='Clear').click()
    expect(page.locator('#mask-count')).to_have_text('whole picture watched')
    page.get_by_role('button', name='Cancel').click()
    expect(grid).to_be_hidden()
    assert walking_board.status()['settings']['motion_mask'] == want
    page.get_by_role('button', name='Edit motion mask').click()
    page.get_by_role('button', name='Clear').click()
    page.get_by_role('button', name='Save mask').click()
    expect(page.locator('#message')).to_have_text('Motion mask saved: the whole picture is watched')
    assert walking_board.status()['settings']['motion_mask'] == '0' * 48
    width_used = page.evaluate('document.documentElement.scrollWidth')
    assert width_used <= 390, 'the page scrolls sideways at 390 px'
    assert page.errors == []

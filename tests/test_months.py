"""Months of uptime in a test (issue #26): 90 days of a busy camera on a
small card, run ahead with the fault jump_s, power cuts sprinkled in.

Every simulated day: a clip (record_start just before the day is run
ahead: its pre-roll and what follows go to the card while the clock races),
PIR edges spread over the day (motion snapshots, and the motion clips they
start), the time-lapse, and retention keeping the floor of a card that
holds a week or so of all that. At the day's end the board is asked what a
user asks (the /snaps and /clips lists, a status, on some days a manual
snapshot) and the card is read as a card reader does; meanwhile a thread
reads the card's free space all the time. Four power cuts fall in the
first ten days (in a clip, a save, the middle of a day), one after three
months; from day 8 to day 90 the board stays up, and its heap, its loop
and its answers are compared between days 12-16 (the card at its floor
since about day 10) and days 86-90.

Run ahead, the board's clock goes ~200,000 times faster than the host's,
so whatever takes the host a millisecond takes the board minutes: a save
or a time-lapse frame costs it an hour or more, and a day holds a handful
of each, not one a minute. The numbers are printed (pytest -s)."""
import json
import re
import statistics
import subprocess
import threading
import time

from test_power_cut import CUT_EXIT, card_free, fsck_problems
from tools.sim.harness import card_paths, seq_of

DAY = 86400
DAYS = 90
CARD = 32 * 1024 * 1024             # FAT16: the board's mount check runs on it
FRESH_FREE = 33513472               # free on that card when formatted
ROOM = 1024 * 1024                  # what the card holds above the floor
FLOOR = FRESH_FREE - ROOM
# what may go onto the card past the floor before retention looks again: a
# clip's pre-roll and a second of frames (the writer looks at the start and
# then once a second; the still scene's frames are ~6 KB, 10 a second)
SLACK = (2 + 1) * 10 * 6400
CUTS = {2: 'clip', 4: 'day', 6: 'save', 8: 'day'}    # day: what the cut falls into
WINDOW = 5                          # days compared at the start and at the end
EARLY = range(12, 12 + WINDOW)      # the board up since day 8, the card at its floor
LATE = range(DAYS - WINDOW + 1, DAYS + 1)
PULSES = 5                          # PIR edges spread over a day
MANUAL_EVERY = 10                   # a manual snapshot on these days, and in the windows


def config():
    c = json.load(open('tools/sim/config.json'))
    c['motion'].update(pir_pin=13, pir_debounce_ms=0, cooldown_s=0, sensitivity=0)
    c['clips'] = {'motion': True, 'timelapse_s': 60, 'max_s': 60, 'tail_s': 3}
    c['sd'] = {'min_free_bytes': FLOOR}
    c['loop_monitor'] = True
    return c


def card_names(image):
    """{name: folder} of the snapshots and clips on the card, with the clips
    still being written (NAME.avi.part: a time-lapse's all day) by the name
    they will have: their numbers were taken when they began."""
    names = {}
    for top, ext in (('/snaps', '.jpg'), ('/clips', '.avi')):
        for path in card_paths(image, top) or ():
            name = path.rsplit('/', 1)[1]
            if top == '/clips' and name.endswith('.avi.part'):
                name = name[:-5]
            if name.endswith(ext):
                assert name not in names, 'one name twice: ' + path
                names[name] = path.rsplit('/', 2)[-2]
    return names


class FreeWatch(threading.Thread):
    """Free space on the card, read as a card reader does every few tens of
    milliseconds (a few board hours while the clock races): the lowest seen.
    FatFs puts a file's clusters into the FAT on the card when it syncs the
    file (a clip once a second, a time-lapse at each frame, a save when it
    closes): what the card shows is what the board has committed."""

    def __init__(self, image):
        super().__init__(daemon=True)
        self.image = image
        self.lowest = None
        self.samples = 0
        self.paused = threading.Event()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.03):
            if self.paused.is_set():
                continue
            try:
                free = card_free(self.image)
            except (subprocess.CalledProcessError, AttributeError):
                continue        # the FAT caught in the middle of an update
            if not self.paused.is_set():
                self.samples += 1
                self.lowest = free if self.lowest is None else min(self.lowest, free)


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


class Months:
    """The run: the board, how far its clock is ahead over all its boots,
    and what was seen on its card."""

    def __init__(self, board):
        self.board = board
        self.watch = FreeWatch(board.sdcard)
        self.ahead = 0          # board seconds run ahead so far, all boots
        self.base = 0           # of them, before this boot
        self.pulses = 0         # PIR edges asked for in this boot
        self.seen = set()       # every name seen on the card
        self.top = -1           # the highest number seen so far
        self.manual = set()     # manual snapshots made: never deleted
        self.lowest_free = None
        self.full_on = None     # the day the card first came down to its floor
        self.made = 0           # snapshots made, as the board counted them
        self.cuts = 0
        self.given_back = []    # KB, from the console of each boot

    def boot(self):
        board = self.board
        board.set_faults(jump_s=0)
        self.base = self.ahead
        self.pulses = 0
        board.env['SIM_CLOCK_AHEAD_S'] = str(self.ahead)   # the calendar goes on
        board.start()
        board.wait_frame()
        board.wait_for(lambda s: s.get('clips_ready'), timeout=60)
        self.watch.paused.clear()       # the mount check gave back what a cut left
        self.given_back += [int(kb) for kb in re.findall(
            r'sd: gave back (\d+) KB', board.output()[board.log_start:])]

    def run_day(self, cut=False):
        """A day run ahead, PIR edges spread over it (the clip was asked
        for before); cut: a power cut in its middle, the rest of it lost."""
        board = self.board
        target = self.ahead + DAY - self.base
        for i in range(PULSES):
            self.pulses += 1
            board.set_faults(jump_s=target, pir_pulses=self.pulses)
            time.sleep(0.03)
            if cut and i == PULSES // 2:
                self.cut(DAY)
                return
        self.ahead += DAY
        deadline = time.monotonic() + 60
        text = 'simulator: %d s ahead' % target
        while text not in board.output()[board.log_start:]:
            assert time.monotonic() < deadline, 'the board never got ' + text
            time.sleep(0.02)

    def cut(self, lost=0):
        """A power cut; the board boots again at once, `lost` seconds later
        on the calendar."""
        board = self.board
        try:
            self.made += board.status()['snapshot_count']
        except Exception:
            pass                # the cut came first
        self.watch.paused.set()         # clusters a cut leaves to no file count as used
        assert board.power_cut() == CUT_EXIT
        self.cuts += 1
        self.ahead += lost
        self.boot()
        self.look()

    def ask(self, ws, day):
        """What a user asks at the end of a day; (free heap, loop stall,
        listing s, saving s or None)."""
        board = self.board
        status = board.command(ws, cmd='status')['status']
        deadline = time.monotonic() + 60
        while status['recording'] is not None:      # a motion clip late in the day
            assert time.monotonic() < deadline, status['recording']
            time.sleep(0.05)
            status = board.command(ws, cmd='status')['status']
        self.made += status['snapshot_count']
        board.command(ws, cmd='reset')      # the loop monitor measures from here
        with board.http() as client:
            snaps, took_snaps = timed(lambda: client.get('/snaps'))
            clips, took_clips = timed(lambda: client.get('/clips'))
        assert snaps.status_code == 200 and clips.status_code == 200
        assert len(snaps.json()) > 0
        saving = None
        if day % MANUAL_EVERY == 0 or day in EARLY or day in LATE:
            reply, saving = timed(lambda: board.command(ws, cmd='snapshot_now'))
            assert reply['ok'], reply
            self.manual.add(reply['saved'].rsplit('/', 1)[1])
        status = board.command(ws, cmd='status')['status']
        self.made += status['snapshot_count']
        board.command(ws, cmd='reset')
        return status['free_heap'], status['loop_stall_ms'], took_snaps + took_clips, saving

    def look(self, day=None):
        """Read the card as a card reader does: no number used twice, none
        used again, no manual snapshot gone, the floor kept."""
        names = card_names(self.board.sdcard)
        new = {n: seq_of(n) for n in names if n not in self.seen}
        again = sorted(n for n, seq in new.items() if seq <= self.top)
        assert not again, 'a number used again: %s (highest before: %d)' % (again, self.top)
        seqs = [seq_of(n) for n in names]
        assert len(seqs) == len(set(seqs)), 'two files with one number'
        self.seen.update(new)
        self.top = max([self.top] + seqs)
        gone = self.manual - set(names)
        assert not gone, 'manual snapshots deleted: %s' % sorted(gone)
        for name, folder in names.items():
            assert folder == '%04d' % (seq_of(name) // 100), (name, folder)
        free = card_free(self.board.sdcard)
        self.lowest_free = free if self.lowest_free is None else min(free, self.lowest_free)
        if self.full_on is None and free < FLOOR + SLACK:
            self.full_on = day
        assert free >= FLOOR - SLACK, '%d bytes free, the floor is %d' % (free, FLOOR)
        return names


def test_ninety_days_of_a_busy_camera_on_a_small_card(make_board, tmp_path, still_frames):
    started = time.monotonic()
    board = make_board(config=config(), frames=still_frames,
                       sdcard=str(tmp_path / 'small.img'))
    board.env['SIM_SDCARD_SIZE'] = str(CARD)
    run = Months(board)
    run.boot()
    run.watch.start()
    heap, stall, listing, saving = {}, {}, {}, {}      # by day
    with board.ws() as ws:
        assert board.command(ws, cmd='record_start')['ok']
    for day in range(1, DAYS + 1):
        cut = CUTS.get(day)
        run.run_day(cut=cut == 'day')
        if cut == 'save':
            ws = board.ws().__enter__()         # left to the cut
            ws.send(json.dumps({'cmd': 'snapshot_now'}))
            time.sleep(0.02)
            run.cut()
        elif cut == 'clip':
            with board.ws() as ws:
                assert board.command(ws, cmd='record_start')['ok']
            time.sleep(0.5)
            run.cut()
        if cut:
            with board.ws() as ws:
                assert board.command(ws, cmd='record_start')['ok']
            continue
        with board.ws() as ws:
            heap[day], stall[day], listing[day], took = run.ask(ws, day)
            if took is not None:
                saving[day] = took
            run.look(day)
            # the next day's clip
            assert board.command(ws, cmd='record_start')['ok']
    # the last cut: in a clip, after three months
    time.sleep(0.5)
    run.cut()
    with board.ws() as ws:
        reply = board.command(ws, cmd='snapshot_now')
    assert reply['ok'], reply
    run.manual.add(reply['saved'].rsplit('/', 1)[1])
    names = run.look()
    run.watch.done.set()
    run.watch.join()
    board.stop()
    problems, orphans = fsck_problems(board.sdcard)
    assert not problems and not orphans, problems

    out = board.output()
    deleted_snaps = sum(int(n) for n in re.findall(r'deleted (\d+) motion snapshots', out))
    deleted_clips = sum(int(n) for n in re.findall(r'deleted (\d+) clips', out))

    def median(table, days):
        return statistics.median(table[d] for d in days)

    print('\n%d days, %d cuts, %.0f s: %d numbers taken, %d snapshots made (%d manual), '
          'retention deleted %d motion snapshots and %d clips; left on the card: '
          '%d snapshots, %d clips' % (
              run.ahead // DAY, run.cuts, time.monotonic() - started, run.top + 1, run.made,
              len(run.manual), deleted_snaps, deleted_clips,
              len([n for n in names if n.endswith('.jpg')]),
              len([n for n in names if n.endswith('.avi')])))
    print('free: down to the floor from day %s on; lowest at the days\' ends %d, in %d '
          'looks while the days ran %d, floor %d (%+d); cuts left %s KB to no file' % (
              run.full_on, run.lowest_free, run.watch.samples, run.watch.lowest, FLOOR,
              min(run.lowest_free, run.watch.lowest) - FLOOR, run.given_back))
    for what, table, unit in (('free heap', heap, 1), ('loop stall ms', stall, 1),
                              ('listing ms', listing, 1000), ('saving ms', saving, 1000)):
        print('%s: days %d-%d %s, days %d-%d %s' % (
            what, EARLY[0], EARLY[-1], [round(table[d] * unit) for d in EARLY],
            LATE[0], LATE[-1], [round(table[d] * unit) for d in LATE]))
    assert deleted_snaps > 0 and deleted_clips > 0, 'retention never had to run'
    assert run.watch.samples > 500
    assert run.watch.lowest >= FLOOR - SLACK, 'the card went %d bytes under its floor' % (
        FLOOR - run.watch.lowest)
    # medians, wide margins: other tests load the machine meanwhile
    assert abs(median(heap, LATE) - median(heap, EARLY)) <= 0.03 * median(heap, EARLY), \
        'the heap drifted'
    assert median(listing, LATE) <= 2 * median(listing, EARLY) + 0.1, 'listing slowed down'
    assert median(saving, LATE) <= 2 * median(saving, EARLY) + 0.1, 'saving slowed down'
    assert median(stall, LATE) <= 2 * median(stall, EARLY) + 100, 'the loop stalls longer'

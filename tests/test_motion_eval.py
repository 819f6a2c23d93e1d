"""Motion detection through the firmware on labelled scenes, a CI subset of
`make motion-eval`: the simulated camera plays each scene once into the
unchanged board, and the motion snapshots on the card (each the very frame
that confirmed its trigger) say when it triggered. Scored as the offline
evaluation scores: an episode is found by a trigger within [first, last + 1 s]."""
import concurrent.futures

import pytest

from tools.motion_eval import board as through_board
from tools.motion_eval import scenes

SENSITIVITY = 50
CASES = [('tuning', 'small'), ('heldout', 'small'),       # a person crossing
         ('heldout', 'lamp'),                             # lamp on, off, dimming
         ('heldout', 'foliage_masked')]                   # swaying leaves, masked


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """{(split, scene): evaluate_scene()} at sensitivity 50, four boards at once."""
    root = tmp_path_factory.mktemp('motion_eval')

    def one(case):
        split, name = case
        folder = str(root / split / name)
        scenes.render(name, scenes.SPLITS[split], folder)
        return case, through_board.evaluate_scene(folder, str(root / 'boards' / split / name),
                                                  (SENSITIVITY,))
    with concurrent.futures.ThreadPoolExecutor(len(CASES)) as pool:
        return dict(pool.map(one, CASES))


def scored(results, split, name):
    res = results[(split, name)]
    run = res['runs'][SENSITIVITY]
    # every trigger left its snapshot, and each is a frame of the scene
    assert run['unknown'] == 0
    assert len(run['starts']) == run['triggers'], run
    return res['board'][SENSITIVITY], run


@pytest.mark.parametrize('split', ['tuning', 'heldout'])
def test_a_person_crossing_is_found_within_a_second(results, split):
    score, run = scored(results, split, 'small')
    assert score['episodes'] == 1
    assert score['in_time'] == score['episodes'], (score, run['starts'])
    assert score['false'] == 0, run['starts']


def test_a_lamp_switched_on_off_and_dimmed_never_triggers(results):
    score, run = scored(results, 'heldout', 'lamp')
    assert run['triggers'] == 0, run['starts']
    assert score['false'] == 0


def test_masked_foliage_never_triggers_and_the_crossing_is_found(results):
    score, run = scored(results, 'heldout', 'foliage_masked')
    assert score['false'] == 0, run['starts']
    assert score['episodes'] == 1
    assert score['in_time'] == score['episodes'], (score, run['starts'])

"""pytest fixtures around the simulated board; the harness itself is
tools/sim/harness.py, shared with tools/bench.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.sim.harness import Board  # noqa: E402


@pytest.fixture
def make_board(tmp_path):
    boards = []

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

"""pytest fixtures around the simulated board; the harness itself is
tools/sim/harness.py, shared with tools/bench.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.sim.harness import Board  # noqa: E402
from broker import Broker, Listener  # noqa: E402  (tests/broker.py: mosquitto + paho)


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

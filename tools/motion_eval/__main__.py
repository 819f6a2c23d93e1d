"""python -m tools.motion_eval: every table (see offline.py), and the
synthetic scenes through the firmware on the simulated board (board.py)."""
from .board import main_all

raise SystemExit(main_all())

#!/usr/bin/env python3
"""python tools/motion_eval/run.py: every table (see offline.py and board.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from board import main_all  # noqa: E402

raise SystemExit(main_all())

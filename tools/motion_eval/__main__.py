"""python -m tools.motion_eval: every table (see offline.py)."""
from .offline import main

raise SystemExit(main())

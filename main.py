# Starts the dashboard app; boot.py has already brought the board up.
from firmware import board

board.main()

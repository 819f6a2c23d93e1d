# Simulator only, never goes onto a board: NTP that sets the simulated clock,
# or times out while the fault "ntp_fail" is on.
import time
import simctl

host = 'pool.ntp.org'
timeout = 1


def settime():
    if simctl.fault('ntp_fail'):
        raise OSError(110)      # ETIMEDOUT
    time.sim_set_clock()

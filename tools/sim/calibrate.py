"""Simulator only, never goes onto a board: how much slower the ESP32-CAM
is than this PC, measured in the same run (tools/simulate.py --board-speed).

The ratios and the published figures they come from:
- bytecode: pystone under the MicroPython unix port here (the best of five
  short runs, by CPU time, so that other work on this machine does not
  count), against an ESP32 at 240 MHz: 1.0k-1.7k pystones/s are
  reported for MicroPython on an ESP32 at 240 MHz, SPIRAM builds 10-25 %
  slower; we take 1,100 (the ESP32-CAM runs a SPIRAM build; the firmware
  sets 240 MHz, the port starts at 160).
- viper: compiled code, so this PC's clock against the ESP32's, times how
  many more simple integer instructions a cycle this core retires (3, an
  out-of-order x86-64) than the ESP32's in-order, single-issue LX6 with its
  PSRAM cache misses (0.75). This machine has no performance counters
  (perf stat: not supported), so the instructions-per-cycle figures are
  assumed, not measured; the clock is read from /proc/cpuinfo.
- GC: 80-286 ms are reported per collect of a PSRAM heap of about 1.2 MB
  live; we take 150 ms per 1.2 MB, scaled by the live heap at each collect.
- the event loop's own work per task step: measured here (asyncio steps that
  do nothing), scaled as bytecode.
"""
import glob
import os
import re
import subprocess

BOARD_PYSTONES = 1100           # ESP32 at 240 MHz, SPIRAM build (see above)
BOARD_MHZ = 240
HOST_IPC, BOARD_IPC = 3.0, 0.75  # simple integer code (viper): assumed, see above
GC_MS_PER_MB = 150 / 1.2        # 80-286 ms reported per collect of ~1.2 MB live PSRAM heap
HOST_PYSTONES_UNMEASURED = 180000   # this machine's figure, used only when no pystone.py is here
REALTIME = ['chrt', '-f', '1']

_STEP_CODE = """
import asyncio, time
async def spin(n):
    for i in range(n):
        await asyncio.sleep_ms(0)
best = 1e9
for run in range(3):
    t = time.ticks_us()
    asyncio.run(spin(5000))
    best = min(best, time.ticks_diff(time.ticks_us(), t) / 5000)
print(best)
"""


def realtime_prefix():
    """['chrt', '-f', '1'] where real-time priority is allowed (root), else []:
    without it this machine's load counts as board time."""
    try:
        subprocess.run(REALTIME + ['true'], check=True, capture_output=True)
        return list(REALTIME)
    except (OSError, subprocess.CalledProcessError):
        return []


_PASSES = 30000


def _cpu_s(cmd):
    """The user + system CPU seconds that running cmd took."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pystone_path():
    """A pystone.py from an installed Python's test suite, or None."""
    found = sorted(glob.glob('/root/.pyenv/versions/*/lib/python*/test/pystone.py')
                   + glob.glob('/usr/lib/python*/test/pystone.py'))
    return found[-1] if found else None


def host_mhz():
    with open('/proc/cpuinfo') as f:
        found = re.search(r'cpu MHz\s*:\s*([\d.]+)', f.read())
    return float(found.group(1)) if found else 2400.0


def calibrate(micropython):
    """{'pystones', 'bytecode', 'viper', 'gc_us_per_kb', 'step_us', 'realtime',
    'measured'} for this machine now."""
    prefix = realtime_prefix()
    path = pystone_path()
    pystones = 0
    if path:
        # CPU time, not the time pystone reads off the clock: on a shared
        # machine waiting for a core is not slowness (start-up taken off)
        start_up = min(_cpu_s(prefix + [micropython, path, '1']) for _ in range(3))
    step_us = 1e9
    # the best of five of each, taken in turns: this machine's load (and its
    # speed, which moves by 2x within minutes here) only slows either, and a
    # step measured in a slow minute beside a pystone of a fast one would
    # charge the board's every step too much (5.7 us against 3.0 once)
    for _ in range(5):
        if path:
            took = _cpu_s(prefix + [micropython, path, str(_PASSES)]) - start_up
            pystones = max(pystones, _PASSES / max(took, 1e-3))
        out = subprocess.run(prefix + [micropython, '-c', _STEP_CODE], capture_output=True,
                             text=True, check=True).stdout
        step_us = min(step_us, float(out.split()[-1]))
    return {'pystones': pystones or HOST_PYSTONES_UNMEASURED,
            'bytecode': (pystones or HOST_PYSTONES_UNMEASURED) / BOARD_PYSTONES,
            'viper': host_mhz() / BOARD_MHZ * HOST_IPC / BOARD_IPC,
            'gc_us_per_kb': GC_MS_PER_MB * 1000 / 1024,
            'step_us': step_us,
            'realtime': bool(prefix), 'measured': bool(pystones)}


def compiled_functions(repo):
    """'module:name+name;...' for every @micropython.viper or .native function
    in the firmware's sources: the board-speed model scales their time by the
    viper ratio, not the bytecode one (read from the code, so none is missed)."""
    import ast
    found = []
    for path in sorted(glob.glob(os.path.join(repo, 'firmware', '*.py'))):
        tree = ast.parse(open(path).read())
        names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                 and any(ast.unparse(d) in ('micropython.viper', 'micropython.native')
                         for d in node.decorator_list)]
        if names:
            module = 'firmware.' + os.path.basename(path)[:-3]
            found.append(module + ':' + '+'.join(names))
    return ';'.join(found)


def cost_value(c):
    """The SIM_BOARD_COST the simulated board reads (tools/sim/boardspeed.py)."""
    return '%.1f,%.1f,%.1f,%.2f' % (c['bytecode'], c['viper'], c['gc_us_per_kb'], c['step_us'])


def describe(c):
    """The lines simulate.py prints at start."""
    lines = ['board speed: 1/%d of this PC (pystone %.0fk/s here%s, %d/s on an ESP32 at %d MHz, '
             'SPIRAM)' % (round(c['bytecode']), c['pystones'] / 1000,
                          '' if c['measured'] else ' (not measured: no pystone.py)',
                          BOARD_PYSTONES, BOARD_MHZ),
             'board speed: viper 1/%d, GC %.0f ms per MB live, %.1f us of event loop per step '
             'here' % (round(c['viper']), c['gc_us_per_kb'] * 1024 / 1000, c['step_us'])]
    if not c['realtime']:
        lines.append('board speed: no real-time priority here: this machine\'s load counts '
                     'as board time')
    return lines


def from_env():
    """A calibration handed down in SIM_BOARD_CALIBRATION (the harness measures
    once for all its boards), or None."""
    text = os.environ.get('SIM_BOARD_CALIBRATION')
    if not text:
        return None
    import json
    return json.loads(text)

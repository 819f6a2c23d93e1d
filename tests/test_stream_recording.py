"""Recording /stream with ffmpeg as the README writes it: the file plays at
the speed it was filmed (ffprobe's duration against the wall-clock time)."""
import subprocess
import time

import pytest

RECORD_S = 6


def _duration(path):
    out = subprocess.run(['ffprobe', '-v', 'error', '-show_entries', 'format=duration',
                          '-of', 'default=nw=1:nk=1', str(path)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.parametrize('name, codec', [('out.mkv', ['-c', 'copy']),
                                         ('out.mp4', ['-vf', 'fps=10', '-c:v', 'libx264',
                                                      '-preset', 'ultrafast'])])
def test_readme_recording_plays_at_the_speed_it_was_filmed(board, tmp_path, name, codec):
    out = tmp_path / name
    url = board.url + '/stream?token=' + board.token
    # the README's recipe, with its -t of wall-clock time
    ffmpeg = subprocess.Popen(['ffmpeg', '-nostdin', '-v', 'error',
                               '-use_wallclock_as_timestamps', '1', '-i', url] + codec
                              + ['-t', str(RECORD_S), str(out)])
    # filming starts when ffmpeg has probed the stream and opens the file
    # (its start-up took 1-3 s beside two CPU hogs)
    deadline = time.monotonic() + 30
    while not out.exists() and ffmpeg.poll() is None:
        assert time.monotonic() < deadline, 'ffmpeg never started writing'
        time.sleep(0.02)
    started = time.monotonic()
    assert ffmpeg.wait(timeout=60) == 0
    wall = time.monotonic() - started
    duration = _duration(out)
    # the file plays as long as ffmpeg filmed, and that is the minute, here
    # seconds, the recipe asked for
    assert wall - 1 <= duration <= wall + 0.5, (duration, wall)
    assert RECORD_S * 0.8 <= duration <= RECORD_S * 1.1, (duration, wall)

"""Make real_labels.json once, with OpenCV's MOG2 background subtractor as
the reference. Needs cv2 + numpy, which the project's venv does not have:

    python3 -m venv /tmp/cvenv && /tmp/cvenv/bin/pip install opencv-python-headless numpy
    /tmp/cvenv/bin/python tools/motion_eval/label_real.py

Per clip: the same frames the evaluation extracts (real.extract: ffmpeg,
10 fps, scaled), read with cv2.imread; MOG2(history=300, varThreshold=25,
detectShadows=True) with its default learning rate; foreground = mask 255
(shadows, 127, dropped), opened with a 3x3 ellipse and closed with a 7x7 one;
a frame is 'present' when its largest 8-connected foreground blob covers at
least 1 % of the frame. The first 3 s (MOG2 still learning) are 0 and counted
as lead-in. Episodes are runs of presence, gaps of 1 s or less merged, runs
shorter than 0.3 s dropped.
"""
import json
import os
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import real  # noqa: E402

MIN_BLOB = 0.01
LEAD = 3 * real.FPS


def label(folder, names):
    mog = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=25, detectShadows=True)
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    k7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    present, largest = [], []
    for i, n in enumerate(names):
        img = cv2.imread(os.path.join(folder, n))
        fg = mog.apply(img)
        fg = np.where(fg == 255, 255, 0).astype(np.uint8)
        fg = cv2.morphologyEx(cv2.morphologyEx(fg, cv2.MORPH_OPEN, k3), cv2.MORPH_CLOSE, k7)
        count, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        big = max([int(s[cv2.CC_STAT_AREA]) for s in stats[1:]], default=0) / fg.size
        largest.append(round(big, 4))
        present.append(1 if i >= LEAD and big >= MIN_BLOB else 0)
    runs, start = [], None
    for i, v in enumerate(present + [0]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if runs and start - runs[-1][1] <= real.FPS:
                runs[-1][1] = i - 1
            else:
                runs.append([start, i - 1])
            start = None
    episodes = [r for r in runs if r[1] - r[0] + 1 >= 3]
    present = [0] * len(present)
    for a, b in episodes:
        present[a:b + 1] = [1] * (b - a + 1)
    return present, episodes, largest


def main():
    out = {}
    for name in real.CLIPS:
        with tempfile.TemporaryDirectory() as tmp:
            names = real.extract(name, tmp)
            present, episodes, largest = label(tmp, names)
        _, w, h = real.CLIPS[name]
        out[name] = {'scene': name, 'fps': real.FPS, 'width': w, 'height': h,
                     'frames': len(names), 'present': present, 'episodes': episodes,
                     'mask': None, 'largest_blob': largest,
                     'reference': 'OpenCV %s MOG2, see label_real.py' % cv2.__version__}
        print(name, len(names), 'frames, episodes', episodes)
    with open(real.LABELS, 'w') as f:
        json.dump(out, f, separators=(',', ':'))


if __name__ == '__main__':
    main()

"""Real footage for the motion evaluation: short clips from Debian's
opencv-doc package (apt-get install opencv-doc ffmpeg), cut into JPEG frames
at 10 fps at eval time; labels come from real_labels.json (made once by
label_real.py, see there: OpenCV MOG2 as the reference). Nothing binary is
committed.
"""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = '/usr/share/doc/opencv-doc/examples/data'
LABELS = os.path.join(HERE, 'real_labels.json')
FPS = 10
# clip -> output size: a hand waved in front of a webcam looking at a tree
# (320x240, 15 fps source), and pedestrians in a hall (768x576, 10 fps)
CLIPS = {'tree': ('tree.avi', 320, 240), 'vtest': ('vtest.avi', 640, 480)}


def available():
    """Why the real clips cannot be used, or None when they can."""
    if not shutil.which('ffmpeg'):
        return 'ffmpeg missing (apt-get install ffmpeg)'
    for clip, _, _ in CLIPS.values():
        if not os.path.exists(os.path.join(DATA, clip)):
            return '%s missing (apt-get install opencv-doc)' % clip
    return None


def extract(name, out):
    """The clip as frame-NNNN.jpg at 10 fps in out/ (replaced)."""
    clip, w, h = CLIPS[name]
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):
        if n.endswith('.jpg'):
            os.remove(os.path.join(out, n))
    subprocess.run(['ffmpeg', '-v', 'error', '-nostdin', '-i', os.path.join(DATA, clip),
                    '-vf', 'fps=%d,scale=%d:%d' % (FPS, w, h), '-q:v', '4',
                    os.path.join(out, 'frame-%04d.jpg')], check=True)
    return sorted(n for n in os.listdir(out) if n.endswith('.jpg'))


def prepare(name, folder, write_maps):
    """Frames, labels.json and maps.bin for one clip; returns the folder."""
    with open(LABELS) as f:
        labels = json.load(f)[name]
    stamp = os.path.join(folder, '.stamp')
    if not os.path.exists(stamp):
        names = extract(name, folder)
        if len(names) != labels['frames']:
            raise RuntimeError('%s: %d frames, labels have %d' % (name, len(names),
                                                                labels['frames']))
        write_maps(folder, os.path.join(folder, 'maps.bin'))
        open(stamp, 'w').close()
    with open(os.path.join(folder, 'labels.json'), 'w') as f:
        json.dump(labels, f)
    return folder

"""Motion detector evaluation: synthetic scenes with exact labels, real clips
with reference labels, and the offline loop that scores
firmware/motiondetect.py under MicroPython. Run: python -m tools.motion_eval"""

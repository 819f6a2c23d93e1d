#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing:
# mtools (read the card image), dosfstools (fsck.vfat), chromium (browser
# tests, at /usr/bin/chromium where they look), ffmpeg and cjpeg (reference
# JPEGs for the decoder), mosquitto (the MQTT broker of the MQTT tests),
# GStreamer's rtspsrc (the second RTSP client of the RTSP tests). `system-deps.sh motion-eval` adds opencv-doc (the
# real clips of `make motion-eval`; 270 MB, so not for `make test`).
set -euo pipefail
need=()
command -v mdir >/dev/null 2>&1 || need+=(mtools)
command -v fsck.vfat >/dev/null 2>&1 || [ -x /usr/sbin/fsck.vfat ] || need+=(dosfstools)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v cjpeg >/dev/null 2>&1 || need+=(libjpeg-turbo-progs)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v gst-launch-1.0 >/dev/null 2>&1 || need+=(gstreamer1.0-tools)
gst-inspect-1.0 rtspsrc >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-good)
if [ "${1:-}" = motion-eval ]; then
  [ -d /usr/share/doc/opencv-doc/examples/data ] || need+=(opencv-doc)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "Please install: ${need[*]}" >&2
  exit 1
fi
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
wait_lock=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${wait_lock[@]}" update -qq
$SUDO apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null

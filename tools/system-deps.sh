#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing:
# mtools (read the card image), dosfstools (fsck.vfat), chromium (browser tests).
set -euo pipefail
need=()
command -v mdir >/dev/null 2>&1 || need+=(mtools)
command -v fsck.vfat >/dev/null 2>&1 || [ -x /usr/sbin/fsck.vfat ] || need+=(dosfstools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "Please install: ${need[*]}" >&2
  exit 1
fi
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# Usage: tools/install_debian.sh
# Installs the Debian packages the project needs (espeak-ng, sctk, sox, ffmpeg, libsndfile1) when they
# are missing. Needs root for apt-get; a non-root user without them gets the command to run.
set -euo pipefail
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ -x /usr/lib/sctk/bin/sclite ] || command -v sclite >/dev/null 2>&1 || need+=(sctk)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
ldconfig -p 2>/dev/null | grep -q libsndfile || need+=(libsndfile1)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${need[*]}. Run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"

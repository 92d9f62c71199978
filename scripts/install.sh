#!/usr/bin/env bash
# Install tristudio on a fresh Debian 12 / Python 3.11 machine (no GPU needed): the GL/X packages the viewer and its
# tests use (when apt is available and we may use it), then torch (the CPU wheel, pinned first so no resolver step
# pulls CUDA wheels), then tristudio itself (editable) with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
  if ! command -v Xvfb >/dev/null 2>&1 || ! ldconfig -p | grep -q libGLX_mesa; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q xvfb xauth libgl1 libglx-mesa0 libgl1-mesa-dri libegl1 libegl-mesa0
  fi
fi

PY=${PYTHON:-python3}
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e ".[test]" torch==2.13.0
echo "tristudio installed: run 'tristudio' (the viewer) or 'tristudio --help'."

#!/usr/bin/env bash
# The test command (README): the whole default suite, GUI tests under a virtual X server when no display exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1280x800x24" python3 -m pytest -q "$@"
fi
exec python3 -m pytest -q "$@"

#!/usr/bin/env bash
# tools/run.sh: build heartbeat and run the live demo of the monitor:
# simulated agents beat, go quiet, recover, report an error and time out,
# and every signal is printed as it fires. Installs missing Debian build
# dependencies first. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh build
[ -d build ] || meson setup build
meson compile -C build
exec build/src/demo/heartbeat-demo "$@"

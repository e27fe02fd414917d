#!/usr/bin/env bash
# tools/run.sh: build heartbeatd and run it on a private session bus, with
# the built-in default configuration and its state under build/run/.
# Installs missing Debian build dependencies first.
#
# From another terminal, talk to it with the address it prints, e.g.:
#   export DBUS_SESSION_BUS_ADDRESS=unix:path=$PWD/build/run/bus
#   gdbus call --session --dest org.heartbeat.Monitor1 \
#     --object-path /org/heartbeat/Monitor1 --method org.heartbeat.Monitor1.GetStatus
#
# Extra arguments go to heartbeatd (see build/src/daemon/heartbeatd --help).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh run
[ -d build ] || meson setup build
meson compile -C build

run_dir="$PWD/build/run"
mkdir -p "$run_dir/state"

# One demo at a time: a second one would take over build/run/bus. The lock
# is held by this script and inherited by dbus-daemon and heartbeatd, so it
# stays taken until all of them have exited.
exec 9>"$run_dir/run.lock"
if ! flock -n 9; then
  echo "tools/run.sh: already running (build/run is in use); stop the other one first" >&2
  exit 1
fi

source tools/private-bus.sh
hb_private_bus "$run_dir"
trap 'kill $HB_BUS_PID 2>/dev/null || true' EXIT

export DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS"
echo "heartbeatd: private session bus at $DBUS_SESSION_BUS_ADDRESS (Ctrl-C stops both)"
build/src/daemon/heartbeatd --session --state-dir "$run_dir/state" "$@"

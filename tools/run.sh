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
rm -f "$run_dir/bus"

cat > "$run_dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$run_dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF

dbus-daemon --config-file="$run_dir/bus.conf" --nofork --nopidfile &
bus_pid=$!
trap 'kill $bus_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S "$run_dir/bus" ] && break; sleep 0.1; done

export DBUS_SESSION_BUS_ADDRESS="unix:path=$run_dir/bus"
echo "heartbeatd: private session bus at $DBUS_SESSION_BUS_ADDRESS (Ctrl-C stops both)"
build/src/daemon/heartbeatd --session --state-dir "$run_dir/state" "$@"

#!/usr/bin/env bash
# bench/dbus-bench.sh: run build/bench/dbus-bench against the built
# heartbeatd on a private bus; both are started here and stopped by PID.
# Arguments go to dbus-bench (see build/bench/dbus-bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."

meson compile -C build >/dev/null
dir=$(mktemp -d /tmp/hb-dbus-bench.XXXXXX)
cat > "$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF

pids=()
cleanup () {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/bus" ] && break; sleep 0.05; done

DBUS_SESSION_BUS_ADDRESS="unix:path=$dir/bus" \
  build/src/daemon/heartbeatd --session --state-dir "$dir/state" 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do
  timeout 5 gdbus call --address "unix:path=$dir/bus" --dest org.freedesktop.DBus \
    --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner \
    org.heartbeat.Monitor1 2>/dev/null | grep -q true && break
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 1; }
  sleep 0.05
done

build/bench/dbus-bench "$@" "unix:path=$dir/bus"

#!/usr/bin/env bash
# bench/punctuality.sh: run build/bench/punctuality against the built
# heartbeatd on a private bus; both are started here and stopped by PID.
# Arguments go to punctuality (see build/bench/punctuality --help).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
bench_start punctuality

DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" \
  build/src/daemon/heartbeatd --session --state-dir "$dir/state" --http-port 0 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do
  timeout 5 gdbus call --address "$HB_BUS_ADDRESS" --dest org.freedesktop.DBus \
    --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner \
    org.heartbeat.Monitor1 2>/dev/null | grep -q true && break
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 1; }
  sleep 0.05
done

build/bench/punctuality "$@" "$HB_BUS_ADDRESS"

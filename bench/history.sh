#!/usr/bin/env bash
# bench/history.sh: GET /v1/history at 2,000 agents x 128 state changes,
# read whole by 4 clients at once in a loop, with GetStatus (D-Bus) and
# GET /health latency measured meanwhile (bench/history.py). The bus and
# the daemon are started here and stopped by PID.
#
#   HB_BUILD_DIR        the build directory (build)
#   HB_HEARTBEATD       the daemon to measure ($HB_BUILD_DIR/src/daemon/heartbeatd;
#                       another tree's, to compare)
#   HB_HISTORY_AGENTS, HB_HISTORY_ENTRIES, HB_HISTORY_SECONDS,
#   HB_HISTORY_WALKERS  see bench/history.py (2000, 128, 20, 4)
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
build=${HB_BUILD_DIR:-build}
heartbeatd=${HB_HEARTBEATD:-$build/src/daemon/heartbeatd}
[ -n "${HB_HEARTBEATD:-}" ] || meson compile -C "$build" src/daemon/heartbeatd >/dev/null

dir=$(mktemp -d /tmp/hb-history.XXXXXX)
pids=()
trap bench_cleanup EXIT
source tools/private-bus.sh
hb_private_bus "$dir"
pids+=("$HB_BUS_PID")

# agents that stay healthy between beats, and room for 2,000 of one uid
cat >"$dir/heartbeatd.conf" <<CONF
[monitor]
check-interval=1s
stale-threshold=1h
timeout-threshold=1d

[limits]
agents-per-uid=100000
CONF

port=$(free_port)
DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" \
  "$heartbeatd" --session --config "$dir/heartbeatd.conf" --state-dir "$dir/state" \
  --http-port "$port" 2>"$dir/daemon.log" &
daemon=$!
pids+=("$daemon")
wait_port "$port"
echo "heartbeatd: $heartbeatd"
/usr/bin/python3 bench/history.py "$HB_BUS_ADDRESS" "$port" "$daemon"

#!/usr/bin/env bash
# bench/http-bench.sh: POST /heartbeat with wrk against heartbeatd, and in
# the same run against bench/http-minimal (a libsoup server doing nothing
# but parse the body and answer): the ratio is heartbeatd's own cost.
#   bash bench/http-bench.sh [SECONDS]
# ($HB_BUILD_DIR names the build directory, default build: see bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
command -v wrk >/dev/null || { echo "http-bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
source bench/lib.sh
bench_start http-bench

daemon_port=$(free_port)
# the wrk script beats 2,000 run_ids; HTTP's agents count as one uid
printf '[limits]\nagents-per-uid=0\n' > "$dir/bench.conf"
DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" G_MESSAGES_DEBUG= \
  "$build"/src/daemon/heartbeatd --session --config "$dir/bench.conf" --state-dir "$dir/state" \
  --http-port "$daemon_port" \
  >/dev/null 2>"$dir/daemon.log" &
pids+=($!)
minimal_port=$(free_port)
"$build"/bench/http-minimal "$minimal_port" &
pids+=($!)
wait_port "$daemon_port"
wait_port "$minimal_port"

run () { wrk -t2 -c32 -d"${seconds}s" -s bench/http-bench.lua "http://127.0.0.1:$1" | tail -1; }
# a first, short round registers the agents (each registration is written
# to disk before its reply); the measured round then finds them all
wrk -t2 -c32 -d6s -s bench/http-bench.lua "http://127.0.0.1:$daemon_port" >/dev/null
heartbeatd=$(run "$daemon_port")
minimal=$(run "$minimal_port")
echo "heartbeatd   POST /heartbeat: $heartbeatd"
echo "http-minimal POST /heartbeat: $minimal"
/usr/bin/python3 - "$heartbeatd" "$minimal" <<'PY'
import sys
a, b = (float(s.split()[1]) for s in sys.argv[1:3])
print(f"heartbeatd / http-minimal: {a / b:.2f} (target >= 0.85)")
PY

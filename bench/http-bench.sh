#!/usr/bin/env bash
# bench/http-bench.sh: POST /heartbeat with wrk against heartbeatd, and in
# the same run against bench/http-minimal (a libsoup server doing nothing
# but parse the body and answer): the ratio is heartbeatd's own cost.
#   bash bench/http-bench.sh [SECONDS] [ROUNDS]
# Each round runs wrk for SECONDS (default 4) against heartbeatd, then
# against http-minimal; ROUNDS (default 5) such pairs. The ratio of each
# pair is taken within seconds of each other, so what the machine does
# meanwhile (another VM, a timer) moves both sides of it: the figure is
# the median of the pairs' ratios (the ratio of the totals is printed
# too).
# ($HB_BUILD_DIR names the build directory, default build: see bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-4}
rounds=${2:-5}
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
# to disk before its reply); the measured rounds then find them all
wrk -t2 -c32 -d6s -s bench/http-bench.lua "http://127.0.0.1:$daemon_port" >/dev/null
wrk -t2 -c32 -d2s -s bench/http-bench.lua "http://127.0.0.1:$minimal_port" >/dev/null
for round in $(seq "$rounds"); do
  heartbeatd=$(run "$daemon_port")
  minimal=$(run "$minimal_port")
  echo "round $round heartbeatd   POST /heartbeat: $heartbeatd"
  echo "round $round http-minimal POST /heartbeat: $minimal"
done | tee "$dir/rounds"
/usr/bin/python3 - "$dir/rounds" <<'PY'
import statistics
import sys

rates = {"heartbeatd": [], "http-minimal": []}
for line in open(sys.argv[1]):
    words = line.split()
    rates[words[2]].append(float(words[words.index("requests/s") + 1]))
a, b = rates["heartbeatd"], rates["http-minimal"]
ratios = [x / y for x, y in zip(a, b)]
print("pairs: " + " ".join(f"{r:.2f}" for r in ratios))
print(f"totals: heartbeatd {statistics.mean(a):.0f} requests/s, http-minimal {statistics.mean(b):.0f}; "
      f"ratio {sum(a) / sum(b):.2f}")
print(f"heartbeatd / http-minimal: {statistics.median(ratios):.2f} (median of {len(ratios)} pairs; target >= 0.85)")
PY

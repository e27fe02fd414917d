#!/usr/bin/env bash
# bench/alerts.sh: the alert attacks of issue 25 against the built
# heartbeatd on a private bus, measured by bench/alerts.py: exec= programs
# that leave a child behind, one that writes without end, a webhook
# receiver whose reply never ends, and one that answers 302. GetStatus
# latency, RSS, fds and what arrived are printed; nothing is asserted
# (the tests in tests/integration/test-alerts.c assert the outcomes).
# Usage: bash bench/alerts.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

source bench/lib.sh
bench_start alerts
[ "$build" = build ] || meson compile -C "$build" >/dev/null

port=$(free_port)    # the receivers (bench/alerts.py)
cat >"$dir/fork.sh" <<'SCRIPT'
#!/bin/sh
sleep 900 &
echo $! >> "$HB_BENCH_DIR/children"
exit 0
SCRIPT
cat >"$dir/spew.sh" <<'SCRIPT'
#!/bin/sh
exec yes "the same line, again and again"
SCRIPT
chmod +x "$dir/fork.sh" "$dir/spew.sh"
cat >"$dir/heartbeatd.conf" <<CONF
[alert:forking]
events=stale
agents=fork-*
exec=$dir/fork.sh
timeout=2s

[alert:hook]
events=stale
agents=fork-*
webhook=http://127.0.0.1:$port/ok

[alert:spew]
events=stale
agents=spew-*
exec=$dir/spew.sh
timeout=2s

[alert:endless]
events=stale
agents=endless-*
webhook=http://127.0.0.1:$port/endless
timeout=10s
retries=1

[alert:moved]
events=stale
agents=moved-*
webhook=http://127.0.0.1:$port/moved
retries=1
CONF
export HB_BENCH_DIR=$dir
DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" HB_BENCH_DIR="$dir" \
  "$build"/src/daemon/heartbeatd --session --state-dir "$dir/state" --config "$dir/heartbeatd.conf" \
  --http-port 0 2>"$dir/daemon.log" &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do
  timeout 5 gdbus call --address "$HB_BUS_ADDRESS" --dest org.freedesktop.DBus \
    --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner \
    org.heartbeat.Monitor1 2>/dev/null | grep -q true && break
  sleep 0.05
done
/usr/bin/python3 bench/alerts.py "$HB_BUS_ADDRESS" "$port" "$daemon" "$dir"
# what the forking programs left behind, killed here whatever happened
[ -f "$dir/children" ] && xargs -r kill -9 <"$dir/children" 2>/dev/null || true
echo "daemon log: $(wc -l <"$dir/daemon.log") lines, $(wc -c <"$dir/daemon.log") bytes; the longest $(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$dir/daemon.log") bytes"
grep -E "302|dropp|too long|gave up|giving up" "$dir/daemon.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -n 8 || true

#!/usr/bin/env bash
# bench/hostile.sh: the attacks of issue 20 against the built heartbeatd on
# a private bus, with GetStatus and GET /health latency and RSS measured
# meanwhile (bench/hostile.py). Both are started here and stopped by PID.
# HB_ATTACK_SECONDS (20) is how long each attack lasts.
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
bench_start hostile

port=$(free_port)
start_heartbeatd --http-port "$port"
wait_port "$port"
# the D-Bus flood: test-faults sends the messages its faults/undecodable-flood
# test sends (variants nested past GDBus's limit, which dbus-daemon forwards)
cat >"$dir/garbage.sh" <<SENDER
#!/bin/sh
exec "$PWD/build/tests/integration/test-faults" --send-undecodable "\$1" "\$2" "\$3"
SENDER
chmod +x "$dir/garbage.sh"
HB_GARBAGE_SENDER=${HB_GARBAGE_SENDER:-$dir/garbage.sh} \
  /usr/bin/python3 bench/hostile.py "$HB_BUS_ADDRESS" "$port" "$daemon"
echo "daemon log:"; grep -E "Dropped|Lost|cannot own|Waiting|connecting" "$dir/daemon.log" | tail -n 5 || true

#!/usr/bin/env bash
# bench/dbus-bench.sh: run build/bench/dbus-bench against the built
# heartbeatd on a private bus; both are started here and stopped by PID.
# Arguments go to dbus-bench (see build/bench/dbus-bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
bench_start dbus-bench

start_heartbeatd --http-port 0

build/bench/dbus-bench "$@" "$HB_BUS_ADDRESS"

#!/usr/bin/env bash
# bench/punctuality.sh: run build/bench/punctuality against the built
# heartbeatd on a private bus; both are started here and stopped by PID.
# Arguments go to punctuality (see build/bench/punctuality --help).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
bench_start punctuality

start_heartbeatd --http-port 0

build/bench/punctuality "$@" "$HB_BUS_ADDRESS"

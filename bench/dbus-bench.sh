#!/usr/bin/env bash
# bench/dbus-bench.sh: run dbus-bench against the built heartbeatd on a
# private bus; both are started here and stopped by PID.
#
#   bash bench/dbus-bench.sh [--build DIR] [ARG...]
#       calls per second of Beat and of Peer.Ping on the same bus (ARGs go
#       to dbus-bench, see DIR/bench/dbus-bench --help)
#   bash bench/dbus-bench.sh [--build DIR] --callgrind N [--status]
#       instructions the daemon spends per Beat and per Peer.Ping, under
#       callgrind: the daemon's count over a window of N calls and over one
#       of 2N (each one dbus-bench run, with its connection, registration
#       and warm-up), the difference divided by N. N is at least 2000 (the
#       warm-up is then the same in both windows).
#   bash bench/dbus-bench.sh [--build DIR] --cpu N [--status]
#       CPU time (user + system, from /proc) the daemon spends per Beat and
#       per Peer.Ping, over windows of N and 2N calls as above: what a
#       busy machine's wall clock hides, wake-ups and system calls included.
#
# DIR is the build directory (default: build). The daemon inherits the
# environment, so HB_DBUS_FAST_BEAT=0 turns its fast Beat path off.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
callgrind=0
cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --build=*) build=${1#--build=}; shift ;;
    --callgrind) callgrind=$2; shift 2 ;;
    --callgrind=*) callgrind=${1#--callgrind=}; shift ;;
    --cpu) cpu=$2; shift 2 ;;
    --cpu=*) cpu=${1#--cpu=}; shift ;;
    *) break ;;
  esac
done

meson compile -C "$build" >/dev/null
dir=$(mktemp -d /tmp/hb-dbus-bench.XXXXXX)
pids=()
cleanup () {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
source tools/private-bus.sh
hb_private_bus "$dir"
pids+=("$HB_BUS_PID")

wrapper=()
if [ "$callgrind" -gt 0 ]; then
  if [ "$callgrind" -lt 2000 ]; then echo "--callgrind: N must be at least 2000" >&2; exit 2; fi
  wrapper=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" --dump-instr=no)
fi

DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" \
  "${wrapper[@]}" "$build/src/daemon/heartbeatd" --session --state-dir "$dir/state" --http-port 0 \
  2>"$dir/daemon.log" &
daemon=$!
pids+=("$daemon")
for _ in $(seq 600); do
  timeout 5 gdbus call --address "$HB_BUS_ADDRESS" --dest org.freedesktop.DBus \
    --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner \
    org.heartbeat.Monitor1 2>/dev/null | grep -q true && break
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 1; }
  sleep 0.1
done

if [ "$cpu" -gt 0 ]; then
  if [ "$cpu" -lt 2000 ]; then echo "--cpu: N must be at least 2000" >&2; exit 2; fi
  hz=$(getconf CLK_TCK)
  # the daemon's user + system time so far, in clock ticks
  ticks () { awk '{ print $14 + $15 }' "/proc/$daemon/stat"; }
  cpu_window () {
    local kind=$1 n=$2 before
    shift 2
    before=$(ticks)
    "$build/bench/dbus-bench" --only "$kind" --calls "$n" --rounds 1 "$@" "$HB_BUS_ADDRESS" >/dev/null
    echo $(( $(ticks) - before ))
  }
  for kind in beat ping; do
    one=$(cpu_window "$kind" "$cpu" "$@")
    two=$(cpu_window "$kind" $((2 * cpu)) "$@")
    awk -v k="$kind" -v one="$one" -v two="$two" -v n="$cpu" -v hz="$hz" 'BEGIN {
      printf "dbus-%s-cpu %.2f us per call (window %d: %d ticks, window %d: %d ticks, %d ticks/s)\n",
             k, (two - one) * 1e6 / hz / n, n, one, 2 * n, two, hz }'
  done
  exit 0
fi

if [ "$callgrind" -eq 0 ]; then
  "$build/bench/dbus-bench" "$@" "$HB_BUS_ADDRESS"
  exit 0
fi

# The instructions the daemon executed (all threads) while one dbus-bench
# run made N calls of KIND.
window () {
  local kind=$1 n=$2 dump
  shift 2
  callgrind_control -z "$daemon" >/dev/null 2>&1
  "$build/bench/dbus-bench" --only "$kind" --calls "$n" --rounds 1 "$@" "$HB_BUS_ADDRESS" >/dev/null
  rm -f "$dir"/callgrind.out.*
  callgrind_control -d "$daemon" >/dev/null 2>&1
  dump=$(ls "$dir"/callgrind.out.* | head -n 1)
  awk '/^(summary|totals):/ { print $2; exit }' "$dump"
}

for kind in beat ping; do
  one=$(window "$kind" "$callgrind" "${@}")
  two=$(window "$kind" $((2 * callgrind)) "${@}")
  echo "dbus-$kind-instructions $(( (two - one) / callgrind )) per call (window $callgrind: $one, window $((2 * callgrind)): $two)"
done

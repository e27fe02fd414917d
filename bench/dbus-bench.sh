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
#       busy machine's wall clock hides, wake-ups and system calls included;
#       and the same of dbus-daemon and of the client, dbus-bench, since on
#       a machine with fewer cores than busy processes the calls per second
#       of either kind are what all three spend per call.
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
  # a process's user + system time so far, in clock ticks
  ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
  # the user + system time of this shell's children so far, in seconds,
  # from bash's times (run here: in a command substitution it would be
  # the substitution's children)
  children () { times > "$dir/times"; awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$dir/times"; }
  # "DAEMON BUS CLIENT": what each spent on one window of N calls, the
  # daemon and the bus in ticks, the client (dbus-bench) in seconds
  cpu_window () {
    local kind=$1 n=$2 daemon0 bus0
    shift 2
    daemon0=$(ticks "$daemon")
    bus0=$(ticks "$HB_BUS_PID")
    children > "$dir/client0"
    "$build/bench/dbus-bench" --only "$kind" --calls "$n" --rounds 1 "$@" "$HB_BUS_ADDRESS" >/dev/null
    children > "$dir/client1"
    echo $(( $(ticks "$daemon") - daemon0 )) $(( $(ticks "$HB_BUS_PID") - bus0 )) \
      "$(awk 'NR == FNR { a = $1; next } { print $1 - a }' "$dir/client0" "$dir/client1")"
  }
  for kind in beat ping; do
    read -r d1 b1 c1 < <(cpu_window "$kind" "$cpu" "$@")
    read -r d2 b2 c2 < <(cpu_window "$kind" $((2 * cpu)) "$@")
    awk -v k="$kind" -v d1="$d1" -v d2="$d2" -v b1="$b1" -v b2="$b2" -v c1="$c1" -v c2="$c2" \
        -v n="$cpu" -v hz="$hz" 'BEGIN {
      printf "dbus-%s-cpu %.2f us per call (window %d: %d ticks, window %d: %d ticks, %d ticks/s)\n",
             k, (d2 - d1) * 1e6 / hz / n, n, d1, 2 * n, d2, hz
      printf "dbus-%s-cpu-bus %.2f us per call (dbus-daemon)\n", k, (b2 - b1) * 1e6 / hz / n
      printf "dbus-%s-cpu-client %.2f us per call (dbus-bench)\n", k, (c2 - c1) * 1e6 / n }'
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

#!/usr/bin/env bash
# bench/state-bench.sh: run build/bench/state-bench on a private bus. The
# bench starts, restarts and stops heartbeatd itself (it times its start-up
# and reads its /proc/PID/io); the bus, the bench and the daemon are
# stopped here by PID on exit. Arguments go to state-bench (see
# build/bench/state-bench --help); a quick run:
#   bash bench/state-bench.sh --sizes 100,1000 --calls 200 --window 40
# The work directory is made in $TMPDIR, else /var/tmp: write_bytes counts
# nothing on tmpfs, so it should be on a disk. HB_BUILD names the build
# directory (default build):
#   HB_BUILD=build-mine bash bench/state-bench.sh --sizes 100,1000
set -euo pipefail
cd "$(dirname "$0")/.."

build=${HB_BUILD:-build}
if [ -f "$build/build.ninja" ]; then meson compile -C "$build" >/dev/null; fi
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/hb-state-bench.XXXXXX")

bench_pid=""
bus_pid=""
# The bench writes the pid of the daemon it runs to $dir/daemon.pid and
# removes the file once the daemon has exited.
# (A zombie's cmdline is empty: it counts as gone.)
running_daemon () { grep -qa heartbeatd "/proc/$1/cmdline" 2>/dev/null; }
daemon_pid () {
  local pid
  [ -s "$dir/daemon.pid" ] || return 1
  pid=$(cat "$dir/daemon.pid")
  running_daemon "$pid" || return 1
  echo "$pid"
}
cleanup () {
  local pid
  if [ -n "$bench_pid" ]; then
    kill "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  # the daemon the bench was running, if it did not stop it: it saves its
  # state on SIGTERM, so it must be gone before the directory is removed
  if pid=$(daemon_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 600); do running_daemon "$pid" || break; sleep 0.1; done
    running_daemon "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -n "$bus_pid" ]; then
    kill "$bus_pid" 2>/dev/null || true
    wait "$bus_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source tools/private-bus.sh
hb_private_bus "$dir"
bus_pid=$HB_BUS_PID

# in the background, so that the traps run at once on INT or TERM
"$build/bench/state-bench" --daemon "$build/src/daemon/heartbeatd" --work-dir "$dir" "$@" "$HB_BUS_ADDRESS" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"

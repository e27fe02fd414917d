#!/usr/bin/env bash
# bench/http-instructions.sh: what one HTTP request costs heartbeatd and
# bench/http-minimal (a libsoup server that only parses the body and
# answers), as instructions under callgrind and as system calls (perf stat
# of raw_syscalls:sys_enter, or strace -f -c without perf), all threads:
# figures a busy or noisy machine does not change much.
#
#   bash bench/http-instructions.sh [BUILDDIR] [N] [R]
#                                   (defaults: build 500 3)
#
# Each server runs once per window, under the tool from its start to its
# exit (SIGTERM); one client outside the tool (/usr/bin/python3,
# http.client) sends, on one keep-alive connection, a first POST /heartbeat
# that registers the known id, then N requests of one kind; then 2N. The
# difference of the two totals divided by N is the cost of one request:
# start-up, the first connection, the registration and shutdown cancel.
# Requests: POST /heartbeat on the known id (the body of
# bench/http-bench.lua) and GET $HB_BENCH_GET (default /health), the
# latter against http-minimal only if it answers it with a 2xx.
# BUILDDIR is relative to the top directory (or absolute).
#
# Instructions vary from run to run by about 1%; system calls depend on
# how many main-loop turns a request takes, so each system-call window is
# run R times and its least count taken, with the server on CPU 0 and the
# client on CPU 1 (taskset): the server is then waiting when each request
# comes, every run. (On one CPU, or left to the scheduler, a run fell
# into one of two interleavings, 20 or 28 calls per request for
# http-minimal.) HB_BENCH_SYSCALLS=strace counts with strace -f -c even
# where perf works; it slows every call, which changes how a threaded
# server's calls coalesce: one run here, POST, heartbeatd 14.1 by strace
# against 18.3 by perf, http-minimal 14.2 against 14.0. Needs valgrind,
# and perf or strace.
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=${1:-build}
n=${2:-500}
repeats=${3:-3}
get_path=${HB_BENCH_GET:-/health}
heartbeatd_bin=$builddir/src/daemon/heartbeatd
minimal_bin=$builddir/bench/http-minimal
command -v valgrind >/dev/null || { echo "http-instructions: valgrind is missing" >&2; exit 1; }
if [ -n "${HB_BENCH_SYSCALLS:-}" ]; then
  syscall_tool=$HB_BENCH_SYSCALLS
elif perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then
  syscall_tool=perf
elif command -v strace >/dev/null; then
  syscall_tool=strace
else
  echo "http-instructions: neither perf (with raw_syscalls) nor strace works" >&2
  exit 1
fi
for bin in "$heartbeatd_bin" "$minimal_bin"; do
  [ -x "$bin" ] || { echo "http-instructions: $bin is not built (meson compile -C $builddir)" >&2; exit 1; }
done

# the server on CPU 0, the client on CPU 1 (see above)
pin_server=()
pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0)
  pin_client=(taskset -c 1)
fi

source bench/lib.sh   # free_port
source tools/private-bus.sh
dir=$(mktemp -d /tmp/hb-http-instructions.XXXXXX)
pids=()
trap bench_cleanup EXIT
hb_private_bus "$dir"
pids+=("$HB_BUS_PID")
# HTTP's agents count as one uid
printf '[limits]\nagents-per-uid=0\n' > "$dir/bench.conf"

# the client: one connection, a registering POST, then COUNT requests;
# fails on any answer but the one expected
cat > "$dir/client.py" <<'PY'
import http.client, json, sys
port, kind, count, get_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = json.dumps({"run_id": "bench-known", "status": "running", "tests_per_sec": 0.9})
headers = {"Content-Type": "application/json"}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

def ask(method, path, data=None):
    conn.request(method, path, data, headers if data else {})
    reply = conn.getresponse()
    reply.read()
    if reply.status // 100 != 2 or reply.getheader("Connection", "").lower() == "close":
        sys.exit(f"{method} {path}: {reply.status} {reply.reason}")

ask("POST", "/heartbeat", body)
for _ in range(count):
    if kind == "POST":
        ask("POST", "/heartbeat", body)
    else:
        ask("GET", get_path)
conn.close()
PY

# wait_listening PORT PID: until PID listens on PORT (a slow start under
# the tools: at most 120 s); the one probe that connects is the same in
# every run
wait_listening () {
  for _ in $(seq 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "http-instructions: nothing listens on port $1" >&2
  exit 1
}

# run SERVER TOOL KIND COUNT: starts SERVER (heartbeatd or minimal) under
# TOOL (callgrind, perf or strace), sends the requests, stops it; prints
# its total (instructions or system calls)
run () {
  local server=$1 tool=$2 kind=$3 count=$4 port out pid server_pid
  local -a wrap cmd
  port=$(free_port)
  out="$dir/$server-$tool-$kind-$count.out"
  rm -rf "$dir/state"
  case $tool in
    callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$out" --log-file="$dir/valgrind.log") ;;
    perf) wrap=(perf stat -x, -e raw_syscalls:sys_enter -o "$out" --) ;;
    strace) wrap=(strace -f -qq -c -U calls,name -o "$out") ;;
  esac
  if [ "$server" = heartbeatd ]; then
    cmd=("$heartbeatd_bin" --session --config "$dir/bench.conf" --state-dir "$dir/state" --http-port "$port")
  else
    cmd=("$minimal_bin" "$port")
  fi
  DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" G_MESSAGES_DEBUG='' \
    "${pin_server[@]}" "${wrap[@]}" "${cmd[@]}" >/dev/null 2>"$dir/server.log" &
  pid=$!
  pids+=("$pid")
  wait_listening "$port" "$pid"
  "${pin_client[@]}" /usr/bin/python3 "$dir/client.py" "$port" "$kind" "$count" "$get_path"
  # valgrind runs the server in its own process; perf and strace have it
  # as a child
  server_pid=$pid
  if [ "$tool" != callgrind ]; then
    server_pid=$(ps -o pid= --ppid "$pid" | tr -d ' ')
    pids+=("$server_pid")
  fi
  kill -TERM "$server_pid"
  wait "$pid" || true   # http-minimal dies of the signal
  case $tool in
    callgrind) sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" ;;
    perf) awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$out" ;;
    strace) awk '$NF == "total" { print $1 }' "$out" ;;
  esac
}

# least SERVER TOOL KIND COUNT: the least total of $repeats runs
least () {
  local best='' total
  for _ in $(seq "$repeats"); do
    total=$(run "$@")
    [ -z "${HB_BENCH_VERBOSE:-}" ] || echo "  $* -> $total" >&2
    if [ -z "$best" ] || [ "$total" -lt "$best" ]; then best=$total; fi
  done
  echo "$best"
}

# per_request SERVER TOOL KIND: (total at 2N - total at N) / N, system
# calls from the least of R runs of each window
per_request () {
  local a b measure=run
  [ "$2" = callgrind ] || measure=least
  a=$($measure "$1" "$2" "$3" "$n")
  b=$($measure "$1" "$2" "$3" $((2 * n)))
  /usr/bin/python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]):.1f}')" "$a" "$b" "$n"
}

# does http-minimal answer GET $get_path?
minimal_has_get () {
  local port pid status
  port=$(free_port)
  "$minimal_bin" "$port" >/dev/null 2>"$dir/server.log" &
  pid=$!
  pids+=("$pid")
  wait_listening "$port" "$pid"
  status=$(/usr/bin/python3 - "$port" "$get_path" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
conn.request("GET", sys.argv[2])
print(conn.getresponse().status)
PY
)
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  [ "${status:0:1}" = 2 ]
}

ratio () {
  /usr/bin/python3 -c "import sys; a, b = map(float, sys.argv[1:3]); print(f'{a / b:.2f}')" "$1" "$2"
}

# report WHAT TARGET TOOL KIND
report () {
  local what=$1 target=$2 tool=$3 kind=$4 hb mini
  hb=$(per_request heartbeatd "$tool" "$kind")
  if [ "$kind" = GET ] && [ "$minimal_get" = no ]; then
    printf '%-22s heartbeatd %10s  http-minimal        n/a (no GET %s)\n' "$what" "$hb" "$get_path"
    return
  fi
  mini=$(per_request minimal "$tool" "$kind")
  printf '%-22s heartbeatd %10s  http-minimal %10s  ratio %s%s\n' \
    "$what" "$hb" "$mini" "$(ratio "$hb" "$mini")" "$target"
}

minimal_get=no
minimal_has_get && minimal_get=yes
label="GET $get_path"
echo "per request, (total at $((2 * n)) - total at $n) / $n, keep-alive, $builddir; system calls by $syscall_tool, least of $repeats"
report "instructions POST"   " (target <= 1.25)" callgrind POST
report "instructions $label" ""                  callgrind GET
report "syscalls POST"       " (target <= 1.00)" "$syscall_tool" POST
report "syscalls $label"     ""                  "$syscall_tool" GET

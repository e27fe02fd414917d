#!/usr/bin/env bash
# bench/http-flood.sh: what many short HTTP connections at once leave
# behind. T threads each open a connection, send GET /health, read the
# whole answer and close, N connections in all per round, R rounds,
# against heartbeatd and, in the same run, against bench/http-minimal (a
# bare libsoup server). Prints each round's time and each server's RSS
# and open files after it. bench/http-connections.sh makes its
# connections one at a time; at once, the main loop is seldom idle, which
# is what heartbeatd waits for before it takes a plain connection its
# client ended from libsoup 3.2 (see README, "A libsoup problem").
#   bash bench/http-flood.sh [N] [R] [T]     (defaults: 5000 4 32)
# (http-minimal keeps an fd per connection its client closed: libsoup 3.2
# does not close it; heartbeatd does, see README)
# ($HB_BUILD_DIR names the build directory, default build: see bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-5000}
rounds=${2:-4}
threads=${3:-32}
source bench/lib.sh
bench_start http-flood

daemon_port=$(free_port)
DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" G_MESSAGES_DEBUG= \
  "$build"/src/daemon/heartbeatd --session --state-dir "$dir/state" --http-port "$daemon_port" \
  >/dev/null 2>"$dir/daemon.log" &
daemon_pid=$!
pids+=("$daemon_pid")
minimal_port=$(free_port)
"$build"/bench/http-minimal "$minimal_port" &
minimal_pid=$!
pids+=("$minimal_pid")
wait_port "$daemon_port"
wait_port "$minimal_port"

# flood NAME PORT PID: R rounds of N connections from T threads
flood () {
  /usr/bin/python3 - "$@" "$n" "$rounds" "$threads" <<'PY'
import os, socket, sys, threading, time
name, port, pid, n, rounds, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:7])
request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
errors = [0]

def status():
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        return f"RSS {rss / 1024:.1f} MiB, {len(os.listdir(f'/proc/{pid}/fd'))} open files"
    except FileNotFoundError:
        return "GONE (the server died)"

def worker(count):
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port))
        except OSError:
            errors[0] += 1
            continue
        try:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(l.split(b":")[1] for l in head.split(b"\r\n")
                              if l.lower().startswith(b"content-length")))
            while len(body) < length:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed")
                body += chunk
        except (OSError, StopIteration, ValueError):
            errors[0] += 1
        s.close()

print(f"{name:12} before: {status()}")
for r in range(1, rounds + 1):
    start = time.monotonic()
    ts = [threading.Thread(target=worker, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"{name:12} round {r}: {n // threads * threads} connections in {time.monotonic() - start:.1f} s, "
          f"{errors[0]} failed; {status()}")
PY
}

flood heartbeatd "$daemon_port" "$daemon_pid"
flood http-minimal "$minimal_port" "$minimal_pid"

#!/usr/bin/env bash
# bench/http-connections.sh: what one short HTTP connection leaves behind.
# A client opens a connection, sends GET /health, reads the whole answer
# and closes; N times, against heartbeatd and, in the same run, against
# bench/http-minimal (a bare libsoup server). Prints the growth of each
# server's RSS per connection after a warm-up round, and again after the
# idle timeout (60 s) has passed, so that what is only held for a while
# is told from what is never given back.
#   bash bench/http-connections.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-3000}
source bench/lib.sh
bench_start http-connections

daemon_port=$(free_port)
DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" G_MESSAGES_DEBUG= \
  build/src/daemon/heartbeatd --session --state-dir "$dir/state" --http-port "$daemon_port" \
  >/dev/null 2>"$dir/daemon.log" &
daemon_pid=$!
pids+=("$daemon_pid")
minimal_port=$(free_port)
build/bench/http-minimal "$minimal_port" &
minimal_pid=$!
pids+=("$minimal_pid")
wait_port "$daemon_port"
wait_port "$minimal_port"

# connections PORT PID N: prints the RSS growth in bytes per connection
connections () {
  /usr/bin/python3 - "$@" <<'PY'
import socket, sys
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
before = rss()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET /health HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
    f = s.makefile("rb")
    length = 0
    while (line := f.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    f.close()
    s.close()
print(f"{(rss() - before) / n:.0f}")
PY
}

for server in heartbeatd http-minimal; do
  if [ $server = heartbeatd ]; then port=$daemon_port pid=$daemon_pid; else port=$minimal_port pid=$minimal_pid; fi
  connections "$port" "$pid" "$n" >/dev/null   # warm-up
  first=$(connections "$port" "$pid" "$n")
  echo "$server: $first bytes of RSS per connection ($n connections after $n of warm-up)"
done
echo "waiting 65 s (past the 60 s idle timeout) ..."
sleep 65
for server in heartbeatd http-minimal; do
  if [ $server = heartbeatd ]; then port=$daemon_port pid=$daemon_pid; else port=$minimal_port pid=$minimal_pid; fi
  echo "$server, after the idle timeout: $(connections "$port" "$pid" "$n") bytes of RSS per connection"
done

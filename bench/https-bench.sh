#!/usr/bin/env bash
# bench/https-bench.sh: what TLS costs the HTTP API. Two heartbeatd, each on
# its own private bus, with the same configuration (the same scoped tokens
# file) but for [http] tls-certificate= and tls-key= (the test CA of
# tests/tls/make-test-ca.sh): one speaks HTTP, the other HTTPS. wrk, in the
# same run, one server after the other (bench/https-bench.lua):
#   - POST /heartbeat with keep-alive and the write token (its sha512-crypt
#     hash in the tokens file: a keep-alive client pays crypt once);
#   - GET /v1/agents?limit=20 with keep-alive and the read token;
#   - GET /health with "Connection: close": a new connection per request,
#     so with HTTPS a full TLS handshake each (heartbeatd's GnuTLS server
#     sends no session tickets and resumes no TLS 1.2 session: checked
#     with openssl s_client -sess_out/-sess_in).
# Prints requests/s of each, and the ratio https / http.
#   bash bench/https-bench.sh [SECONDS] [CONNECTIONS]
# (default 10 s and 32 connections per round, 2 wrk threads;
# $HB_BUILD_DIR names the build directory, default build: see bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "https-bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "https-bench: openssl is missing" >&2; exit 1; }
source bench/lib.sh
bench_start https-bench

sh tests/tls/make-test-ca.sh "$dir/ca" >/dev/null
read_token=$(openssl rand -hex 24)
write_token=$(openssl rand -hex 24)
(umask 077; printf 'read %s\nread,write %s\n' "$read_token" "$(openssl passwd -6 -stdin <<<"$write_token")" \
  > "$dir/tokens")
# the beat rounds register 2 x 100 run_ids; HTTP's agents count as one uid
printf '[limits]\nagents-per-uid=0\n\n[http]\ntokens-file=%s\n' "$dir/tokens" > "$dir/http.conf"
cp "$dir/http.conf" "$dir/https.conf"
printf 'tls-certificate=%s\ntls-key=%s\n' "$dir/ca/server.pem" "$dir/ca/server-key.pem" >> "$dir/https.conf"

# serve NAME: heartbeatd with $dir/NAME.conf on its own bus and a free port
serve () {
  mkdir -p "$dir/$1"
  hb_private_bus "$dir/$1"
  pids+=("$HB_BUS_PID")
  port=$(free_port)
  DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" G_MESSAGES_DEBUG= \
    "$build"/src/daemon/heartbeatd --session --config "$dir/$1.conf" --state-dir "$dir/$1/state" \
    --http-port "$port" >/dev/null 2>"$dir/$1.log" &
  pids+=($!)
  wait_port "$port"
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "https-bench: heartbeatd ($1) did not start:" >&2; cat "$dir/$1.log" >&2; exit 1; }
}
serve http; http_port=$port
serve https; https_port=$port
curl -fsS --cacert "$dir/ca/ca.pem" -o /dev/null "https://localhost:$https_port/health" ||
  { echo "https-bench: the TLS heartbeatd does not answer over https:" >&2; cat "$dir/https.log" >&2; exit 1; }

# run URL SECONDS CONNECTIONS MODE [TOKEN]: wrk's one line
run () { wrk -t2 -c"$3" -d"$2s" -s bench/https-bench.lua "$1" -- "$4" "${5:-}" | tail -1; }
http_url=http://127.0.0.1:$http_port
https_url=https://localhost:$https_port
# a first, short round on each registers the agents (each registration is
# written to disk before its reply)
run "$http_url" 4 "$conns" beat "$write_token" >/dev/null
run "$https_url" 4 "$conns" beat "$write_token" >/dev/null

ratio () {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
a, b = (float(s.split()[1]) for s in sys.argv[1:3])
print(f"  https / http: {b / a:.2f}")
PY
}
round () { # round TITLE CONNECTIONS MODE [TOKEN]
  local plain tls
  plain=$(run "$http_url" "$seconds" "$2" "$3" "${4:-}")
  tls=$(run "$https_url" "$seconds" "$2" "$3" "${4:-}")
  echo "$1"
  echo "  http:  $plain"
  echo "  https: $tls"
  ratio "$plain" "$tls"
}
echo "wrk -t2, ${seconds} s a round; heartbeatd $("$build"/src/daemon/heartbeatd --version 2>/dev/null | head -1); $(nproc) CPUs"
round "POST /heartbeat, keep-alive, $conns connections, write token (sha512-crypt hash):" "$conns" beat "$write_token"
round "GET /v1/agents?limit=20, keep-alive, $conns connections, read token:" "$conns" read "$read_token"
round "GET /health, Connection: close (a new connection, for https a full handshake, per request), 8 connections:" 8 health

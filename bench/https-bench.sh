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
# Each measurement is ROUNDS pairs of rounds, http then https: prints the
# median requests/s of each, every round's figure, and the median of the
# pairs' ratios https / http (on a shared machine one pair says little).
#   bash bench/https-bench.sh [SECONDS] [CONNECTIONS] [ROUNDS]
# (default 5 s a round, 32 connections, 3 rounds, 2 wrk threads;
# $HB_BUILD_DIR names the build directory, default build: see bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
conns=${2:-32}
rounds=${3:-3}
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

# measure TITLE CONNECTIONS MODE [TOKEN]: ROUNDS pairs, medians
measure () {
  local i out=()
  for i in $(seq "$rounds"); do
    out+=("$(run "$http_url" "$seconds" "$2" "$3" "${4:-}")" "$(run "$https_url" "$seconds" "$2" "$3" "${4:-}")")
  done
  echo "$1"
  /usr/bin/python3 - "${out[@]}" <<'PY'
import statistics, sys
lines = sys.argv[1:]
fields = [dict(zip(l.split()[0::2], l.split()[1::2])) for l in lines]
plain, tls = fields[0::2], fields[1::2]
for name, rs in (("http: ", plain), ("https:", tls)):
    rps = [float(r["requests/s"]) for r in rs]
    errors = sum(int(r["errors"]) for r in rs)
    p99 = statistics.median(float(r["p99_ms"]) for r in rs)
    print(f"  {name} {statistics.median(rps):7.0f} requests/s (rounds: {' '.join('%.0f' % x for x in rps)}), "
          f"p99 {p99:.1f} ms, errors {errors}")
ratios = [float(t["requests/s"]) / float(p["requests/s"]) for p, t in zip(plain, tls)]
print(f"  https / http: {statistics.median(ratios):.2f} (rounds: {' '.join('%.2f' % r for r in ratios)})")
PY
}
echo "wrk -t2, $rounds x ${seconds} s a server; heartbeatd $("$build"/src/daemon/heartbeatd --version 2>/dev/null | head -1); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "POST /heartbeat, keep-alive, $conns connections, write token (sha512-crypt hash):" "$conns" beat "$write_token"
measure "GET /v1/agents?limit=20, keep-alive, $conns connections, read token:" "$conns" read "$read_token"
measure "GET /health, Connection: close (a new connection per request, for https a full handshake), 8 connections:" 8 health
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

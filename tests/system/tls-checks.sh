# tests/system/tls-checks.sh: sourced by run-system-tests.sh, in the
# booted container, after every other part (it uses the helpers defined
# before: in_ct, poll, ok, not_ok, skip, diag, prop, jcursor, unit_log,
# journal_has, $CONF_D, $SRCDIR, $HELPERS, $ROOT, $WORK, $PY).
#
# HTTPS as an admin sets it up: a test CA (tests/tls/make-test-ca.sh, made
# on the host), the certificate in /etc/heartbeat/tls.pem, the key in
# /etc/heartbeat/tls.key (0600 root:root: user heartbeat may not read it)
# given to the service by systemd's LoadCredential= in a unit drop-in, and
# [http] address= a non-loopback address (hb-tls-ct, 10.203.2.1, one end
# of a veth pair whose other end, 10.203.2.2, is in the network namespace
# "hb-tls", where the clients run: curl and openssl s_client):
#  - without TLS and without trusted-network=true, plain HTTP on that
#    address is refused at start: `systemctl restart` fails, the unit ends
#    failed, the journal says why;
#  - user heartbeat cannot read the key file;
#  - with tls-certificate= and tls-key=credential:tls.key: /metrics over
#    https with the read token is 200 (the certificate verified against
#    the test CA, the one served is tls.pem); /health needs no token; no
#    token and a wrong token are 401, a write with the read token 403, a
#    write with the write token (its sha512-crypt hash in the tokens file)
#    200; each refusal counted in /metrics;
#  - http:// on that port gets no HTTP answer, and a client trusting
#    another CA refuses the server;
#  - a renewed certificate (same key, new serial) swapped into tls.pem and
#    `systemctl reload`: the next connection gets it, same MainPID; a
#    keep-alive connection opened before keeps working (the same
#    connection, hb-test-tls-keepalive.py) with the certificate it had;
#  - a new certificate (server2) before its key, `systemctl reload` and a
#    bare SIGHUP: a certificate and key that do not match are refused, the
#    daemon keeps serving the pair it has (a warning in the journal), the
#    same MainPID (what happens too when systemd gives the service the
#    key of its start: systemd 252, Debian 12's, copies credentials again
#    when ExecReload= runs, 253 took that back); with the key in place,
#    `systemctl restart` serves server2;
#  - the end of this part: heartbeatd back on 127.0.0.1 without TLS.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

TLS_ADDR=10.203.2.1
TLS_PEER=10.203.2.2
TLS_HOST=$WORK/tls                        # the test CA, on the host
TLS_CT=/var/tmp/hb-system-tls             # what the clients read, in the container
TLS_CONF=$CONF_D/74-hb-system-test-tls.conf
TLS_UNIT_D=/etc/systemd/system/heartbeatd.service.d
TLS_TOKENS=$(dirname "$CONF_D")/tls-http-tokens
TLS_READ=hb-read-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
TLS_WRITE=hb-write-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
TLS_URL=https://$TLS_ADDR:8765
tls_t0=$(date +%s.%N)

in_tls () { in_ct ip netns exec hb-tls "$@"; }
# tls_req [CURL ARGS...] URL: one request from hb-tls, verified against the
# test CA; prints the response headers and body, then a last line with
# the HTTP code (000: no HTTP answer, curl's error on stderr)
tls_req () {
  in_tls curl -sS -i --noproxy '*' --max-time 5 --cacert "$TLS_CT/ca.pem" -w '\n%{http_code}' "$@"
}
tls_code () { tail -n1 <<<"$1"; }
# served_fp: the SHA-256 fingerprint of the certificate a new connection
# is shown ("" if there is none, or it is not the test CA's; openssl
# prints it even when the handshake then fails on a key that does not
# match it)
served_fp () {
  in_tls sh -c "openssl s_client -connect $TLS_ADDR:8765 -servername localhost -CAfile $TLS_CT/ca.pem \
    -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256" 2>/dev/null | cut -d= -f2
}
host_fp () { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
metric () { # metric TEXT NAME{LABELS}: its value ("" if absent)
  awk -v m="$2" '$1 == m { print $2 }' <<<"$1"
}
tls_journal () { in_ct journalctl -b -q --no-pager -u heartbeatd -n "${1:-8}" 2>&1; }

# (a) the test CA, a renewal of server.pem (same key, new serial), the
# network namespace of the clients
tls_ready=yes
rm -rf "$TLS_HOST"
out=$(sh "$SRCDIR/../tls/make-test-ca.sh" "$TLS_HOST" "$TLS_ADDR" 2>&1 &&
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,IP:%s\n' \
        "$TLS_ADDR" >"$TLS_HOST/renewed.ext" &&
      openssl req -new -key "$TLS_HOST/server-key.pem" -subj /CN=localhost -out "$TLS_HOST/renewed.csr" 2>&1 &&
      openssl x509 -req -in "$TLS_HOST/renewed.csr" -CA "$TLS_HOST/ca.pem" -CAkey "$TLS_HOST/ca-key.pem" \
        -set_serial "0x$(openssl rand -hex 16)" -days 2 -extfile "$TLS_HOST/renewed.ext" -out "$TLS_HOST/renewed.pem" 2>&1)
[ $? -eq 0 ] || { tls_ready=no; diag "cannot make the test CA: $out"; }
mkdir -p "$ROOT$TLS_CT" "$ROOT$HELPERS"
install -m 0755 "$SRCDIR/hb-test-tls-keepalive.py" "$ROOT$HELPERS/hb-test-tls-keepalive.py"
cp "$TLS_HOST/ca.pem" "$TLS_HOST/rogue-ca.pem" "$ROOT$TLS_CT/" 2>/dev/null
out=$(in_ct ip netns add hb-tls 2>&1 &&
      in_ct ip link add hb-tls-ct type veth peer name hb-tls-cl netns hb-tls 2>&1 &&
      in_ct ip addr add "$TLS_ADDR/24" dev hb-tls-ct 2>&1 && in_ct ip link set hb-tls-ct up 2>&1 &&
      in_tls ip addr add "$TLS_PEER/24" dev hb-tls-cl 2>&1 && in_tls ip link set hb-tls-cl up 2>&1)
[ $? -eq 0 ] || { tls_ready=no; diag "cannot make the network namespace hb-tls: $out"; }
# the tokens file: a plain read token and the write token's hash
tls_hash=$(openssl passwd -6 -stdin <<<"$TLS_WRITE")
(umask 077; printf '# system test: scoped tokens (SCOPES SECRET)\nread %s\nread,write %s\n' \
  "$TLS_READ" "$tls_hash" >"$ROOT$TLS_TOKENS")
in_ct chown heartbeat:heartbeat "$TLS_TOKENS"

if [ "$tls_ready" = yes ]; then
  # (1) plain HTTP on a non-loopback address, without trusted-network=true:
  # refused at start, with tokens or without
  printf '[http]\naddress=%s\ntokens-file=%s\n' "$TLS_ADDR" "$TLS_TOKENS" >"$ROOT$TLS_CONF"
  chmod 0644 "$ROOT$TLS_CONF"
  cursor=$(jcursor)
  out=$(in_ct systemctl restart heartbeatd.service 2>&1)
  rc=$?
  tls_failed () { [ "$(prop ActiveState)" = failed ]; }
  why=""
  tls_why () { why=$(unit_log "$cursor" | grep -m1 -F "refusing to serve plain HTTP on $TLS_ADDR" | grep -F 'trusted-network=true'); }
  if [ $rc -ne 0 ] && poll 20 tls_failed && tls_why; then
    ok "[http] address=$TLS_ADDR tokens-file=, no TLS, no trusted-network=true: systemctl restart fails ($(prop Result)), the unit is failed, the journal says \"$why\""
  else
    not_ok "plain HTTP on $TLS_ADDR without trusted-network=true is refused at start (the unit fails, the journal says why)" \
      "systemctl restart: rc=$rc $out" "ActiveState=$(prop ActiveState) Result=$(prop Result)" "$(unit_log "$cursor" | tail -n 8)"
  fi
  in_ct systemctl reset-failed heartbeatd.service 2>/dev/null

  # (2) the key, readable by root only, given to the service by systemd
  # (/etc/heartbeat: made here, a fresh machine has none)
  install -d -m 0755 "$ROOT/etc/heartbeat"
  install -m 0644 "$TLS_HOST/server.pem" "$ROOT/etc/heartbeat/tls.pem"
  install -m 0600 "$TLS_HOST/server-key.pem" "$ROOT/etc/heartbeat/tls.key"
  in_ct chown root:root /etc/heartbeat/tls.pem /etc/heartbeat/tls.key
  key_stat=$(in_ct stat -c '%a %U:%G' /etc/heartbeat/tls.key)
  out=$(in_ct runuser -u heartbeat -- cat /etc/heartbeat/tls.key 2>&1)
  rc=$?
  if [ "$key_stat" = "600 root:root" ] && [ $rc -ne 0 ] && ! grep -q 'PRIVATE KEY' <<<"$out"; then
    ok "/etc/heartbeat/tls.key is $key_stat: user heartbeat cannot read it (runuser -u heartbeat -- cat: $(tail -n1 <<<"$out"))"
  else
    not_ok "/etc/heartbeat/tls.key is 600 root:root, not readable by user heartbeat" "stat: $key_stat" "cat as heartbeat: rc=$rc $(head -c 200 <<<"$out")"
  fi

  # (3) HTTPS with the key as a credential: /metrics with the read token
  mkdir -p "$ROOT$TLS_UNIT_D"
  printf '[Service]\nLoadCredential=tls.key:/etc/heartbeat/tls.key\n' >"$ROOT$TLS_UNIT_D/tls.conf"
  printf '[http]\naddress=%s\ntokens-file=%s\ntls-certificate=/etc/heartbeat/tls.pem\ntls-key=credential:tls.key\n' \
    "$TLS_ADDR" "$TLS_TOKENS" >"$ROOT$TLS_CONF"
  chmod 0644 "$ROOT$TLS_UNIT_D/tls.conf" "$ROOT$TLS_CONF"
  cursor=$(jcursor)
  out=$(in_ct systemctl daemon-reload 2>&1 && in_ct systemctl restart heartbeatd.service 2>&1)
  rc=$?
  metrics_ok () {
    metrics=$(tls_req -H "Authorization: Bearer $TLS_READ" "$TLS_URL/metrics" 2>&1)
    [ "$(tls_code "$metrics")" = 200 ]
  }
  fp_server=$(host_fp "$TLS_HOST/server.pem")
  metrics=""
  if [ $rc -eq 0 ] && [ "$(prop ActiveState)" = active ] && poll 10 metrics_ok &&
     grep -q '^heartbeat_http_auth_failures_total{reason="missing"}' <<<"$metrics" && [ "$(served_fp)" = "$fp_server" ]; then
    ok "tls-certificate=/etc/heartbeat/tls.pem tls-key=credential:tls.key (LoadCredential=): curl --cacert ca.pem $TLS_URL/metrics with the read token from $TLS_PEER is 200, the served certificate is tls.pem"
  else
    not_ok "HTTPS with the key from LoadCredential=: GET /metrics with the read token is 200" "restart: rc=$rc $out" \
      "ActiveState=$(prop ActiveState)" "GET /metrics: $(head -c 300 <<<"$metrics") … $(tail -n1 <<<"$metrics")" \
      "served: $(served_fp) (tls.pem: $fp_server)" "$(unit_log "$cursor" | tail -n 8)"
  fi

  # (4) tokens and scopes, over TLS
  health=$(tls_req "$TLS_URL/health" 2>&1)
  none=$(tls_req "$TLS_URL/metrics" 2>&1)
  wrong=$(tls_req -H "Authorization: Bearer $TLS_READ-not" "$TLS_URL/metrics" 2>&1)
  beat=(-H 'Content-Type: application/json' -d '{"run_id": "sys-tls", "status": "working"}')
  as_read=$(tls_req "${beat[@]}" -H "Authorization: Bearer $TLS_READ" "$TLS_URL/heartbeat" 2>&1)
  as_write=$(tls_req "${beat[@]}" -H "Authorization: Bearer $TLS_WRITE" "$TLS_URL/heartbeat" 2>&1)
  after=$(tls_req -H "Authorization: Bearer $TLS_READ" "$TLS_URL/metrics" 2>&1)
  f_missing=$(metric "$after" 'heartbeat_http_auth_failures_total{reason="missing"}')
  f_invalid=$(metric "$after" 'heartbeat_http_auth_failures_total{reason="invalid"}')
  f_scope=$(metric "$after" 'heartbeat_http_auth_failures_total{reason="scope"}')
  if [ "$(tls_code "$health")" = 200 ] &&
     [ "$(tls_code "$none")" = 401 ] && grep -qi '^www-authenticate: Bearer realm="heartbeatd"' <<<"$none" &&
     [ "$(tls_code "$wrong")" = 401 ] && grep -qi '^www-authenticate: .*error="invalid_token"' <<<"$wrong" &&
     [ "$(tls_code "$as_read")" = 403 ] && grep -qi '^www-authenticate: .*error="insufficient_scope"' <<<"$as_read" &&
     [ "$(tls_code "$as_write")" = 200 ] && [ "${f_missing:-0}" -ge 1 ] 2>/dev/null &&
     [ "${f_invalid:-0}" -ge 1 ] 2>/dev/null && [ "${f_scope:-0}" -ge 1 ] 2>/dev/null; then
    ok "over HTTPS: /health without a token 200; /metrics without a token 401, with a wrong one 401 (invalid_token); POST /heartbeat with the read token 403 (insufficient_scope), with the write token (sha512-crypt hash in the file) 200; counted: missing $f_missing, invalid $f_invalid, scope $f_scope"
  else
    not_ok "over HTTPS: who needs which token (200/401/401/403/200) and the refusals counted" \
      "/health: $(tail -n1 <<<"$health")" "no token: $(grep -i '^www-auth' <<<"$none") $(tail -n1 <<<"$none")" \
      "wrong token: $(grep -i '^www-auth' <<<"$wrong") $(tail -n1 <<<"$wrong")" \
      "POST as read: $(grep -i '^www-auth' <<<"$as_read") $(tail -n1 <<<"$as_read")" \
      "POST as write: $(tail -n 3 <<<"$as_write")" "metrics: missing=$f_missing invalid=$f_invalid scope=$f_scope"
  fi

  # (5) plain http:// on the TLS port, and a client that trusts another CA
  plain=$(in_tls curl -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TLS_READ" "http://$TLS_ADDR:8765/metrics" 2>&1)
  plain_rc=$?
  rogue=$(in_tls curl -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$TLS_CT/rogue-ca.pem" \
    -H "Authorization: Bearer $TLS_READ" "$TLS_URL/metrics" 2>&1)
  rogue_rc=$?
  if [ $plain_rc -ne 0 ] && [[ "$plain" == *000* ]] && [ $rogue_rc -ne 0 ] && [[ "$rogue" == *000* ]]; then
    ok "http://$TLS_ADDR:8765/metrics (plain, with the token) gets no HTTP answer (curl: $(grep -m1 -o 'curl: ([0-9]*)' <<<"$plain")); a client trusting another CA refuses the server (curl: $(grep -m1 -o 'curl: ([0-9]*)' <<<"$rogue"))"
  else
    not_ok "plain HTTP on the TLS port and a client trusting another CA get no answer" \
      "http://: rc=$plain_rc $plain" "--cacert rogue-ca.pem: rc=$rogue_rc $rogue"
  fi

  # (6) a renewal (the same key, a new certificate) swapped in, reloaded
  # as an admin (or an ACME client's hook) does: systemctl reload
  pid0=$(prop MainPID)
  fp_renewed=$(host_fp "$TLS_HOST/renewed.pem")
  # a keep-alive connection opened before: it must keep working, with
  # the certificate it has
  rm -f "$ROOT$TLS_CT/go" "$WORK/keepalive.out"
  in_tls "$PY" "$HELPERS/hb-test-tls-keepalive.py" "$TLS_ADDR" 8765 "$TLS_CT/ca.pem" "$TLS_READ" "$TLS_CT/go" \
    >"$WORK/keepalive.out" 2>&1 &
  ka_pid=$!
  poll 10 grep -q '^first ' "$WORK/keepalive.out"
  cursor=$(jcursor)
  install -m 0644 "$TLS_HOST/renewed.pem" "$ROOT/etc/heartbeat/tls.pem.new"
  mv "$ROOT/etc/heartbeat/tls.pem.new" "$ROOT/etc/heartbeat/tls.pem"
  out=$(in_ct systemctl reload heartbeatd.service 2>&1)
  rc=$?
  renewed_served () { [ "$(served_fp)" = "$fp_renewed" ]; }
  if [ $rc -eq 0 ] && poll 10 renewed_served && [ "$(prop MainPID)" = "$pid0" ] && [ "$(prop ActiveState)" = active ] &&
     metrics_ok; then
    ok "a renewed tls.pem (same key, new serial) and systemctl reload: the next connection gets it, MainPID $pid0 unchanged, /metrics 200"
  else
    lines=("reload: rc=$rc $out" "served: $(served_fp) (renewed: $fp_renewed, old: $fp_server)"
           "MainPID $pid0 -> $(prop MainPID) $(prop ActiveState)" "$(unit_log "$cursor" | tail -n 8)")
    # which side fails: the daemon alone, sent SIGHUP without the unit's
    # ExecReload= check
    in_ct systemctl kill -s HUP --kill-whom=main heartbeatd.service
    poll 5 renewed_served
    lines+=("after a bare SIGHUP (systemctl kill -s HUP): served $(served_fp)")
    not_ok "a certificate swapped and systemctl reload: served to the next connection, the service stays" "${lines[@]}"
  fi
  touch "$ROOT$TLS_CT/go"
  wait "$ka_pid"
  ka_rc=$?
  read -r _ ka_code1 ka_fp1 ka_port1 < <(grep '^first ' "$WORK/keepalive.out")
  read -r _ ka_code2 ka_fp2 ka_port2 < <(grep '^second ' "$WORK/keepalive.out")
  if [ $ka_rc -eq 0 ] && [ "$ka_code1/$ka_code2" = 200/200 ] && [ "$ka_fp1" = "$fp_server" ] && [ "$ka_fp2" = "$fp_server" ] &&
     [ -n "$ka_port1" ] && [ "$ka_port1" = "$ka_port2" ] && renewed_served; then
    ok "a keep-alive connection opened before the reload: its next request is 200 on the same connection (local port $ka_port1) with the certificate it had, while a new connection gets the renewed one"
  else
    not_ok "a keep-alive connection opened before the reload keeps working with its certificate" "client: rc=$ka_rc" \
      "$(cat "$WORK/keepalive.out")" "old $fp_server, renewed $fp_renewed; a new connection: $(served_fp)"
  fi

  # (7) a new key: the new certificate put in place before its key (or
  # with a systemd that does not copy credentials again on reload, where
  # the daemon reads the key of the start): a reload finds a
  # certificate and a key that do not match, and the daemon must keep
  # serving the pair it has, and say so; once the key is in place, a
  # restart serves the new pair. Reloaded by systemctl reload, then by a
  # bare SIGHUP (the daemon's own check, whatever ExecReload= did).
  fp_server2=$(host_fp "$TLS_HOST/server2.pem")
  install -m 0644 "$TLS_HOST/server2.pem" "$ROOT/etc/heartbeat/tls.pem.new"
  mv "$ROOT/etc/heartbeat/tls.pem.new" "$ROOT/etc/heartbeat/tls.pem"
  pid0=$(prop MainPID)
  cursor=$(jcursor)
  out=$(in_ct systemctl reload heartbeatd.service 2>&1)
  rc=$?
  reloads=$((rc == 0 ? 2 : 1))   # (poll has a local rc)
  in_ct systemctl kill -s HUP --kill-whom=main heartbeatd.service
  hup_done () { [ "$(unit_log "$cursor" | grep -c 'Configuration reloaded')" -ge "$reloads" ]; }
  poll 10 hup_done
  after_reload=$(served_fp)
  handshake=$(in_tls curl -sS --noproxy '*' --max-time 5 --cacert "$TLS_CT/ca.pem" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TLS_READ" "$TLS_URL/metrics" 2>&1)
  warning=$(unit_log "$cursor" | grep -m1 'Keeping the old TLS certificate')
  if [ "$handshake" = 200 ] && [ "$after_reload" = "$fp_renewed" ] && [ -n "$warning" ] &&
     [ "$(prop MainPID)" = "$pid0" ] && [ "$(prop ActiveState)" = active ]; then
    install -m 0600 "$TLS_HOST/server2-key.pem" "$ROOT/etc/heartbeat/tls.key.new"
    mv "$ROOT/etc/heartbeat/tls.key.new" "$ROOT/etc/heartbeat/tls.key"
    out2=$(in_ct systemctl restart heartbeatd.service 2>&1)
    rc2=$?
    server2_served () { [ "$(served_fp)" = "$fp_server2" ]; }
    if [ $rc2 -eq 0 ] && poll 10 server2_served && metrics_ok; then
      ok "a new certificate before its key, systemctl reload (rc $rc) and SIGHUP: the old pair kept (new connections complete their handshake with the renewed certificate, same MainPID; journal: \"${warning:0:100}…\"); the key in place, systemctl restart serves server2"
    else
      not_ok "a new key in place: systemctl restart serves server2" "restart: rc=$rc2 $out2" \
        "served: $(served_fp) (server2: $fp_server2)" "$(tls_journal)"
    fi
  else
    not_ok "a certificate without its key, then a reload: the old pair kept with a warning, new connections complete their handshake" \
      "systemctl reload: rc=$rc $out" "a new connection after the SIGHUP: $handshake" \
      "served after it: \"$after_reload\" (want the renewed $fp_renewed; server2 $fp_server2)" "warning: \"$warning\"" \
      "MainPID $pid0 -> $(prop MainPID) $(prop ActiveState)" "$(unit_log "$cursor" | tail -n 8)"
    in_ct systemctl restart heartbeatd.service 2>/dev/null
  fi
else
  for what in "plain HTTP off loopback refused" "the key not readable by heartbeat" "HTTPS /metrics with a token" \
              "tokens and scopes over HTTPS" "no plain HTTP on the TLS port" "a renewed certificate on reload" \
              "a keep-alive connection across the reload" "a new key"; do
    skip "TLS: $what" "no test CA or network namespace (see above)"
  done
fi

# the end of this part: back on 127.0.0.1 without TLS, nothing left
rm -f "$ROOT$TLS_CONF" "$ROOT$TLS_UNIT_D/tls.conf" "$ROOT$TLS_TOKENS" "$ROOT/etc/heartbeat/tls.pem" "$ROOT/etc/heartbeat/tls.key"
rm -rf "$ROOT$TLS_CT" "$TLS_HOST"
in_ct ip netns del hb-tls 2>/dev/null
in_ct systemctl daemon-reload
in_ct systemctl reset-failed heartbeatd.service 2>/dev/null
in_ct systemctl restart heartbeatd.service
left=$(in_ct ip netns list; in_ct ip -br link show | grep -E '^hb-tls')
failed=$(in_ct systemctl --failed --no-legend --plain 2>&1 | grep -E 'heartbeat')
if [ -z "$left$failed" ] && [ "$(prop ActiveState)" = active ] &&
   poll 5 journal_has _SYSTEMD_UNIT=heartbeatd.service MESSAGE="Serving HTTP on http://127.0.0.1:8765/" _PID="$(prop MainPID)"; then
  ok "TLS part cleanup: drop-ins, key and namespace removed, heartbeatd active on http://127.0.0.1:8765/, no failed heartbeatd unit ($("$PY" -c 'import sys, time; print("%.1f" % (time.time() - float(sys.argv[1])))' "$tls_t0") s for this part)"
else
  not_ok "TLS part cleanup: heartbeatd back on 127.0.0.1, nothing left" "$left" "$failed" "ActiveState=$(prop ActiveState)" "$(tls_journal)"
fi

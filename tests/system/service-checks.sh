# tests/system/service-checks.sh: sourced by run-system-tests.sh, in the
# booted container, after the oneshot job's part (it uses that part's
# helpers: in_ct, poll, ok, not_ok, agent_json, wj, $HELPERS, $CONF_D,
# $HTTP_LO, $SRCDIR).
#
# Which work has a run timeout, as installed. With a short default
# ([monitor] timeout-threshold=6s), hb-svc (a simple service whose program
# beats every 0.5 s) and hb-oneshot (a Type=oneshot job whose program
# beats and never ends) run side by side, and an alert with the default
# events= restarts hb-svc's unit. The job times out: that shows the
# threshold passed. The service, started before it, must still be healthy,
# its history only healthy since it started, its unit never restarted (the
# same InvocationID) and the journal free of a timeout or restart for it.
# hb-later is declared before its unit is started (declare, reload, then
# start): it waits (no-heartbeat, status waiting), is not gone, and no
# alert fires; started, it is healthy.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

SV=hb-test-svc.service
OS=hb-test-oneshot.service
LT=hb-test-later.service
for u in "$SV:hb-svc" "$LT:hb-later"; do
  cat >"$ROOT/etc/systemd/system/${u%%:*}" <<UNIT
[Unit]
Description=heartbeatd system test: a service that beats ${u#*:}

[Service]
Type=simple
User=nobody
ExecStart=$HELPERS/hb-test-worker.sh ${u#*:} /run/${u#*:}-hang
UNIT
done
cat >"$ROOT/etc/systemd/system/$OS" <<UNIT
[Unit]
Description=heartbeatd system test: a oneshot job that beats hb-oneshot and never ends

[Service]
Type=oneshot
User=nobody
RuntimeDirectory=hb-test-oneshot
ExecStart=$HELPERS/hb-test-job.sh hb-oneshot /run/hb-test-oneshot
UNIT
cat >"$ROOT$CONF_D/76-hb-system-test-service.conf" <<CONF
[monitor]
timeout-threshold=6s

[agent:hb-svc]
task=a service with no run timeout
unit=$SV
stale-threshold=3s

[agent:hb-oneshot]
task=a job that runs too long
unit=$OS
stale-threshold=3s

[agent:hb-later]
unit=$LT
stale-threshold=3s

[alert:svc-restart]
agents=hb-svc,hb-later
restart-unit=
cooldown=1s
CONF
chmod 0644 "$ROOT/etc/systemd/system/$SV" "$ROOT/etc/systemd/system/$OS" "$ROOT/etc/systemd/system/$LT" \
  "$ROOT$CONF_D/76-hb-system-test-service.conf"
in_ct systemctl daemon-reload
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

# agent_is ID STATE STATUS [ACTIVE-STATE]
agent_is () {
  agent_json "$1" && [ "$(wj state)" = "$2" ] && [ "$(wj status)" = "$3" ] &&
    { [ -z "${4:-}" ] || [ "$(wj unit.active-state)" = "$4" ]; }
}
history_of () {
  in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/$1/history" 2>/dev/null | sed '$d' |
    "$PY" -c 'import json,sys; print(" ".join(e["state"] for e in json.load(sys.stdin)["history"]))'
}
svc_diag () {
  for a in hb-svc hb-oneshot hb-later; do agent_json "$a"; echo "GET /v1/agents/$a: $WJ"; done
  in_ct journalctl -b -q --no-pager -u heartbeatd -n 15 2>&1
}

# declared, its unit not started yet: waiting, not gone, no alert
if poll 15 agent_is hb-later no-heartbeat waiting inactive; then
  ok "[agent:hb-later] unit=$LT declared before its unit started: no-heartbeat, status waiting, unit inactive (not gone)"
else
  not_ok "a unit declared before it started waits, not gone" "$(svc_diag)"
fi

# the service, then the job; the job must time out at 6 s
in_ct systemctl start "$SV"
poll 15 agent_is hb-svc healthy running active
inv0=$(in_ct systemctl show -P InvocationID "$SV")
in_ct systemctl start --no-block "$OS"
# (its next beat starts a new run at once, so the journal tells, not the state)
oneshot_timed_out () {
  in_ct journalctl -b -q --no-pager -u heartbeatd 2>/dev/null | grep -q 'Agent hb-oneshot timed out after running for'
}
if poll 15 agent_is hb-oneshot healthy running activating && poll 30 oneshot_timed_out; then
  ok "timeout-threshold=6s: the Type=oneshot job hb-oneshot, still running, is timed out"
else
  not_ok "the oneshot job times out at the default threshold" "$(svc_diag)"
fi
hist=$(history_of hb-svc)
inv1=$(in_ct systemctl show -P InvocationID "$SV")
journal_svc=$(in_ct journalctl -b -q --no-pager -u heartbeatd 2>&1 | grep -E 'hb-svc (timed out|is now timed-out)|restarting hb-test-svc' || true)
if agent_is hb-svc healthy running active && [ "$hist" = "no-heartbeat healthy" ] && [ -n "$inv0" ] &&
   [ "$inv0" = "$inv1" ] && [ "$(wj timeout-after-usec)" = 0 ] && [ -z "$journal_svc" ] &&
   [ "$(wj running-usec)" -ge 6000000 ]; then
  ok "the service hb-svc, beating for $(( $(wj running-usec) / 1000 )) ms, past the 6 s default, is healthy (history: $hist), has no run timeout, and its unit was never restarted"
else
  not_ok "a beating service never times out and is never restarted" "history: $hist" \
    "InvocationID $inv0 -> $inv1" "journal: $journal_svc" "$(svc_diag)"
fi

# hb-later: no gone, no alert; started, healthy
later_journal=$(in_ct journalctl -b -q --no-pager -u heartbeatd 2>&1 | grep -E 'hb-later (is now gone|.*gone)|restarting hb-test-later' || true)
in_ct systemctl start "$LT"
if [ -z "$later_journal" ] && poll 15 agent_is hb-later healthy running active && [ "$(history_of hb-later)" = "no-heartbeat healthy" ]; then
  ok "hb-later: no gone and no alert while it waited; started, it is healthy (history: no-heartbeat healthy)"
else
  not_ok "hb-later waits without an alert, then is healthy" "journal: $later_journal" "history: $(history_of hb-later)" "$(svc_diag)"
fi

# stopped: gone, with the status stopped (not running)
in_ct systemctl stop "$LT"
if poll 15 agent_is hb-later gone stopped inactive; then
  ok "systemctl stop $LT: hb-later is gone, status stopped"
else
  not_ok "a stopped service is gone with the status stopped" "$(svc_diag)"
fi

in_ct systemctl stop "$SV" "$OS" "$LT" 2>/dev/null
in_ct systemctl reset-failed "$SV" "$OS" "$LT" 2>/dev/null
rm -f "$ROOT/etc/systemd/system/$SV" "$ROOT/etc/systemd/system/$OS" "$ROOT/etc/systemd/system/$LT" \
  "$ROOT$CONF_D/76-hb-system-test-service.conf"
in_ct systemctl daemon-reload
in_ct systemctl reload heartbeatd.service

# Event streams are limited per local user (8 each, 64 in all), told by
# the uid that owns the client's socket, not by its address: with nobody's
# eight streams open, a ninth of nobody's is refused, and another user's
# dashboard on the same 127.0.0.1 still connects. (Under PrivateUsers=yes
# every other user's socket would read as nobody's: the unit has none.)
install -m 0755 "$SRCDIR/hb-test-sse.py" "$ROOT$HELPERS/hb-test-sse.py"
sse_out=$T/sse-nobody.out
as_nobody "$PY" "$HELPERS/hb-test-sse.py" 8 20 8765 >"$ROOT$sse_out" 2>&1 &
sse_pid=$!
sse_opened () { [ -s "$ROOT$sse_out" ]; }
poll 10 sse_opened
nobody_codes=$(cat "$ROOT$sse_out")
ninth=$(as_nobody "$PY" "$HELPERS/hb-test-sse.py" 1 0 8765 2>&1)
other=$(in_ct setpriv --reuid=1002 --regid=1002 --clear-groups "$PY" "$HELPERS/hb-test-sse.py" 1 0 8765 2>&1)
in_ct pkill -f hb-test-sse.py
wait "$sse_pid" 2>/dev/null
if [ "$nobody_codes" = "200 200 200 200 200 200 200 200" ] && [ "$ninth" = 503 ] && [ "$other" = 200 ]; then
  ok "event streams per local user: nobody's 8 are open and its ninth is refused (503); uid 1002's dashboard connects (200)"
else
  not_ok "event streams are limited per local user, not per address" "nobody: $nobody_codes; its ninth: $ninth; uid 1002: $other" \
    "PrivateUsers=$(prop PrivateUsers)" "$(in_ct journalctl -b -q --no-pager -u heartbeatd -n 5 2>&1)"
fi

# hbctl when heartbeatd cannot start: masked, D-Bus activation is refused;
# every verb exits 3 (hbctl --help's "not running") with one sentence that
# says what to do, and no raw StartServiceByName error
in_ct systemctl mask --runtime heartbeatd.service >/dev/null 2>&1
in_ct systemctl stop heartbeatd.service
st_out=$(in_ct hbctl status 2>&1); st_rc=$?
beat_out=$(in_ct hbctl beat hb-svc 2>&1); beat_rc=$?
in_ct systemctl unmask --runtime heartbeatd.service >/dev/null 2>&1
in_ct systemctl start heartbeatd.service
if [ $st_rc -eq 3 ] && [ $beat_rc -eq 3 ] && [[ "$st_out" == *"systemctl unmask heartbeatd"* ]] &&
   [[ "$st_out$beat_out" != *StartServiceByName* ]] && [ "$(prop ActiveState)" = active ]; then
  ok "heartbeatd masked: hbctl status and hbctl beat exit 3: $(head -n1 <<<"$st_out")"
else
  not_ok "hbctl exits 3 with a sentence when heartbeatd is masked" "status rc=$st_rc: $st_out" "beat rc=$beat_rc: $beat_out" \
    "heartbeatd now: $(prop ActiveState)"
fi

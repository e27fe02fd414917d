# tests/system/timer-checks.sh: sourced by run-system-tests.sh, in the
# booted container, after service-checks.sh (it uses the helpers of the
# parts before it: in_ct, poll, ok, not_ok, diag, agent_json, wj,
# $HELPERS, $CONF_D, $HTTP_LO, $PY, $ROOT, $SRCDIR).
#
# Jobs that a systemd timer starts: for [agent:ID] unit=X.service where
# X.timer triggers X, heartbeatd follows the timer too and judges the
# agent as a job on the timer's schedule. Four Type=oneshot services, each
# with an enabled timer (AccuracySec=1s), are declared at once and run side
# by side (the part takes seconds):
#   hb-tjob-ok     OnCalendar= every 5 s, a job that succeeds: after a run
#                  the agent is healthy and idle, its last run a success,
#                  its next due time (next-due-usec) the timer's next
#                  elapse (unit.next-elapse-usec), after now;
#   hb-tjob-miss   OnActiveSec=5s, grace=2s: the timer is stopped once
#                  heartbeatd knows the elapse and before it comes, and
#                  heartbeatd reloads (the elapse stays due); the run it
#                  owed is missed: the agent is stale with late-due-usec
#                  the elapse it had announced, a missed run record, and
#                  [alert:timer-missed]'s exec= runs; not before the elapse
#                  plus the grace (2 s + the timer's 1 s accuracy);
#   hb-tjob-fail   OnActiveSec=1s, a job that exits 1: the agent is in
#                  error, its last run a failure with exit status 1;
#   hb-tjob-slow   OnActiveSec=1s, timeout-threshold=2s, a job that sleeps
#                  30 s: its run is timed out;
#   hb-tjob-late   OnActiveSec=1s, its timer not enabled (systemd loads it
#                  only when started): heartbeatd learns the timer when the
#                  service starts, records the run, schedules the job with
#                  the default grace.
# Then heartbeatd restarts: the failed job is still in error with its one
# run record, and no run is recorded twice.
# The first four timers are enabled (as an admin installs a timer), so that
# systemd has loaded them when heartbeatd reads the services' TriggeredBy.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

TJ_START=$(date +%s.%N)
TJOBS="ok miss fail slow late"
TJ_ENABLED="ok miss fail slow"
tj_unit () { echo "hb-tjob-$1.service"; }
tj_timer () { echo "hb-tjob-$1.timer"; }
declare -A TJ_EXEC=(
  [ok]="/bin/sleep 0.3"
  [miss]="/bin/true"
  [fail]="/bin/sh -c 'sleep 0.3; exit 1'"
  [slow]="/bin/sleep 30"
  [late]="/bin/sleep 0.3"
)
declare -A TJ_WHEN=(
  [ok]="OnCalendar=*:*:0/5"
  [miss]="OnActiveSec=5s"
  [fail]="OnActiveSec=1s"
  [slow]="OnActiveSec=1s"
  [late]="OnActiveSec=1s"
)
for j in $TJOBS; do
  cat >"$ROOT/etc/systemd/system/$(tj_unit "$j")" <<UNIT
[Unit]
Description=heartbeatd system test: a job its timer starts ($j)

[Service]
Type=oneshot
User=nobody
ExecStart=${TJ_EXEC[$j]}
UNIT
  cat >"$ROOT/etc/systemd/system/$(tj_timer "$j")" <<UNIT
[Unit]
Description=heartbeatd system test: the timer of hb-tjob-$j

[Timer]
${TJ_WHEN[$j]}
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
  chmod 0644 "$ROOT/etc/systemd/system/$(tj_unit "$j")" "$ROOT/etc/systemd/system/$(tj_timer "$j")"
done
cat >"$ROOT$CONF_D/77-hb-system-test-timers.conf" <<CONF
[agent:hb-tjob-ok]
task=a job its timer starts
unit=$(tj_unit ok)
grace=2s

[agent:hb-tjob-miss]
task=a job whose timer is stopped
unit=$(tj_unit miss)
grace=2s

[agent:hb-tjob-fail]
unit=$(tj_unit fail)

[agent:hb-tjob-slow]
unit=$(tj_unit slow)
timeout-threshold=2s

[agent:hb-tjob-late]
unit=$(tj_unit late)

[alert:timer-missed]
events=stale
agents=hb-tjob-miss
exec=$HELPERS/hb-test-alert-exec.sh
CONF
chmod 0644 "$ROOT$CONF_D/77-hb-system-test-timers.conf"
rm -f "$ROOT/var/log/heartbeat/hb-test-exec.stale.env"
out=$(in_ct systemctl enable $(for j in $TJ_ENABLED; do tj_timer "$j"; done) 2>&1) || diag "systemctl enable: $out"
in_ct systemctl daemon-reload
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

# tj NAME: agent hb-tjob-NAME's JSON object into $WJ (agent_json), for wj
# (not in a $(...): WJ must be set in this shell)
tj () { agent_json "hb-tjob-$1"; }
tj_diag () {
  local j
  for j in "$@"; do
    agent_json "hb-tjob-$j"
    echo "GET /v1/agents/hb-tjob-$j: $WJ"
    echo "$(tj_unit "$j"): $(in_ct systemctl show -P ActiveState "$(tj_unit "$j")") Result=$(in_ct systemctl show -P Result "$(tj_unit "$j")") ExecMainStatus=$(in_ct systemctl show -P ExecMainStatus "$(tj_unit "$j")"); $(tj_timer "$j"): $(in_ct systemctl show -P ActiveState "$(tj_timer "$j")") NextElapseUSecRealtime=$(in_ct systemctl show -P NextElapseUSecRealtime "$(tj_timer "$j")")"
  done
  in_ct journalctl -b -q --no-pager -u heartbeatd -n 10 2>&1
}
now_usec () { echo $(( $(date +%s%N) / 1000 )); }

# declared: the services' timers are known before any of them starts
tj_declared () {
  local j
  for j in $TJ_ENABLED; do
    agent_json "hb-tjob-$j" && [ "$(wj unit.timer)" = "$(tj_timer "$j")" ] || return 1
  done
}
if poll 15 tj_declared; then
  ok "four [agent:hb-tjob-*] unit=hb-tjob-*.service: heartbeatd names each service's timer (unit.timer hb-tjob-*.timer, from TriggeredBy)"
else
  not_ok "heartbeatd follows the timer of a timer-driven unit" "$(tj_diag ok miss fail slow)"
fi

# (e) hb-tjob-late's timer is not enabled: systemd loads it only when it
# is started, and says so in the service's TriggeredBy, which it never
# sends in PropertiesChanged; heartbeatd learns it when the service starts
tj late
late_before=$(wj unit.timer)/$(wj state)/$(wj status)

# (b) first: its timer is stopped once heartbeatd knows the elapse, before it comes
in_ct systemctl start "$(tj_timer miss)" "$(tj_timer ok)" "$(tj_timer fail)" "$(tj_timer slow)"
miss_known () { tj miss && [ "$(wj next-due-usec)" -gt 0 ] 2>/dev/null && [ "$(wj unit.next-elapse-usec)" = "$(wj next-due-usec)" ]; }
poll 15 miss_known
miss_due=$(wj next-due-usec)
miss_state=$(wj state)/$(wj status)
miss_grace=$(wj grace-usec)
in_ct systemctl stop "$(tj_timer miss)"
miss_stopped_at=$(now_usec)
# heartbeatd reloads its configuration meanwhile: the elapse it was told
# stays due (the timer no longer announces it)
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"
miss_kept () { tj miss && [ "$(wj next-due-usec)" = "$miss_due" ] && [ "$(wj unit.timer)" = "$(tj_timer miss)" ]; }
poll 15 miss_kept
miss_after_reload=$(wj next-due-usec)
# (e) started after that reload: no reload reads its TriggeredBy again
in_ct systemctl start "$(tj_timer late)"

# (c) a run that exits 1: error, exit status 1, its times systemd's
# sd_prop NAME PROPERTY: a property of the Service interface of
# hb-tjob-NAME.service as systemd has it (µs for a timestamp)
sd_prop () {
  in_ct busctl --system get-property org.freedesktop.systemd1 "/org/freedesktop/systemd1/unit/hb_2dtjob_2d$1_2eservice" \
    org.freedesktop.systemd1.Service "$2" 2>/dev/null | cut -d' ' -f2
}
tj_failed () {
  tj fail && [ "$(wj state)" = error ] && [ "$(wj last-run.result)" = failure ] && [ "$(wj last-run.exit-status)" = 1 ] &&
    [ "$(wj unit.exit-status)" = 1 ]
}
if poll 20 tj_failed && [ "$(wj last-run.started-usec)" = "$(sd_prop fail ExecMainStartTimestamp)" ] &&
   [ "$(wj last-run.ended-usec)" = "$(sd_prop fail ExecMainExitTimestamp)" ]; then
  ok "$(tj_unit fail) (its timer fired) exited 1: hb-tjob-fail is in error, status $(wj status), its last run a failure with exit status 1, started and ended when systemd says its main process did ($(( $(wj last-run.duration-usec) / 1000 )) ms)"
else
  not_ok "a timer-driven run that exits 1 makes the agent error with exit status 1, at systemd's times" \
    "ExecMainStartTimestamp $(sd_prop fail ExecMainStartTimestamp) ExecMainExitTimestamp $(sd_prop fail ExecMainExitTimestamp)" "$(tj_diag fail)"
fi

# (d) a run past its timeout (2 s): timed out, and still so once it ends
tj_timed_out () { tj slow && [ "$(wj state)" = timed-out ] && [ "$(wj last-run.result)" = timed-out ]; }
if poll 20 tj_timed_out; then
  started=$(wj last-run.started-usec)
  in_ct systemctl stop "$(tj_unit slow)"
  slow_ended () { tj slow && [ "$(wj last-run.result)" = timed-out ] && [ -n "$(wj last-run.ended-usec)" ]; }
  if poll 15 slow_ended && [ "$(wj last-run.started-usec)" = "$started" ]; then
    ok "$(tj_unit slow) (sleep 30, timeout-threshold=2s) is timed out while it runs; stopped, its run record ends and stays timed-out"
  else
    not_ok "a stopped timed-out run keeps its result" "$(tj_diag slow)"
  fi
else
  not_ok "a timer-driven run past its timeout is timed-out" "$(tj_diag slow)"
fi

# (a) a run that succeeds: healthy and idle, its next due time shown
tj_ran_ok () {
  tj ok && [ "$(wj state)" = healthy ] && [ "$(wj status)" = idle ] && [ "$(wj last-run.result)" = success ] &&
    [ "$(wj next-due-usec)" -gt "$(now_usec)" ] 2>/dev/null && [ "$(wj unit.next-elapse-usec)" = "$(wj next-due-usec)" ]
}
if poll 20 tj_ran_ok; then
  ok "$(tj_unit ok) ran on its timer (OnCalendar=*:*:0/5): hb-tjob-ok is healthy and idle, last run success (due $(wj last-run.due-usec), started $(wj last-run.started-usec)), next-due-usec $(wj next-due-usec) = the timer's next elapse, after now"
else
  not_ok "a timer-driven run that succeeds leaves the agent healthy, idle, with its next due time" "$(tj_diag ok)"
fi

# (b) the missed run: stale, late since the due time it had, the alert
missed () {
  tj miss && [ "$(wj state)" = stale ] && [ "$(wj late-due-usec)" = "$miss_due" ] && [ "$(wj last-run.result)" = missed ] &&
    [ "$(wj last-run.due-usec)" = "$miss_due" ] && [ -z "$(wj unit.next-elapse-usec)" ] &&
    grep -qx "HB_AGENT=hb-tjob-miss" "$ROOT/var/log/heartbeat/hb-test-exec.stale.env" 2>/dev/null
}
if [ "$miss_state" = healthy/idle ] && [ "$miss_stopped_at" -lt "${miss_due:-0}" ] 2>/dev/null &&
   [ "$miss_after_reload" = "$miss_due" ] && poll 30 missed; then
  alerted=$(now_usec)
  stale_at=$(in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/hb-tjob-miss/history" 2>/dev/null | sed '$d' |
    "$PY" -c 'import json,sys; h=json.load(sys.stdin)["history"]; print(h[-1]["at-usec"] if h[-1]["state"] == "stale" else 0)' 2>/dev/null)
  # (100 ms for the monitor's reading of two clocks)
  if [ "${stale_at:-0}" -ge $(( miss_due + miss_grace - 100000 )) ] 2>/dev/null; then
    ok "$(tj_timer miss) stopped before its elapse, heartbeatd reloaded: hb-tjob-miss was healthy/idle with the elapse still due, then stale with late-due-usec = the announced $miss_due, a missed run record, and [alert:timer-missed] ran; stale $(( (stale_at - miss_due) / 1000 )) ms after the due time (grace $(( miss_grace / 1000 )) ms = 2 s + AccuracySec=1s), the alert seen $(( (alerted - miss_due) / 1000 )) ms after it"
  else
    not_ok "a missed run is not judged before its due time plus the grace" "stale at $stale_at, due $miss_due, grace $miss_grace" "$(tj_diag miss)"
  fi
else
  not_ok "a timer stopped before its elapse: the missed run makes the agent stale and an alert fires" \
    "before the stop: $miss_state, due $miss_due, stopped at $miss_stopped_at; due after the reload: $miss_after_reload" \
    "exec env: $(cat "$ROOT/var/log/heartbeat/hb-test-exec.stale.env" 2>&1 | tr '\n' ' ')" "$(tj_diag miss)"
fi

# (e) the timer started but not enabled: known from the service's first run
late_ran () {
  tj late && [ "$(wj unit.timer)" = "$(tj_timer late)" ] && [ "$(wj last-run.result)" = success ] &&
    [ "$(wj state)" = healthy ] && [ "$(wj status)" = idle ] && [ "$(wj grace-usec)" = 601000000 ]
}
if [ "$late_before" = /healthy/idle ] && poll 20 late_ran; then
  ok "$(tj_timer late) started, not enabled: heartbeatd learnt it when $(tj_unit late) started (unit.timer), recorded the run (success) and gave the job the timer's schedule with the default grace (10 min + AccuracySec=1s = $(wj grace-usec) µs)"
else
  not_ok "a timer loaded after heartbeatd read its service is learnt at the service's start" "before: $late_before" "$(tj_diag late)"
fi

# heartbeatd restarts: it reads the units again, and a run it recorded
# already (restored from its state) is not recorded twice
tj_runs () { # tj_runs NAME: "RESULT:STARTED-USEC ..." of GET /v1/agents/hb-tjob-NAME/runs
  in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/hb-tjob-$1/runs" 2>/dev/null | sed '$d' |
    "$PY" -c 'import json,sys; print(" ".join("%s:%s" % (r["result"], r.get("started-usec", "-")) for r in json.load(sys.stdin)))' 2>/dev/null
}
fail_runs0=$(tj_runs fail)
in_ct systemctl restart heartbeatd.service
restarted () {
  tj fail && [ "$(wj unit.timer)" = "$(tj_timer fail)" ] && [ "$(wj unit.active-state)" = failed ] &&
    tj ok && [ "$(wj unit.timer)" = "$(tj_timer ok)" ] && [ "$(wj next-due-usec)" -gt "$(now_usec)" ] 2>/dev/null
}
no_twice () { # no_twice RUNS: no two records started at the same moment
  [ -z "$(tr ' ' '\n' <<<"$1" | grep -v ':-$' | cut -d: -f2 | sort | uniq -d)" ]
}
if poll 20 restarted && tj fail && [ "$(wj state)" = error ] && fail_runs1=$(tj_runs fail) &&
   [ "$fail_runs1" = "$fail_runs0" ] && [ "$(grep -o 'failure:' <<<"$fail_runs1" | wc -l)" = 1 ] &&
   ok_runs=$(tj_runs ok) && [ -n "$ok_runs" ] && no_twice "$ok_runs"; then
  ok "systemctl restart heartbeatd: hb-tjob-fail is still in error with its one failed run ($fail_runs1), hb-tjob-ok's runs are each recorded once ($(wc -w <<<"$ok_runs") runs) and its next due time is known again"
else
  not_ok "after a restart of heartbeatd the timer-driven jobs' runs are not recorded twice" \
    "hb-tjob-fail runs before: $fail_runs0; after: ${fail_runs1:-}" "hb-tjob-ok runs: ${ok_runs:-}" "$(tj_diag fail ok)"
fi

# hbctl show of a timer-driven job, as README shows it: its timer's next
# elapse as the next run, its runs; and of the job whose timer was stopped:
# late since the elapse it had announced
show_ok=$(in_ct env TZ=UTC hbctl --no-color show hb-tjob-ok 2>&1)
show_miss=$(in_ct env TZ=UTC hbctl --no-color show hb-tjob-miss 2>&1)
if grep -q '^Next run: *[A-Z][a-z][a-z] 20[0-9][0-9]-' <<<"$show_ok" && grep -q '^Runs: .* success ' <<<"$show_ok" &&
   grep -q '^Unit: *hb-tjob-ok.service' <<<"$show_ok" && grep -q '^Late since: ' <<<"$show_miss" &&
   grep -q ' missed$' <<<"$show_miss"; then
  ok "hbctl show of a timer-driven job says its next run and its runs; of the one whose timer was stopped, since when it is late"
  diag "$show_ok"
  diag "$show_miss"
else
  not_ok "hbctl show of the timer-driven jobs" "$show_ok" "$show_miss"
fi

# the end of this part
in_ct systemctl disable --now $(for j in $TJOBS; do tj_timer "$j"; done) >/dev/null 2>&1
in_ct systemctl stop $(for j in $TJOBS; do tj_unit "$j"; done) 2>/dev/null
in_ct systemctl reset-failed $(for j in $TJOBS; do tj_unit "$j"; tj_timer "$j"; done) 2>/dev/null
for j in $TJOBS; do rm -f "$ROOT/etc/systemd/system/$(tj_unit "$j")" "$ROOT/etc/systemd/system/$(tj_timer "$j")"; done
rm -f "$ROOT$CONF_D/77-hb-system-test-timers.conf"
in_ct systemctl daemon-reload
in_ct systemctl reload heartbeatd.service
diag "timer-driven jobs: $("$PY" -c 'import sys, time; print("%.1f s" % (time.time() - float(sys.argv[1])))' "$TJ_START")"

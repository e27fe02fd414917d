# tests/system/pause-checks.sh: sourced by run-system-tests.sh, in the
# booted container, after the timer-driven jobs' part (it uses the
# helpers defined before: in_ct, as_nobody, poll, ok, not_ok, diag,
# agent_json, wj, http_code, jcursor, unit_log, prop, $HELPERS, $CONF_D,
# $HTTP_LO, $SRCDIR, $ROOT, $PY).
#
# Pausing an agent (maintenance) as installed, with the real polkitd:
#  - uid 65534 pauses (with a reason) and resumes its own agent;
#  - it may not pause root's agent: the real polkitd refuses (the
#    default, auth_admin, without an agent to ask), AccessDenied, nothing
#    paused; with 50-hb-test.rules (uid 65534 may manage) it may, and
#    resume it;
#  - hb-paused, a unit= service whose alert restarts its unit when it is
#    stale, paused and then hung (no beats): past its stale threshold (an
#    agent registered after the hang with a longer threshold went stale)
#    it is still paused, its unit was not restarted (the same
#    InvocationID) and the journal has no stale, alert or restart for it;
#    resumed, it goes stale from the resume and its unit is restarted;
#  - a pause survives `systemctl restart heartbeatd` (paused, its reason,
#    its time and its tags=), the history marks the restart "unmonitored",
#    and it stays silent after the restart.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

P=hb-test-paused.service
PHANG=/run/hb-test-paused-hang
cat >"$ROOT/etc/systemd/system/$P" <<UNIT
[Unit]
Description=heartbeatd system test: a service that beats hb-paused

[Service]
Type=simple
User=nobody
ExecStartPre=+/bin/rm -f $PHANG
ExecStart=$HELPERS/hb-test-worker.sh hb-paused $PHANG
Restart=no
UNIT
cat >"$ROOT$CONF_D/78-hb-system-test-pause.conf" <<CONF
[agent:hb-paused]
task=a service paused for maintenance
unit=$P
stale-threshold=2s
tags=system-test, maintenance

[alert:paused-restart]
events=stale
agents=hb-paused
restart-unit=
cooldown=1s
CONF
chmod 0644 "$ROOT/etc/systemd/system/$P" "$ROOT$CONF_D/78-hb-system-test-pause.conf"
in_ct systemctl daemon-reload
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

pprop () { in_ct systemctl show -P "$1" "$P"; }
# paused_is ID BY-UID REASON: paused, by that uid, with that reason, since a time
paused_is () {
  agent_json "$1" && [ "$(wj state)" = paused ] && [ "$(wj paused-by-uid)" = "$2" ] &&
    [ "$(wj paused-reason)" = "$3" ] && [ "$(wj paused-at-usec)" -gt 0 ] 2>/dev/null
}
# not_paused ID [STATE]: not paused (and in STATE)
not_paused () {
  agent_json "$1" && [ "$(wj state)" != paused ] && [ "$(wj paused-at-usec)" = 0 ] &&
    { [ -z "${2:-}" ] || [ "$(wj state)" = "$2" ]; }
}
state_is () { agent_json "$1" && [ "$(wj state)" = "$2" ]; }
pause_diag () {
  local a
  for a in "$@"; do agent_json "$a"; echo "GET /v1/agents/$a: $WJ"; done
  in_ct journalctl -b -q --no-pager -u heartbeatd -n 12 2>&1
}
# Pause and Resume over D-Bus as uid 65534, with gdbus (its errors name
# the D-Bus error)
nobody_pause () {
  as_nobody gdbus call --system --dest org.heartbeat.Monitor1 --object-path /org/heartbeat/Monitor1 \
    --method org.heartbeat.Monitor1.Pause "$1" "{'reason': <'$2'>}" 2>&1
}
nobody_resume () {
  as_nobody gdbus call --system --dest org.heartbeat.Monitor1 --object-path /org/heartbeat/Monitor1 \
    --method org.heartbeat.Monitor1.Resume "$1" 2>&1
}

# (1) uid 65534 pauses and resumes its own agent, with hbctl
out=$(as_nobody hbctl register sys-p-own --stale 1h 2>&1 && as_nobody hbctl beat sys-p-own 2>&1 &&
      as_nobody hbctl pause sys-p-own --reason "nightly maintenance" 2>&1)
rc=$?
if [ $rc -eq 0 ] && paused_is sys-p-own 65534 "nightly maintenance"; then
  out2=$(as_nobody hbctl resume sys-p-own 2>&1)
  rc2=$?
  if [ $rc2 -eq 0 ] && not_paused sys-p-own healthy; then
    ok "hbctl as uid 65534: pause --reason of its own agent (paused, paused-by-uid 65534, its reason), then resume (healthy)"
  else
    not_ok "hbctl as uid 65534: resume of its own paused agent" "rc=$rc2 $out2" "$(pause_diag sys-p-own)"
  fi
else
  not_ok "hbctl as uid 65534: pause of its own agent" "rc=$rc $out" "$(pause_diag sys-p-own)"
fi
as_nobody hbctl unregister sys-p-own >/dev/null 2>&1

# (2) uid 65534 may not pause root's agent: polkitd's answer (no rule, the
# default auth_admin, no agent to ask)
out=$(nobody_pause sys-root "not yours")
rc=$?
if [ $rc -ne 0 ] && grep -q 'org.heartbeat.Monitor1.Error.AccessDenied' <<<"$out" &&
   grep -q 'org.heartbeat.monitor1.manage' <<<"$out" && not_paused sys-root &&
   [ "$(in_ct systemctl show -P ActiveState polkit.service)" = active ]; then
  ok "Pause of root's sys-root by uid 65534 without a polkit rule: AccessDenied by polkitd, not paused"
else
  not_ok "Pause of root's agent by uid 65534 without polkit rights is refused (AccessDenied)" "gdbus rc=$rc: $out" \
    "polkit.service: $(in_ct systemctl show -P ActiveState polkit.service)" "$(pause_diag sys-root)"
fi

# (3) ... and with 50-hb-test.rules (uid 65534 may manage) it may, and
# resume it
install -m 0644 "$SRCDIR/50-hb-test.rules" "$ROOT/etc/polkit-1/rules.d/50-hb-test.rules"
pause_as_admin () { out=$(nobody_pause sys-root "admin maintenance"); }
# polkitd re-reads rules.d on its own (inotify); give it a bounded while.
if poll 10 pause_as_admin && paused_is sys-root 65534 "admin maintenance"; then
  out=$(nobody_resume sys-root)
  rc=$?
  if [ $rc -eq 0 ] && not_paused sys-root; then
    ok "polkit, rule 50-hb-test.rules: uid 65534 pauses root's sys-root (paused-by-uid 65534) and resumes it"
  else
    not_ok "polkit, rule 50-hb-test.rules: uid 65534 resumes root's sys-root" "gdbus rc=$rc: $out" "$(pause_diag sys-root)"
  fi
else
  not_ok "polkit, rule 50-hb-test.rules: uid 65534 may pause root's agent" "gdbus: $out" "$(pause_diag sys-root)" \
    "$(in_ct journalctl -b -u polkit --no-pager -n 5 2>&1)"
fi
rm -f "$ROOT/etc/polkit-1/rules.d/50-hb-test.rules"

# (4) a paused service that hangs is not judged: no stale, no alert, no
# restart of its unit; resumed, it is
in_ct systemctl start "$P"
if poll 15 state_is hb-paused healthy && out=$(in_ct hbctl pause hb-paused --reason "disk swap" 2>&1) &&
   paused_is hb-paused 0 "disk swap"; then
  inv0=$(pprop InvocationID)
  cursor=$(jcursor)
  in_ct touch "$PHANG"
  # the control: registered after the hang, it never beats, and its
  # threshold is longer than hb-paused's
  in_ct hbctl register sys-p-control --stale 3s >/dev/null 2>&1
  if poll 20 state_is sys-p-control stale; then
    about=$(unit_log "$cursor" | grep -E 'hb-paused|paused-restart' | grep -iE 'stale|restart|alert|timed' || true)
    if paused_is hb-paused 0 "disk swap" && [ "$(pprop InvocationID)" = "$inv0" ] &&
       [ "$(pprop ActiveState)" = active ] && [ -z "$about" ]; then
      ok "unit=$P paused, then hung past its 2 s threshold (sys-p-control, 3 s, went stale): still paused, no stale, no alert, its unit not restarted"
    else
      not_ok "a paused service that hangs gets no stale, alert or restart" "journal about it: $about" \
        "InvocationID $inv0 -> $(pprop InvocationID), $(pprop ActiveState)" "$(pause_diag hb-paused)"
    fi
  else
    not_ok "the control agent sys-p-control goes stale" "$(pause_diag sys-p-control hb-paused)"
  fi
  # resumed: judged from the resume, stale, its unit restarted by the alert
  # (ExecStartPre= removes the hang file)
  in_ct hbctl resume hb-paused >/dev/null 2>&1
  p_restarted () {
    local now
    now=$(pprop InvocationID)
    [ -n "$now" ] && [ "$now" != "$inv0" ] && [ "$(pprop ActiveState)" = active ] &&
      unit_log "$cursor" | grep -qF "[alert:paused-restart] restarting $P for agent hb-paused: done"
  }
  if poll 20 p_restarted && poll 15 state_is hb-paused healthy; then
    ok "hbctl resume hb-paused: still hung, it went stale from the resume and the alert restarted $P; healthy again"
  else
    not_ok "resumed, the hung service goes stale and is restarted" \
      "InvocationID $inv0 -> $(pprop InvocationID), $(pprop ActiveState)" "$(pause_diag hb-paused)"
  fi
  in_ct hbctl unregister sys-p-control >/dev/null 2>&1
else
  not_ok "unit=$P started: hb-paused healthy, then paused by root" "hbctl pause: ${out:-}" "$(pause_diag hb-paused)"
fi

# (5) the pause survives a restart of heartbeatd: paused, its reason, its
# time, its tags; the history says nobody watched during the restart; and
# it stays silent after it
p_history () {
  in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/hb-paused/history" 2>/dev/null | sed '$d' |
    "$PY" -c 'import json,sys; print(" ".join(e["state"] for e in json.load(sys.stdin)["history"]))' 2>/dev/null
}
if poll 15 state_is hb-paused healthy && in_ct hbctl pause hb-paused --reason "kernel upgrade" >/dev/null 2>&1 &&
   paused_is hb-paused 0 "kernel upgrade"; then
  at0=$(wj paused-at-usec)
  pid0=$(prop MainPID)
  inv0=$(pprop InvocationID)
  in_ct touch "$PHANG"
  cursor=$(jcursor)
  out=$(in_ct systemctl restart heartbeatd.service 2>&1)
  rc=$?
  p_back () { [ "$(prop MainPID)" != "$pid0" ] && agent_json hb-paused; }
  hist=""
  if [ $rc -eq 0 ] && poll 15 p_back && paused_is hb-paused 0 "kernel upgrade" && [ "$(wj paused-at-usec)" = "$at0" ] &&
     [ "$(wj tags)" = "['maintenance', 'system-test']" ] && hist=$(p_history) && [[ "$hist" == *" paused unmonitored paused" ]]; then
    ok "systemctl restart heartbeatd: hb-paused is still paused (reason, paused-at-usec $at0, tags kept); its history ends: $(awk '{print $(NF-2), $(NF-1), $NF}' <<<"$hist")"
  else
    not_ok "a pause survives systemctl restart heartbeatd, the restart is unmonitored in the history" "restart rc=$rc $out" \
      "paused-at-usec $at0 -> $(wj paused-at-usec); tags $(wj tags)" "history: $hist" "$(pause_diag hb-paused)"
  fi
  in_ct hbctl register sys-p-control --stale 3s >/dev/null 2>&1
  if poll 20 state_is sys-p-control stale; then
    about=$(unit_log "$cursor" | grep -E 'hb-paused|paused-restart' | grep -iE 'stale|restart|alert|timed' || true)
    if paused_is hb-paused 0 "kernel upgrade" && [ "$(pprop InvocationID)" = "$inv0" ] && [ -z "$about" ]; then
      ok "after the restart the paused, hung hb-paused stays silent: no stale, no alert, its unit not restarted"
    else
      not_ok "after the restart a paused agent stays silent" "journal about it: $about" \
        "InvocationID $inv0 -> $(pprop InvocationID)" "$(pause_diag hb-paused)"
    fi
  else
    not_ok "the control agent sys-p-control goes stale after the restart" "$(pause_diag sys-p-control hb-paused)"
  fi
  in_ct hbctl unregister sys-p-control >/dev/null 2>&1
  in_ct hbctl resume hb-paused >/dev/null 2>&1
else
  not_ok "hb-paused healthy, then paused by root before the restart" "$(pause_diag hb-paused)"
fi

# the end of this part
in_ct systemctl stop "$P" 2>/dev/null
in_ct rm -f "$PHANG"
rm -f "$ROOT/etc/systemd/system/$P" "$ROOT$CONF_D/78-hb-system-test-pause.conf"
in_ct systemctl daemon-reload
in_ct systemctl reload heartbeatd.service

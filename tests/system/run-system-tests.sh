#!/usr/bin/env bash
# tests/system/run-system-tests.sh [BUILDDIR]: the system test tier.
#
# Tests the INSTALLED heartbeatd under a real systemd, system bus and polkitd:
#   1. `meson install --destdir STAGE` of BUILDDIR (default: ./build);
#   2. boots a container with systemd-nspawn --boot on an overlayfs whose
#      lower layer is the host's / (read-only) and whose upper layer is an
#      empty tmpfs, with a fresh /etc/machine-id and empty /tmp, /run,
#      /var/tmp and /var/log/journal;
#   3. installs STAGE into the running container as an admin would (copy the
#      tree, systemd-sysusers, systemctl daemon-reload, systemctl reload
#      dbus) and checks the service: start/STATUS=, hbctl as root and as uid
#      65534, journal fields, reload, bus activation, polkit with and without
#      a rule, restart-unit alerts, systemd-analyze security, the watchdog.
# Prints TAP. Needs root, systemd-nspawn (systemd-container), overlayfs and
# polkitd; without them it prints "1..0 # SKIP why" and exits 0. Everything
# it creates (mounts, the container, temp dirs) is removed on exit, also on
# failure and on SIGINT/SIGTERM/SIGHUP.
#
# Environment: HB_SYSTEM_KEEP=1 keeps the container running and prints how to
# enter it instead of tearing down (for debugging; remove it by hand).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
PY=/usr/bin/python3
SRCDIR=$(cd "$(dirname "$0")" && pwd)
BUILDDIR=${1:-$SRCDIR/../../build}
START_TIME=$(date +%s.%N)
SELF=$(readlink -f "$0")

# ---------------------------------------------------------------- teardown
#
# teardown undoes everything by pid and path: SIGKILL to the container's
# init (that ends its whole pid namespace; nothing in it needs to survive,
# the upper layer is a tmpfs), then nspawn, then both mounts, then WORK. It
# runs from the EXIT trap (also after SIGINT/SIGTERM/SIGHUP) and, should the
# runner itself be SIGKILLed (as meson does a moment after SIGTERM on a
# timeout), from a guard process in its own session that waits for the
# runner to die. What teardown needs is in $WORK/state.

teardown () { # teardown WORK
  local work=$1 NSPAWN_PID="" ROOT="" LAYERS="" i m child
  [ -f "$work/state" ] && . "$work/state"
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    # nspawn's children, looked up now: the container's init (or, early,
    # the helper that forks it)
    for child in $(pgrep -P "$NSPAWN_PID"); do kill -KILL "$child" 2>/dev/null; done
  fi
  if [ -n "$NSPAWN_PID" ]; then
    for i in $(seq 50); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      kill -KILL "$NSPAWN_PID" 2>/dev/null
      for i in $(seq 30); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  for m in "$ROOT" "$LAYERS"; do
    [ -n "$m" ] && mountpoint -q "$m" || continue
    umount "$m" 2>/dev/null || { sleep 0.5; umount "$m" 2>/dev/null; } || umount -l "$m" ||
      echo "# could not unmount $m" >&2
  done
  case "$work" in /tmp/hb-system.*) rm -rf --one-file-system "$work" ;; esac
}

if [ "${1:-}" = --guard ]; then # --guard RUNNER_PID WORK
  while kill -0 "$2" 2>/dev/null; do sleep 0.2; done
  teardown "$3"
  exit 0
fi

# ------------------------------------------------------------- skips

skip_all () { echo "1..0 # SKIP $*"; exit 0; }

[ "$(id -u)" -eq 0 ] || skip_all "needs root (mounts overlayfs, boots a container with systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip_all "systemd-nspawn is missing (Debian package systemd-container)"
[ -x /usr/lib/systemd/systemd ] || [ -x /lib/systemd/systemd ] || skip_all "systemd is not installed"
[ -x /usr/lib/polkit-1/polkitd ] || skip_all "polkitd is not installed (Debian package polkitd)"
[ -x /usr/bin/dbus-daemon ] || skip_all "dbus-daemon is not installed (Debian package dbus-daemon)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || skip_all "no overlayfs in this kernel"
[ -x "$PY" ] || skip_all "$PY is missing"
[ -d "$BUILDDIR" ] || { echo "Bail out! no build directory $BUILDDIR"; exit 1; }
BUILDDIR=$(cd "$BUILDDIR" && pwd)

# -------------------------------------------------------------- state

WORK=""
GUARD_PID=""
LEADER=""
NSPAWN_PID=""

save_state () { # NAME=VALUE... into $WORK/state
  local kv
  for kv in "$@"; do printf '%s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$WORK/state"; done
}

cleanup () {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ "${HB_SYSTEM_KEEP:-0}" = 1 ] && [ -n "$LEADER" ]; then
    [ -n "$GUARD_PID" ] && kill "$GUARD_PID" 2>/dev/null
    echo "# HB_SYSTEM_KEEP=1: container left running; enter it with: nsenter -t $LEADER -a bash" >&2
    echo "# tear down with: bash $SELF --guard 0 $WORK" >&2
    exit $rc
  fi
  [ -n "$WORK" ] && teardown "$WORK"
  [ -n "$GUARD_PID" ] && kill "$GUARD_PID" 2>/dev/null
  exit $rc
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM HUP

# ------------------------------------------------------------------- TAP

N=0
FAILED=0
ok () { N=$((N + 1)); echo "ok $N - $*"; }
not_ok () {
  N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"
  shift
  local line
  for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
bail () { echo "Bail out! $*"; exit 1; }
diag () { printf '%s\n' "$*" | sed 's/^/# /'; }

# A command inside the container, as root, with a clean environment, killed
# after 30 s (a D-Bus activation that fails takes 25 s to time out).
in_ct () {
  nsenter -t "$LEADER" -a timeout -k 2 30 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb NO_COLOR=1 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
# The same as uid/gid 65534 ("nobody"), no supplementary groups.
as_nobody () { in_ct setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

prop () { in_ct systemctl show -P "$1" heartbeatd.service; }

# poll SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds or
# SECONDS have passed; returns its last status.
poll () {
  local deadline rc
  deadline=$(( $(date +%s%N) + ${1%.*} * 1000000000 ))
  shift
  while :; do
    "$@" && return 0
    rc=$?
    [ "$(date +%s%N)" -lt "$deadline" ] || return $rc
    sleep 0.1
  done
}

# agent_field ID KEY [AS]: one key of hbctl show ID --json ("" if absent).
agent_field () {
  local runner=in_ct
  [ "${3:-}" = nobody ] && runner=as_nobody
  $runner hbctl show "$1" --json 2>/dev/null |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); v=d.get(sys.argv[1], ""); print(str(v).lower() if isinstance(v, bool) else v)' "$2" 2>/dev/null
}

journal_has () { # journal_has MATCH... : an entry since boot matches all
  [ -n "$(in_ct journalctl -b -q --no-pager -o cat "$@")" ]
}

# ------------------------------------------------------------------ setup

WORK=$(mktemp -d /tmp/hb-system.XXXXXX) || bail "mktemp failed"
chmod 0755 "$WORK"
STAGE=$WORK/stage
LAYERS=$WORK/layers
ROOT=$WORK/root
mkdir -p "$STAGE" "$LAYERS" "$ROOT"
save_state "ROOT=$ROOT" "LAYERS=$LAYERS"
setsid bash "$SELF" --guard $$ "$WORK" </dev/null >/dev/null 2>&1 &
GUARD_PID=$!

diag "build: $BUILDDIR"
diag "work:  $WORK (stage/, layers/ = tmpfs with upper/ and work/, root/ = the overlay)"

# (a) the install, staged
if ! out=$(meson install -C "$BUILDDIR" --destdir "$STAGE" --no-rebuild --quiet 2>&1); then
  bail "meson install --destdir failed: $out"
fi
[ -n "$(find "$STAGE" -name heartbeatd -type f)" ] || bail "the staged install has no heartbeatd"
# Where this build reads its configuration (SYSCONFDIR/heartbeat), from
# where it installed heartbeatd.conf.
CONF=$(cd "$STAGE" && find . -path '*/heartbeat/heartbeatd.conf' | head -n1)
[ -n "$CONF" ] || bail "the staged install has no heartbeat/heartbeatd.conf"
CONF_D=${CONF#.}.d
diag "configuration: ${CONF#.}, drop-ins in $CONF_D"

# (b) the container root: overlay of the host's / (lower, read-only) and an
# empty upper on tmpfs (an upper inside / itself would overlap the lower).
mount -t tmpfs -o mode=0755,size=1g hb-system-layers "$LAYERS" || bail "cannot mount tmpfs on $LAYERS"
mkdir -m 0755 "$LAYERS/upper" "$LAYERS/work"
UPPER=$LAYERS/upper
# Host state that must not leak into the container: an opaque directory in
# the upper hides what the host has there; a fresh machine id.
"$PY" - "$UPPER" <<'PY' || bail "cannot prepare the upper layer"
import os, sys, uuid
upper = sys.argv[1]
for d, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("run", 0o755), ("var/log/journal", 0o2755)):
    p = os.path.join(upper, d)
    os.makedirs(p, exist_ok=True)
    os.chmod(p, mode)
    os.setxattr(p, "trusted.overlay.opaque", b"y")
os.makedirs(os.path.join(upper, "etc"), exist_ok=True)
for d in ("var", "var/log", "etc"):
    os.chmod(os.path.join(upper, d), 0o755)
with open(os.path.join(upper, "etc/machine-id"), "w") as f:
    f.write(uuid.uuid4().hex + "\n")
PY
# Host services that would only slow the boot down (or listen on ports).
mkdir -p "$UPPER/etc/systemd/system"
for unit in postgresql.service prometheus.service prometheus-alertmanager.service \
            prometheus-node-exporter.service e2scrub_reap.service systemd-timesyncd.service \
            apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer \
            getty@tty1.service console-getty.service; do
  ln -s /dev/null "$UPPER/etc/systemd/system/$unit"
done
mount -t overlay -o "lowerdir=/,upperdir=$UPPER,workdir=$LAYERS/work" hb-system-root "$ROOT" ||
  bail "cannot mount the overlay on $ROOT"

# (c) boot
MACHINE=hb-system-$$
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn --boot --directory="$ROOT" \
  --machine="$MACHINE" --register=no --keep-unit --private-network \
  --console=pipe </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!
save_state "NSPAWN_PID=$NSPAWN_PID"
# The container's init: the child of nspawn that runs systemd (nspawn first
# forks a helper, which forks the init and exits).
find_leader () {
  local pid
  for pid in $(pgrep -P "$NSPAWN_PID"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && { LEADER=$pid; return 0; }
  done
  return 1
}
poll 20 find_leader || bail "systemd-nspawn started no container: $(tail -n 20 "$WORK/console.log")"
# systemd needs a moment to exec; is-system-running needs its private socket.
poll 20 test -S "/proc/$LEADER/root/run/systemd/private" ||
  bail "systemd in the container did not come up: $(tail -n 20 "$WORK/console.log")"
state=$(timeout 60 nsenter -t "$LEADER" -a systemctl is-system-running --wait 2>&1)
case "$state" in
  running|degraded) diag "container $MACHINE booted ($state), leader pid $LEADER, nspawn pid $NSPAWN_PID" ;;
  *) bail "the container did not boot within 60 s: is-system-running says \"$state\"; $(in_ct systemctl --failed --no-legend 2>&1)" ;;
esac
[ "$state" = degraded ] && diag "failed units: $(in_ct systemctl --failed --no-legend --plain | tr '\n' ' ')"

# ----------------------------------------------------------------- checks

# (d) install as an admin would, on the running system
# (the host's /etc/passwd shows through: it may have the user already)
in_ct getent passwd heartbeat >/dev/null && diag "user heartbeat exists before systemd-sysusers (the host has it)"
# The staged tree, copied onto the live root as `meson install` would write
# it. (Not with tar: GNU tar chmods existing directories to 0700 while it
# extracts into them, and dbus-daemon, re-reading its configuration on the
# inotify event as user messagebus, then fails with "Failed to open
# /usr/share/dbus-1/system.conf: Permission denied".)
cp -a "$STAGE/." "$ROOT/" || bail "cannot copy the install into the container"
# The admin's steps after `meson install`: create the system user, make
# systemd and dbus-daemon read the new unit and bus policy (dbus-daemon
# notices the new policy by inotify too, but asynchronously: a start right
# after the install can race it).
out=$(in_ct systemd-sysusers 2>&1 && in_ct systemctl daemon-reload 2>&1 && in_ct systemctl reload dbus.service 2>&1)
rc=$?
user=$(in_ct getent passwd heartbeat)
load=$(prop LoadState)
unitpath=$(prop FragmentPath)
if [ $rc -eq 0 ] && [ -n "$user" ] && [ "$load" = loaded ]; then
  ok "admin install: systemd-sysusers created \"${user%%:*}\", daemon-reload loaded $unitpath, dbus reloaded"
else
  not_ok "admin install: systemd-sysusers + daemon-reload" "rc=$rc output: $out" "user: $user" "LoadState=$load"
fi

# systemctl start, STATUS=
out=$(in_ct systemctl start heartbeatd.service 2>&1)
rc=$?
has_status () { [[ "$(prop StatusText)" =~ ^[0-9]+\ agents?,\ [0-9]+\ stale ]]; }
if [ $rc -eq 0 ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ] && poll 5 has_status; then
  ok "systemctl start heartbeatd: active (running), StatusText=\"$(prop StatusText)\""
else
  not_ok "systemctl start heartbeatd: active with a STATUS= text" "rc=$rc $out" \
    "ActiveState=$(prop ActiveState) SubState=$(prop SubState) StatusText=$(prop StatusText)" \
    "$(in_ct journalctl -b -u heartbeatd --no-pager -n 20 2>&1)"
  # Every check below needs the daemon; each would wait 25 s for D-Bus
  # activation to time out.
  bail "heartbeatd does not start, the other checks need it"
fi
user_of_main=$(in_ct ps -o user= -p "$(prop MainPID)" 2>/dev/null)
if [ "$user_of_main" = heartbeat ]; then
  ok "the daemon runs as user heartbeat"
else
  not_ok "the daemon runs as user heartbeat" "ps says: \"$user_of_main\""
fi

# hbctl as root: register, beat, status
out=$(in_ct hbctl register sys-root --task "system test" --stale 1h 2>&1 &&
      in_ct hbctl beat sys-root --status working 2>&1)
rc=$?
status_out=$(in_ct hbctl --no-legend --no-color status 2>&1)
owner=$(agent_field sys-root owner-uid); st=$(agent_field sys-root status); beats=$(agent_field sys-root beats)
if [ $rc -eq 0 ] && [ "$owner" = 0 ] && [ "$st" = working ] && [ "$beats" = 1 ] && grep -q 'sys-root' <<<"$status_out"; then
  ok "hbctl as root: register, beat and status (owner-uid 0, status working, 1 beat)"
else
  not_ok "hbctl as root: register, beat and status" "rc=$rc $out" "owner-uid=$owner status=$st beats=$beats" "status: $status_out"
fi

# journal fields
if poll 10 journal_has _SYSTEMD_UNIT=heartbeatd.service MESSAGE_ID=db0fbef2f0f4434e807f4a727d50a545 AGENT_ID=sys-root; then
  entry=$(in_ct journalctl -b -q --no-pager -o cat MESSAGE_ID=db0fbef2f0f4434e807f4a727d50a545 AGENT_ID=sys-root | tail -n1)
  ok "journal: \"$entry\" has MESSAGE_ID=db0fbef2… AGENT_ID=sys-root _SYSTEMD_UNIT=heartbeatd.service"
else
  not_ok "journal: a registration logs MESSAGE_ID and AGENT_ID" \
    "$(in_ct journalctl -b -u heartbeatd --no-pager -o verbose -n 3 2>&1)"
fi

# systemctl reload: SIGHUP re-reads the configuration, the service stays
in_ct mkdir -p "$CONF_D"
printf '[agent:sys-declared]\ntask=declared by the system test\n' >"$ROOT$CONF_D/50-hb-system-test.conf"
chmod 0644 "$ROOT$CONF_D/50-hb-system-test.conf"
pid_before=$(prop MainPID)
out=$(in_ct systemctl reload heartbeatd.service 2>&1)
rc=$?
declared_seen () { [ "$(agent_field sys-declared state)" = no-heartbeat ]; }
if [ $rc -eq 0 ] && poll 10 declared_seen && [ "$(prop ActiveState)/$(prop SubState)" = active/running ] &&
   [ "$(prop MainPID)" = "$pid_before" ] && poll 5 journal_has _SYSTEMD_UNIT=heartbeatd.service MESSAGE="Configuration reloaded"; then
  ok "systemctl reload: same MainPID $pid_before, still active, [agent:sys-declared] from heartbeatd.conf.d is no-heartbeat"
else
  not_ok "systemctl reload: the configuration is re-read and the service stays active" "rc=$rc $out" \
    "MainPID $pid_before -> $(prop MainPID) ActiveState=$(prop ActiveState) sys-declared state=$(agent_field sys-declared state)" \
    "$(in_ct journalctl -b -u heartbeatd --no-pager -n 10 2>&1)"
fi

# bus activation: a call from an unprivileged peer starts the stopped service
in_ct systemctl stop heartbeatd.service
stopped=$(prop ActiveState)
out=$(as_nobody busctl --system call org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 GetStatus 2>&1)
rc=$?
if [ "$stopped" = inactive ] && [ $rc -eq 0 ] && [ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" != "$pid_before" ] &&
   [ "$(agent_field sys-root owner-uid)" = 0 ]; then
  ok "bus activation: uid 65534 calling GetStatus started heartbeatd.service (MainPID $(prop MainPID)), sys-root kept"
else
  not_ok "bus activation: a call to org.heartbeat.Monitor1 starts heartbeatd.service" \
    "after stop: $stopped; call rc=$rc: $out" "ActiveState=$(prop ActiveState) MainPID=$(prop MainPID)" \
    "$(in_ct journalctl -b -u dbus -u heartbeatd --no-pager -n 10 2>&1)"
fi

# hbctl as uid 65534: its own agent
out=$(as_nobody hbctl register sys-nobody --stale 1h 2>&1 && as_nobody hbctl beat sys-nobody 2>&1)
rc=$?
owner=$(agent_field sys-nobody owner-uid nobody); beats=$(agent_field sys-nobody beats nobody)
if [ $rc -eq 0 ] && [ "$owner" = 65534 ] && [ "$beats" = 1 ]; then
  ok "hbctl as uid 65534: registers and beats its own agent (owner-uid 65534)"
else
  not_ok "hbctl as uid 65534: registers and beats its own agent" "rc=$rc $out" "owner-uid=$owner beats=$beats"
fi

# ... and may not beat root's (no polkit rule: the default is auth_admin)
beats_before=$(agent_field sys-root beats)
out=$(as_nobody hbctl beat sys-root 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'belongs to uid 0' <<<"$out" && [ "$(agent_field sys-root beats)" = "$beats_before" ]; then
  ok "hbctl as uid 65534: beating root's agent is refused (exit 1, beats unchanged)"
else
  not_ok "hbctl as uid 65534: beating root's agent is refused" "rc=$rc $out" "beats $beats_before -> $(agent_field sys-root beats)"
fi

# polkit without a rule: the refusal must be polkit's answer (auth_admin,
# no interactive authorization => "needs to authenticate"), not a failed
# CheckAuthorization call.
beat_as_nobody () {
  as_nobody busctl --system call org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 \
    Beat 'sa{sv}' sys-root 0 2>&1
}
out=$(beat_as_nobody)
rc=$?
if [ $rc -ne 0 ] && grep -q 'needs to authenticate for polkit action org.heartbeat.monitor1.manage' <<<"$out" &&
   [ "$(in_ct systemctl show -P ActiveState polkit.service)" = active ]; then
  ok "polkit, no rule: uid 65534 is refused by polkit's answer (auth_admin)"
else
  not_ok "polkit, no rule: uid 65534 is refused by polkit's answer (auth_admin)" \
    "busctl rc=$rc: $out" "polkit.service: $(in_ct systemctl show -P ActiveState polkit.service)"
fi

# polkit with a rule granting uid 65534 the action
install -m 0644 "$SRCDIR/50-hb-test.rules" "$ROOT/etc/polkit-1/rules.d/50-hb-test.rules"
beats_before=$(agent_field sys-root beats)
beat_as_nobody_ok () { out=$(beat_as_nobody); }
# polkitd re-reads rules.d on its own (inotify); give it a bounded while.
if poll 10 beat_as_nobody_ok && [ "$(agent_field sys-root beats)" = $((beats_before + 1)) ]; then
  ok "polkit, rule 50-hb-test.rules: uid 65534 may beat root's agent"
else
  not_ok "polkit, rule 50-hb-test.rules: uid 65534 may beat root's agent" "busctl: $out" \
    "beats $beats_before -> $(agent_field sys-root beats)" \
    "$(in_ct journalctl -b -u polkit --no-pager -n 5 2>&1)"
fi
rm -f "$ROOT/etc/polkit-1/rules.d/50-hb-test.rules"

# restart-unit alerts: heartbeatd (user heartbeat) asks systemd to restart
# a unit the configuration names; the polkit rule it installs allows that
# by asking "heartbeatd --may-restart-unit UNIT".
printf '[Service]\nExecStart=/bin/sleep infinity\n' >"$ROOT/etc/systemd/system/hb-victim.service"
printf '[alert:victim]\nevents=stale\nagents=sys-victim\nrestart-unit=hb-victim.service\n' \
  >"$ROOT$CONF_D/60-hb-system-test-alert.conf"
chmod 0644 "$ROOT$CONF_D/60-hb-system-test-alert.conf"
in_ct systemctl daemon-reload
in_ct systemctl start hb-victim.service
victim0=$(in_ct systemctl show -P InvocationID hb-victim.service)
in_ct systemctl reload heartbeatd.service
victim_restarted () {
  local now
  now=$(in_ct systemctl show -P InvocationID hb-victim.service)
  [ -n "$now" ] && [ "$now" != "$victim0" ] && [ "$(in_ct systemctl show -P ActiveState hb-victim.service)" = active ] &&
    in_ct journalctl -b -q --no-pager -u heartbeatd.service -o cat |
      grep -qF '[alert:victim] restarting hb-victim.service for agent sys-victim: done'
}
out=$(in_ct hbctl register sys-victim --stale 1s 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -n "$victim0" ] && poll 15 victim_restarted; then
  ok "restart-unit: sys-victim went stale and heartbeatd (user heartbeat) restarted hb-victim.service through systemd and polkit"
else
  not_ok "restart-unit: a stale agent gets hb-victim.service restarted" "register rc=$rc $out" \
    "InvocationID $victim0 -> $(in_ct systemctl show -P InvocationID hb-victim.service)" \
    "$(in_ct journalctl -b -q --no-pager -u heartbeatd -u polkit -n 12 2>&1)"
fi
in_ct hbctl unregister sys-victim >/dev/null 2>&1
rm -f "$ROOT$CONF_D/60-hb-system-test-alert.conf"

# systemd-analyze security on the live unit
out=$(in_ct systemd-analyze security --no-pager heartbeatd.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for heartbeatd.service: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -n "$score" ] && "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1.5 else 1)' "$score"; then
  ok "systemd-analyze security heartbeatd.service (live): exposure $score <= 1.5"
else
  not_ok "systemd-analyze security heartbeatd.service (live): exposure <= 1.5" "score: \"$score\"" "$(tail -n 15 <<<"$out")"
fi

# watchdog: a hung (SIGSTOPped) daemon is killed and restarted, agents kept
mkdir -p "$ROOT/etc/systemd/system/heartbeatd.service.d"
printf '[Service]\nWatchdogSec=3s\n' >"$ROOT/etc/systemd/system/heartbeatd.service.d/50-hb-system-test-watchdog.conf"
in_ct systemctl daemon-reload
in_ct systemctl restart heartbeatd.service
wd=$(prop WatchdogUSec)
pid0=$(prop MainPID)
restarts0=$(prop NRestarts)
t0=$(date +%s.%N)
[[ "$pid0" =~ ^[1-9][0-9]*$ ]] && in_ct kill -STOP "$pid0"   # never "kill -STOP 0"
restarted () { local p; p=$(prop MainPID); [ "$p" != 0 ] && [ "$p" != "$pid0" ] && [ "$(prop ActiveState)" = active ]; }
if [ "$wd" = 3s ] && poll 20 restarted; then
  took=$("$PY" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$(date +%s.%N)")
  restarts1=$(prop NRestarts)
  if [ "$restarts1" = $((restarts0 + 1)) ] &&
     in_ct journalctl -b -q --no-pager -u heartbeatd.service -o cat | grep -q 'Watchdog timeout (limit 3s)' &&
     [ "$(agent_field sys-root owner-uid)" = 0 ] && [ "$(agent_field sys-nobody owner-uid)" = 65534 ]; then
    ok "watchdog: WatchdogSec=3s, SIGSTOPped pid $pid0 killed and restarted as $(prop MainPID) after ${took}s, NRestarts $restarts0 -> $restarts1, agents kept"
  else
    not_ok "watchdog: restart counted, logged, agents kept" "NRestarts $restarts0 -> $restarts1" \
      "sys-root owner=$(agent_field sys-root owner-uid) sys-nobody owner=$(agent_field sys-nobody owner-uid)" \
      "$(in_ct journalctl -b -u heartbeatd --no-pager -n 12 2>&1)"
  fi
else
  not_ok "watchdog: WatchdogSec=3s, a SIGSTOPped daemon is restarted within 20 s" "WatchdogUSec=$wd" \
    "MainPID $pid0 -> $(prop MainPID) ActiveState=$(prop ActiveState) NRestarts=$(prop NRestarts)" \
    "$(in_ct journalctl -b -u heartbeatd --no-pager -n 12 2>&1)"
fi
rm -f "$ROOT/etc/systemd/system/heartbeatd.service.d/50-hb-system-test-watchdog.conf"

# No failed units because of the install (heartbeatd, dbus, polkit).
failed=$(in_ct systemctl --failed --no-legend --plain 2>&1 | grep -E 'heartbeat|dbus|polkit')
dbus_errors=$(in_ct journalctl -b -q --no-pager -u dbus.service -o cat | grep -E 'Unable to reload|Encountered error' )
if [ -z "$failed" ] && [ -z "$dbus_errors" ]; then
  ok "no failed heartbeatd, dbus or polkit unit; dbus-daemon loaded its configuration without errors"
else
  not_ok "no failed heartbeatd, dbus or polkit unit; dbus-daemon loaded its configuration without errors" "$failed" "$dbus_errors"
fi

echo "1..$N"
diag "runtime: $("$PY" -c 'import sys, time; print("%.1f s" % (time.time() - float(sys.argv[1])))' "$START_TIME") (to here; teardown follows)"
[ $FAILED -eq 0 ]

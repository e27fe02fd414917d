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
#      tree, ldconfig, systemd-sysusers, systemctl daemon-reload, systemctl reload
#      dbus) and checks the service: the install layout (the defaults under
#      DATADIR, nothing in SYSCONFDIR/heartbeat), start/STATUS=, hbctl as
#      root and as uid 65534, journal fields, reload; heartbeatd
#      --check-config listing every error (FILE:LINE) of broken drop-ins,
#      `systemctl reload` failing on them with the errors in the journal and
#      `systemctl status` while the daemon keeps its configuration,
#      events-file= in /tmp or in a directory user heartbeat may not write
#      refused (by the reload's check and by a bare SIGHUP), an upgrade
#      (`meson install --destdir` the container's / again) keeping the
#      admin's heartbeatd.conf byte for byte; bus activation, polkit with
#      and without a rule, restart-unit alerts, systemd-analyze security,
#      the watchdog;
#   4. with drop-ins in heartbeatd.conf.d as an admin would write them, and
#      a test host (network namespace "testhost" in the container, joined by
#      a veth pair: 10.203.0.1 here, 10.203.0.2 there): exec=, webhook= and
#      alertmanager= alerts end to end (the receiver, hb-test-receiver.py,
#      and a real Alertmanager run on testhost), the event log, heartbeat
#      files, HTTP with a tokens file on 10.203.0.1 reached from testhost
#      (hb-test-http.py), and heartbeatd on a private session bus under a
#      time namespace whose clocks read 60 s (a machine just booted);
#   5. a unit-backed agent: [agent:hb-worker] unit=hb-test-worker.service, a
#      real unit (User=nobody) whose loop beats with hbctl: its beats count
#      (heartbeatd knows its cgroup), unit.main-pid/cpu-usec/memory-bytes
#      match systemctl's, stop -> gone, start -> healthy, a hang -> stale ->
#      the alert's empty restart-unit= restarts it, and the history (D-Bus
#      GetHistory, GET /v1/agents/ID/history, hbctl show) tells it all; and
#      the dashboard (GET /) in headless Chromium run in the container
#      (tests/dashboard/test-dashboard.py --url): hb-worker's history strips
#      show the colours of that history in order and in place, its detail
#      view the same states and the Unit section with systemctl's MainPID;
#      a Type=oneshot job (hb-test-job.service): idle before it ever ran,
#      healthy while it runs and beats, stale when it stops beating, idle
#      when it exits 0, gone with its exit status when it fails;
#      (service-checks.sh) which work has a run timeout; (timer-checks.sh)
#      Type=oneshot jobs that systemd timers start: healthy and idle after a
#      run with the timer's next elapse as next due time, stale with an
#      alert when the timer is stopped before the run it announced (also
#      across a reload), error with exit status 1, timed out; no run
#      recorded twice across a restart of heartbeatd; (pause-checks.sh)
#      pausing an agent: its owner may, another user only with polkit's
#      authorization (refused by polkitd, allowed by 50-hb-test.rules); a
#      paused unit= service that hangs gets no stale, alert or restart;
#      the pause survives a restart of heartbeatd, whose history says
#      "unmonitored" for the restart;
#   6. a user's unit: a lingering user (user@UID.service, its session bus),
#      heartbeatd --session as a transient user unit with [agent:uw]
#      unit=hb-user-worker.service, a systemd --user unit that beats with
#      hbctl --session: systemctl --user start/stop -> healthy/gone; the
#      user owns uw, so its shell may beat it too;
#   7. (tls-checks.sh, last) HTTPS on a non-loopback address with the test
#      CA (tests/tls/make-test-ca.sh), the key readable by root only and
#      given by LoadCredential=: plain HTTP there refused at start without
#      trusted-network=true; /metrics with a read token, 401 without or
#      with a wrong one, 403 for a write with the read token; no answer
#      over http://; a renewed certificate served after `systemctl reload`
#      (same MainPID); a new key kept out until a restart, which serves it.
# Prints TAP. Needs root, systemd-nspawn (systemd-container), overlayfs and
# polkitd; without them it prints "1..0 # SKIP why" and exits 0. Everything
# it creates (mounts, the container, temp dirs) is removed on exit, also on
# failure and on SIGINT/SIGTERM/SIGHUP.
#
# Environment: HB_SYSTEM_KEEP=1 keeps the container running and prints how to
# enter it instead of tearing down (for debugging; remove it by hand).
# HB_SYSTEM_BOOT_DAEMON=PATH runs the just-booted check with that heartbeatd
# binary (copied into the container) instead of the installed one, e.g. an
# older build, to see that the check can fail.
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

if [ "${1:-}" = --guard ]; then # --guard RUNNER_PID WORK (RUNNER_PID 0: at once)
  # (never "kill -0 0": that signals our own process group, and succeeds)
  while [ "$2" != 0 ] && kill -0 "$2" 2>/dev/null; do sleep 0.2; done
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
# busctl_prop NAME: a property of org.heartbeat.Monitor1, as busctl prints it
busctl_prop () { in_ct busctl --system get-property org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 "$1" 2>&1; }
# jcursor: the journal's cursor now; unit_log CURSOR: heartbeatd.service's
# messages after it
jcursor () { in_ct journalctl -q --no-pager -n 1 -o cat --show-cursor | sed -n 's/^-- cursor: //p'; }
unit_log () { in_ct journalctl -q --no-pager -o cat -u heartbeatd.service --after-cursor "$1" 2>&1; }

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
# Where this build reads its configuration: SYSCONFDIR/heartbeat, as the
# build's options say. The install puts nothing there (the defaults are
# built in, their text in DATADIR/heartbeat/heartbeatd.conf).
read -r SYSCONFDIR DATADIR < <(meson introspect --buildoptions "$BUILDDIR" | "$PY" -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(*(os.path.join(o["prefix"], o[k]) for k in ("sysconfdir", "datadir")))')
[ -n "$SYSCONFDIR" ] && [ -n "$DATADIR" ] || bail "meson introspect --buildoptions $BUILDDIR gave no sysconfdir/datadir"
CONF=$SYSCONFDIR/heartbeat/heartbeatd.conf
CONF_D=$CONF.d
diag "configuration: $CONF, drop-ins in $CONF_D"

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
# ldconfig: libheartbeat-1 went into the prefix's libdir, as an admin's
# meson install does outside a DESTDIR
out=$(in_ct ldconfig 2>&1 && in_ct systemd-sysusers 2>&1 && in_ct systemctl daemon-reload 2>&1 &&
      in_ct systemctl reload dbus.service 2>&1)
rc=$?
user=$(in_ct getent passwd heartbeat)
load=$(prop LoadState)
unitpath=$(prop FragmentPath)
if [ $rc -eq 0 ] && [ -n "$user" ] && [ "$load" = loaded ]; then
  ok "admin install: ldconfig, systemd-sysusers created \"${user%%:*}\", daemon-reload loaded $unitpath, dbus reloaded"
else
  not_ok "admin install: systemd-sysusers + daemon-reload" "rc=$rc output: $out" "user: $user" "LoadState=$load"
fi

# The layout: the defaults under DATADIR, nothing in SYSCONFDIR/heartbeat
# (an upgrade must never overwrite what the admin keeps there)
in_etc=$(cd "$STAGE" && find ".$SYSCONFDIR/heartbeat" 2>/dev/null | sed 's/^\.//')
if [ -f "$STAGE$DATADIR/heartbeat/heartbeatd.conf" ] && [ -z "$in_etc" ]; then
  ok "install layout: the defaults in $DATADIR/heartbeat/heartbeatd.conf, nothing in $SYSCONFDIR/heartbeat"
else
  not_ok "install layout: the defaults under $DATADIR/heartbeat, nothing in $SYSCONFDIR/heartbeat" \
    "installed in $SYSCONFDIR/heartbeat: $in_etc" "$(ls -l "$STAGE$DATADIR/heartbeat/" 2>&1)"
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

# ------------------------------------- the configuration check, a refused reload
#
# heartbeatd --check-config lists every error of every file (FILE:LINE:
# message); the unit's ExecReload= runs it first (as user heartbeat, in the
# service's sandbox), so that `systemctl reload` fails on a configuration the
# daemon would refuse and the daemon keeps the one it runs.
HBD_BIN=$(prop ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
BAD1=$CONF_D/80-hb-system-test-bad.conf
BAD2=$CONF_D/81-hb-system-test-bad.conf
printf '[monitor]\nstale-treshold=5min\ncheck-interval=soon\n\n[agent:sys-new]\n' >"$ROOT$BAD1"
printf '[alert:nothing]\nevents=stale\n\n[monitr]\n' >"$ROOT$BAD2"
chmod 0644 "$ROOT$BAD1" "$ROOT$BAD2"
out=$(in_ct "$HBD_BIN" --check-config 2>&1)
rc=$?
want=("$BAD1:2: unknown key “stale-treshold” in [monitor]" "$BAD1:3: [monitor] check-interval: "
      "$BAD2:4: unknown section [monitr]" "$BAD2:1: [alert:nothing] needs exactly one of")
missing=""
for w in "${want[@]}"; do grep -qF -- "$w" <<<"$out" || missing+="[$w] "; done
if [ $rc -eq 1 ] && [ -z "$missing" ] && grep -q '4 errors; the configuration is refused' <<<"$out"; then
  ok "heartbeatd --check-config: exit 1 and every error with its file and line, 4 in 2 drop-ins"
else
  not_ok "heartbeatd --check-config: exit 1 and every error with its file and line" "rc=$rc, missing: $missing" "$out"
fi

pid_before=$(prop MainPID)
journal_out="" status_out="" hup_out=""
cursor=$(jcursor)
out=$(in_ct systemctl reload heartbeatd.service 2>&1)
rc=$?
errors_logged () {
  journal_out=$(unit_log "$cursor")
  status_out=$(in_ct systemctl status --no-pager -l -n 20 heartbeatd.service 2>&1)
  grep -qF "$BAD1:2: unknown key" <<<"$journal_out" && grep -qF "$BAD2:4: unknown section" <<<"$journal_out" &&
    grep -qF "$BAD1:2: unknown key" <<<"$status_out"
}
if [ $rc -ne 0 ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ] && [ "$(prop MainPID)" = "$pid_before" ] &&
   poll 10 errors_logged && ! grep -q 'Configuration reloaded' <<<"$journal_out" &&
   [ "$(agent_field sys-declared state)" = no-heartbeat ] && [ -z "$(agent_field sys-new state)" ] &&
   in_ct hbctl status >/dev/null 2>&1; then
  ok "systemctl reload with 2 broken drop-ins: exit $rc, the errors in the journal and systemctl status, same MainPID, old configuration kept (sys-declared declared, sys-new not), still serving"
else
  not_ok "systemctl reload with broken drop-ins fails visibly and keeps the old configuration" "rc=$rc $out" \
    "MainPID $pid_before -> $(prop MainPID) $(prop ActiveState)/$(prop SubState) sys-declared=$(agent_field sys-declared state) sys-new=$(agent_field sys-new state)" \
    "journal: $journal_out" "status: $status_out"
fi
rm -f "$ROOT$BAD1" "$ROOT$BAD2"

# [log] events-file= where the service cannot keep it: in /tmp (its own
# private /tmp), and in a directory user heartbeat may not write
EVBAD=$CONF_D/82-hb-system-test-events.conf
printf '[log]\nevents-file=/tmp/hb-events.jsonl\n' >"$ROOT$EVBAD"
chmod 0644 "$ROOT$EVBAD"
out_check=$(in_ct "$HBD_BIN" --check-config 2>&1)
rc_check=$?
out=$(in_ct systemctl reload heartbeatd.service 2>&1)
rc=$?
if [ $rc_check -eq 1 ] && grep -qF "$EVBAD:2: [log] events-file: “/tmp/hb-events.jsonl” is in /tmp" <<<"$out_check" &&
   grep -q 'PrivateTmp=yes' <<<"$out_check" && [ $rc -ne 0 ] && [ "$(prop MainPID)" = "$pid_before" ]; then
  ok "events-file=/tmp/hb-events.jsonl: refused by --check-config ($EVBAD:2, PrivateTmp=yes) and by systemctl reload (exit $rc)"
else
  not_ok "events-file= in /tmp is refused" "check rc=$rc_check: $out_check" "reload rc=$rc: $out" "MainPID $pid_before -> $(prop MainPID)"
fi
in_ct install -d -m 0755 -o root -g root /var/lib/hb-test-ro
printf '[log]\nevents-file=/var/lib/hb-test-ro/events.jsonl\n' >"$ROOT$EVBAD"
cursor=$(jcursor)
out=$(in_ct systemctl reload heartbeatd.service 2>&1)
rc=$?
ro_logged () {
  journal_out=$(unit_log "$cursor")
  grep -qF "$EVBAD:2: [log] events-file: heartbeatd (uid" <<<"$journal_out" &&
    grep -q 'may not write /var/lib/hb-test-ro/events.jsonl' <<<"$journal_out"
}
ro_logged_rc=1
[ $rc -ne 0 ] && poll 10 ro_logged && ro_logged_rc=0
# the daemon's own reload (SIGHUP without the check) refuses it too
cursor=$(jcursor)
[[ "$pid_before" =~ ^[1-9][0-9]*$ ]] && in_ct kill -HUP "$pid_before"
hup_refused () {
  hup_out=$(unit_log "$cursor")
  grep -q 'Reloading the configuration failed, keeping the old one' <<<"$hup_out" &&
    grep -qF "$EVBAD:2: [log] events-file:" <<<"$hup_out"
}
if [ $ro_logged_rc -eq 0 ] && poll 10 hup_refused && ! grep -q 'Configuration reloaded' <<<"$hup_out" && [ "$(prop MainPID)" = "$pid_before" ] &&
   [ ! -e "$ROOT/var/lib/hb-test-ro/events.jsonl" ]; then
  ok "events-file= in a directory user heartbeat may not write: systemctl reload fails (exit $rc), and a bare SIGHUP logs \"Reloading the configuration failed\" with $EVBAD:2, nothing written"
else
  not_ok "events-file= in a directory user heartbeat may not write: refused by the reload's check and by the daemon's own reload" \
    "reload rc=$rc $out" "journal after reload: $journal_out" "journal after SIGHUP: $hup_out" "MainPID $pid_before -> $(prop MainPID)"
fi
rm -f "$ROOT$EVBAD"
in_ct rmdir /var/lib/hb-test-ro
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload after removing the bad drop-ins: $out"

# An upgrade (`meson install` again) keeps the admin's heartbeatd.conf
# byte for byte: the admin's file, in place of the built-in defaults.
in_ct install -m 0644 "$DATADIR/heartbeat/heartbeatd.conf" "$CONF"
printf '\n# edited by the admin, %s\n[monitor]\ncheck-interval=29s\n' "$(date -u +%FT%T)" >>"$ROOT$CONF"
sum0=$(sha256sum <"$ROOT$CONF")
out=$(meson install -C "$BUILDDIR" --destdir "$ROOT" --no-rebuild --quiet 2>&1 && in_ct systemctl daemon-reload 2>&1)
rc=$?
sum1=$(sha256sum <"$ROOT$CONF")
out_check=$(in_ct "$HBD_BIN" --check-config 2>&1)
rc_check=$?
out_reload=$(in_ct systemctl reload heartbeatd.service 2>&1)
rc_reload=$?
if [ $rc -eq 0 ] && [ "$sum0" = "$sum1" ] && [ $rc_check -eq 0 ] && grep -qF "configuration OK: $CONF" <<<"$out_check" &&
   [ $rc_reload -eq 0 ] && [ "$(busctl_prop CheckIntervalUSec)" = "t 29000000" ]; then
  ok "upgrade: meson install --destdir (the container's /) again kept the admin's $CONF byte for byte; --check-config and the reload read it (CheckIntervalUSec 29 s)"
else
  not_ok "upgrade: a second meson install keeps the admin's $CONF byte for byte" "install rc=$rc $out" \
    "sha256 before $sum0, after $sum1" "check rc=$rc_check: $out_check" "reload rc=$rc_reload: $out_reload" \
    "CheckIntervalUSec: $(busctl_prop CheckIntervalUSec)"
fi
# back to the built-in defaults for the checks below
rm -f "$ROOT$CONF"
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload without $CONF: $out"

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

# The fast Beat path (hb-dbus-fast-beat.c) under the real bus and polkitd:
# on one connection, uid 65534 beats its own agent 50 times (the first
# Beat takes the normal path and makes its uid known; the others may be
# answered from the bus connection's input), then root's agent, which
# polkit must still refuse.
beats_before=$(agent_field sys-root beats)
out=$(as_nobody "$PY" -c '
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
def call(method, args, sig):
    return bus.call_sync("org.heartbeat.Monitor1", "/org/heartbeat/Monitor1", "org.heartbeat.Monitor1",
                         method, GLib.Variant(sig, args), None, Gio.DBusCallFlags.NONE, 10000, None)
for i in range(1, 51):
    call("Beat", ("sys-nobody", {"status": GLib.Variant("s", "fast-%d" % i)}), "(sa{sv})")
agent = call("GetAgent", ("sys-nobody",), "(s)").unpack()[0]
print(agent["status"], agent["beats"])
try:
    call("Beat", ("sys-root", {}), "(sa{sv})")
    print("beat of sys-root accepted")
except GLib.Error as e:
    print("refused:", e.message)
' 2>&1)
if [ "$(head -n1 <<<"$out")" = "fast-50 51" ] && grep -q '^refused: .*needs to authenticate' <<<"$out" &&
   [ "$(agent_field sys-root beats)" = "$beats_before" ]; then
  ok "uid 65534, one connection: 50 Beats of its own agent counted in order, then root's refused by polkit"
else
  not_ok "uid 65534, one connection: 50 Beats of its own agent counted in order, then root's refused by polkit" \
    "$out" "sys-root beats $beats_before -> $(agent_field sys-root beats)"
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

# ------------------------------------------------- a test host, alerts, files, HTTP
#
# The container has --private-network. "testhost" is a network namespace
# inside it, joined to the container's by a veth pair: hb-ct 10.203.0.1/24
# on the container's side, hb-th 10.203.0.2/24 on testhost's; nothing is
# routed anywhere else. The helpers (a webhook receiver and Alertmanager on
# testhost, a sleeping process, a session bus) are transient units of the
# container's systemd; the end of this part stops them and deletes the
# namespace (a failed run ends them with the container). Files for them live
# in T, under /var/tmp: heartbeatd.service (PrivateTmp=) does not see it.

T=/var/tmp/hb-system-test
HELPERS=/usr/local/lib/hb-system-test
CT_ADDR=10.203.0.1
TH_ADDR=10.203.0.2
HELPER_UNITS="hb-test-receiver.service hb-test-alertmanager.service hb-test-sleeper.service hb-test-bus.service"
mkdir -p "$ROOT$T/alertmanager" "$ROOT$HELPERS"
install -m 0755 "$SRCDIR/hb-test-receiver.py" "$ROOT$HELPERS/hb-test-receiver.py"
install -m 0755 "$SRCDIR/hb-test-alert-exec.sh" "$ROOT$HELPERS/hb-test-alert-exec.sh"
install -m 0755 "$SRCDIR/hb-test-http.py" "$ROOT$HELPERS/hb-test-http.py"

skip () { N=$((N + 1)); echo "ok $N - $1 # SKIP $2"; }
in_th () { in_ct ip netns exec testhost "$@"; }
# http METHOD URL [-H 'Name: value']... [-d BODY], from testhost: the body,
# then a last line "CODE CONTENT-TYPE"
http () { in_th "$PY" "$HELPERS/hb-test-http.py" "$@"; }
http_code () { tail -n1 <<<"$1" | cut -d' ' -f1; }
# jsonl_has FILE KEY=VALUE...: FILE is JSON objects, one a line (every line
# must parse), and one of them has all these members
jsonl_has () {
  "$PY" - "$@" 2>/dev/null <<'PY'
import json, sys
want = dict(kv.split("=", 1) for kv in sys.argv[2:])
found = False
with open(sys.argv[1]) as f:
    for line in f:
        o = json.loads(line)
        found = found or all(str(o.get(k)) == v for k, v in want.items())
sys.exit(0 if found else 1)
PY
}

out=$(in_ct ip netns add testhost 2>&1 &&
      in_ct ip link add hb-ct type veth peer name hb-th netns testhost 2>&1 &&
      in_ct ip addr add "$CT_ADDR/24" dev hb-ct 2>&1 && in_ct ip link set hb-ct up 2>&1 &&
      in_th ip addr add "$TH_ADDR/24" dev hb-th 2>&1 && in_th ip link set hb-th up 2>&1 &&
      in_th ip link set lo up 2>&1)
rc=$?
[ $rc -eq 0 ] || diag "cannot make the test host: $out"
TESTHOST=$([ $rc -eq 0 ] && echo yes || echo no)

# The webhook receiver and Alertmanager (no clustering, storage in T), on testhost
in_ct systemd-run --quiet --unit=hb-test-receiver -p NetworkNamespacePath=/run/netns/testhost \
  "$PY" "$HELPERS/hb-test-receiver.py" "$TH_ADDR" 8080 "$T/webhook.jsonl"
HAVE_AM=no
if [ -x /usr/bin/prometheus-alertmanager ]; then
  HAVE_AM=yes
  printf 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n' >"$ROOT$T/alertmanager.yml"
  in_ct systemd-run --quiet --unit=hb-test-alertmanager -p NetworkNamespacePath=/run/netns/testhost \
    /usr/bin/prometheus-alertmanager --config.file="$T/alertmanager.yml" --storage.path="$T/alertmanager" \
    --web.listen-address="$TH_ADDR:9093" --cluster.listen-address=
fi
# (reached from the container's side, across the veth)
ct_http_ok () { [ "$(http_code "$(in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$1" 2>/dev/null)")" = 200 ]; }
poll 10 ct_http_ok "http://$TH_ADDR:8080/" || diag "the webhook receiver does not answer: $(in_ct journalctl -q --no-pager -u hb-test-receiver -n 5 2>&1)"
[ $HAVE_AM = yes ] && { poll 15 ct_http_ok "http://$TH_ADDR:9093/-/ready" ||
  diag "Alertmanager is not ready: $(in_ct journalctl -q --no-pager -u hb-test-alertmanager -n 5 2>&1)"; }

# The alerts, and the event log, as an admin would write them
cat >"$ROOT$CONF_D/70-hb-system-test-alerts.conf" <<CONF
[alert:hb-exec]
events=stale,recovered
agents=sys-alert
exec=$HELPERS/hb-test-alert-exec.sh

[alert:hb-exec-error]
events=error
agents=sys-job-out
exec=$HELPERS/hb-test-alert-exec.sh

[alert:hb-webhook]
events=stale,recovered
agents=sys-alert
webhook=http://$TH_ADDR:8080/hook
retries=20
retry-interval=250ms
timeout=2s
CONF
[ $HAVE_AM = yes ] && cat >>"$ROOT$CONF_D/70-hb-system-test-alerts.conf" <<CONF

[alert:hb-alertmanager]
events=stale
agents=sys-alert
alertmanager=http://$TH_ADDR:9093
retries=20
retry-interval=250ms
timeout=2s
CONF
printf '[log]\nevents-file=/var/log/heartbeat/events.jsonl\n' >"$ROOT$CONF_D/71-hb-system-test-log.conf"
chmod 0644 "$ROOT$CONF_D/70-hb-system-test-alerts.conf" "$ROOT$CONF_D/71-hb-system-test-log.conf"
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

EXEC_ENV=$ROOT/var/log/heartbeat/hb-test-exec
WEBHOOK=$ROOT$T/webhook.jsonl
EVENTS=$ROOT/var/log/heartbeat/events.jsonl
HOSTNAME_CT=$(in_ct hostname)
# exec_env_ok EVENT STATE: the script's file for EVENT has the environment
exec_env_ok () {
  local f=$EXEC_ENV.$1.env
  [ -f "$f" ] && grep -qx "HB_ALERT=hb-exec" "$f" && grep -qx "HB_AGENT=sys-alert" "$f" &&
    grep -qx "HB_EVENT=$1" "$f" && grep -qx "HB_STATE=$2" "$f" && grep -qx "HB_TASK=alert test" "$f" &&
    grep -qx "HB_HOST=$HOSTNAME_CT" "$f" && grep -q "^HB_STATUS=" "$f"
}
webhook_ok () { # webhook_ok EVENT STATE
  [ -f "$WEBHOOK" ] && jsonl_has "$WEBHOOK" alert=hb-webhook agent=sys-alert event="$1" state="$2" task-id="alert test" host="$HOSTNAME_CT"
}
# am_alert: "STATUS ALERTNAME STATE-LABEL" of Alertmanager's alert for
# sys-alert, "none" if it has none (GET /api/v2/alerts lists no resolved
# alert), "" if it does not answer
am_alert () {
  in_ct "$PY" "$HELPERS/hb-test-http.py" GET "http://$TH_ADDR:9093/api/v2/alerts" 2>/dev/null | "$PY" -c '
import json, sys
lines = sys.stdin.read().rstrip("\n").rsplit("\n", 1)
if len(lines) != 2 or not lines[1].startswith("200 "):
    sys.exit(1)
mine = [a for a in json.loads(lines[0]) if a["labels"].get("agent") == "sys-alert"]
l = mine[0]["labels"] if mine else {}
print(" ".join((mine[0]["status"]["state"], l.get("alertname", "-"), l.get("severity", "-"), l.get("hostname", "-"))) if mine else "none")' 2>/dev/null
}
all_stale () {
  exec_env_ok stale stale && webhook_ok stale stale && { [ $HAVE_AM = no ] || [ "$(am_alert)" = "active HeartbeatAgentStale warning $HOSTNAME_CT" ]; }
}
all_recovered () {
  exec_env_ok recovered healthy && webhook_ok recovered healthy && { [ $HAVE_AM = no ] || [ "$(am_alert)" = none ]; }
}
t0=$(date +%s.%N)
out=$(in_ct hbctl register sys-alert --task "alert test" --stale 1s 2>&1)
reg_rc=$?
poll 15 all_stale
took_stale=$("$PY" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$(date +%s.%N)")
am_stale=$([ $HAVE_AM = yes ] && am_alert)
stale_exec=$(exec_env_ok stale stale && echo yes); stale_hook=$(webhook_ok stale stale && echo yes)
# a beat (with the status idle: no deadline after it, so it stays healthy)
out2=$(in_ct hbctl beat sys-alert --status idle 2>&1)
beat_rc=$?
poll 15 all_recovered
am_gone=$([ $HAVE_AM = yes ] && am_alert)
alert_journal () { in_ct journalctl -b -q --no-pager -u heartbeatd -n 12 2>&1; }

exec_owner=$(in_ct stat -c %U /var/log/heartbeat/hb-test-exec.stale.env 2>&1)
if [ $reg_rc -eq 0 ] && [ $beat_rc -eq 0 ] && [ "$stale_exec" = yes ] && exec_env_ok recovered healthy &&
   [ "$exec_owner" = heartbeat ]; then
  ok "alert exec=: $HELPERS/hb-test-alert-exec.sh ran as user heartbeat with $(grep -v '^HB_STATUS' "$EXEC_ENV.stale.env" | tr '\n' ' ')and again for recovered"
else
  not_ok "alert exec=: the script gets HB_* for stale and recovered" "register rc=$reg_rc $out; beat rc=$beat_rc $out2" \
    "stale: $(cat "$EXEC_ENV.stale.env" 2>&1 | tr '\n' ' ') (written by: $exec_owner)" "recovered: $(cat "$EXEC_ENV.recovered.env" 2>&1 | tr '\n' ' ')" "$(alert_journal)"
fi
if [ "$TESTHOST" = yes ] && [ "$stale_hook" = yes ] && webhook_ok recovered healthy; then
  ok "alert webhook=: the receiver on testhost $TH_ADDR got {alert hb-webhook, event stale, agent sys-alert, state stale} ${took_stale}s after the registration, then recovered"
else
  not_ok "alert webhook=: the receiver on testhost gets the stale and recovered events of sys-alert" \
    "received: $(cat "$WEBHOOK" 2>&1)" "$(in_ct journalctl -b -q --no-pager -u hb-test-receiver -n 5 2>&1)" "$(alert_journal)"
fi
if [ $HAVE_AM = no ]; then
  skip "alert alertmanager=: an alert on a real Alertmanager" "/usr/bin/prometheus-alertmanager is missing (Debian package prometheus-alertmanager)"
elif [ "$am_stale" = "active HeartbeatAgentStale warning $HOSTNAME_CT" ] && [ "$am_gone" = none ]; then
  ok "alert alertmanager=: Alertmanager on testhost listed HeartbeatAgentStale{agent=sys-alert,hostname=$HOSTNAME_CT,severity=warning} active after the stale, and no more after the beat (resolved)"
else
  not_ok "alert alertmanager=: active in Alertmanager when stale, resolved after a beat" \
    "GET /api/v2/alerts after stale: \"$am_stale\" (want \"active HeartbeatAgentStale warning $HOSTNAME_CT\"), after the beat: \"$am_gone\" (want \"none\")" \
    "$(in_ct journalctl -b -q --no-pager -u hb-test-alertmanager -n 5 2>&1)" "$(alert_journal)"
fi

# A job run by hbctl run that fails: the last of its output reaches the
# alert (HB_OUTPUT), and what the alert's program left in the background
# ends with it, under the unit's sandbox
out=$(in_ct hbctl run --name sys-job-out --interval 1s -- sh -c 'seq 1 3000; echo "disk full on /srv" >&2; exit 3' 2>&1)
run_rc=$?
error_alerted () { [ -s "$EXEC_ENV.error.child" ] && grep -qx "HB_EVENT=error" "$EXEC_ENV.error.env" 2>/dev/null; }
poll 15 error_alerted
child=$(cat "$EXEC_ENV.error.child" 2>/dev/null)
child_gone () { [ -n "$child" ] && ! in_ct kill -0 "$child" 2>/dev/null; }
poll 10 child_gone
run_output=$(agent_field sys-job-out metadata 2>/dev/null | head -c 300)
if [ $run_rc -eq 3 ] && error_alerted && grep -q "^disk full on /srv" "$EXEC_ENV.error.output" &&
   grep -q "^3000$" "$EXEC_ENV.error.output" && ! grep -q "^1$" "$EXEC_ENV.error.output" &&
   [ "$(wc -c <"$EXEC_ENV.error.output")" -le 4096 ] && child_gone; then
  ok "alert exec= for a failed hbctl run: HB_OUTPUT held the last $(wc -c <"$EXEC_ENV.error.output") bytes of its output (… 3000, disk full on /srv), and the script's background child $child ended with it"
else
  not_ok "alert exec= for a failed hbctl run: HB_OUTPUT is the output's last 4 KiB, and the script's background child is killed" \
    "hbctl run rc=$run_rc (want 3)" "output file: $(tail -c 200 "$EXEC_ENV.error.output" 2>&1)" \
    "child $child: $(in_ct ps -o pid,pgid,user,args -p "$child" 2>&1 | tail -n 1)" "metadata: $run_output" "$(alert_journal)"
fi
[ -n "$child" ] && in_ct kill -9 "$child" 2>/dev/null
in_ct hbctl unregister sys-job-out >/dev/null 2>&1

# The event log at its documented path
ev_owner=$(in_ct stat -c '%U %a' /var/log/heartbeat/events.jsonl 2>&1)
ev_lines=$(wc -l <"$EVENTS" 2>/dev/null)
if [ "$ev_owner" = "heartbeat 600" ] && jsonl_has "$EVENTS" event=registered agent=sys-alert &&
   jsonl_has "$EVENTS" event=stale agent=sys-alert state=stale; then
  ok "[log] events-file=/var/log/heartbeat/events.jsonl: owner heartbeat, mode 0600, $ev_lines JSON lines, with registered and stale of sys-alert"
else
  not_ok "[log] events-file=/var/log/heartbeat/events.jsonl: owned by heartbeat, JSON lines for registered and stale" \
    "stat: $ev_owner" "$(head -n 10 "$EVENTS" 2>&1)"
fi
in_ct hbctl unregister sys-alert >/dev/null 2>&1

# Heartbeat files, where the sandboxed unit can read them (ProtectHome=yes
# hides /home; /var/lib is readable)
in_ct install -d -m 0755 /var/lib/hbtest
printf '[agent:sys-hbfile]\nheartbeat-file=/var/lib/hbtest/sys-hbfile.json\ntimeout-seconds=60\n' \
  >"$ROOT$CONF_D/72-hb-system-test-files.conf"
chmod 0644 "$ROOT$CONF_D/72-hb-system-test-files.conf"
in_ct systemctl reload heartbeatd.service
in_ct systemd-run --quiet --unit=hb-test-sleeper /bin/sleep 86400
SLEEPER=$(in_ct systemctl show -P MainPID hb-test-sleeper.service)
file_state () { [ "$(agent_field sys-hbfile state)" = "$1" ]; }
st0=$(agent_field sys-hbfile state)
out=$(in_ct hbctl beat --file /var/lib/hbtest/sys-hbfile.json --key sys-hbfile --pid "$SLEEPER" 2>&1)
rc=$?
if [ "$st0" = no-heartbeat ] && [ $rc -eq 0 ] && [[ "$SLEEPER" =~ ^[1-9][0-9]*$ ]] && poll 10 file_state healthy; then
  ok "heartbeat-file=/var/lib/hbtest/sys-hbfile.json: no-heartbeat, then healthy after hbctl beat --file --key sys-hbfile --pid $SLEEPER (a live sleep)"
else
  not_ok "heartbeat-file: a valid file makes the agent healthy" "state before: $st0; hbctl rc=$rc $out; pid \"$SLEEPER\"" \
    "state now: $(agent_field sys-hbfile state)" "file: $(cat "$ROOT/var/lib/hbtest/sys-hbfile.json" 2>&1)" "$(alert_journal)"
fi
DEAD=$(in_ct sh -c 'echo $$')   # a process that has exited
out=$(in_ct hbctl beat --file /var/lib/hbtest/sys-hbfile.json --key sys-hbfile --pid "$DEAD" 2>&1)
rc=$?
if [ $rc -eq 0 ] && ! in_ct kill -0 "$DEAD" 2>/dev/null && poll 10 file_state gone &&
   poll 5 journal_has _SYSTEMD_UNIT=heartbeatd.service MESSAGE="Heartbeat file /var/lib/hbtest/sys-hbfile.json of agent “sys-hbfile”: process $DEAD is not running"; then
  ok "heartbeat-file: a file naming pid $DEAD, which is not running, makes sys-hbfile gone"
else
  not_ok "heartbeat-file: a file with a dead pid makes the agent gone" "hbctl rc=$rc $out" \
    "state: $(agent_field sys-hbfile state)" "$(alert_journal)"
fi

# HTTP on the container's veth address, with a tokens file, reached from testhost
TOKENS_FILE=$(dirname "$CONF_D")/http-tokens
TOKEN=hb-system-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
(umask 077; printf '# bearer tokens for the system test\n%s\n' "$TOKEN" >"$ROOT$TOKENS_FILE")
in_ct chown heartbeat:heartbeat "$TOKENS_FILE"
# plain HTTP off loopback: only on a network the admin declares trusted
# (else heartbeatd refuses to start: see tls-checks.sh)
printf '[http]\naddress=%s\ntokens-file=%s\ntrusted-network=true\n' "$CT_ADDR" "$TOKENS_FILE" >"$ROOT$CONF_D/73-hb-system-test-http.conf"
chmod 0644 "$ROOT$CONF_D/73-hb-system-test-http.conf"
tok_stat=$(in_ct stat -c '%U %a' "$TOKENS_FILE")
# (daemon-reload: the watchdog drop-in above is gone)
out=$(in_ct systemctl daemon-reload 2>&1 && in_ct systemctl restart heartbeatd.service 2>&1)
rc=$?
health_ok () { health=$(http GET "http://$CT_ADDR:8765/health" 2>&1); [ "$(http_code "$health")" = 200 ]; }
if [ $rc -eq 0 ] && [ "$TESTHOST" = yes ] && poll 10 health_ok &&
   "$PY" -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1].rsplit("\n",1)[0])["status"] == "ok" else 1)' "$health" 2>/dev/null; then
  ok "[http] address=$CT_ADDR tokens-file=$TOKENS_FILE ($tok_stat) trusted-network=true: GET /health from testhost is 200, status ok"
else
  not_ok "HTTP on $CT_ADDR: GET /health from testhost" "restart rc=$rc $out" "tokens file: $tok_stat" "GET /health: $health" \
    "$(in_ct journalctl -b -q --no-pager -u heartbeatd -n 8 2>&1)"
fi
beat_body='{"run_id": "sys-http", "status": "working"}'
no_token=$(http POST "http://$CT_ADDR:8765/heartbeat" -H 'Content-Type: application/json' -d "$beat_body" 2>&1)
with_token=$(http POST "http://$CT_ADDR:8765/heartbeat" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $TOKEN" -d "$beat_body" 2>&1)
owner=$(agent_field sys-http owner-uid); st=$(agent_field sys-http status)
if [ "$(http_code "$no_token")" = 401 ] && [ "$(http_code "$with_token")" = 200 ] && [ "$owner" = 4294967294 ] && [ "$st" = working ]; then
  ok "HTTP from testhost: POST /heartbeat without a token is 401, with the token 200; sys-http is on D-Bus (owner-uid 4294967294, status working)"
else
  not_ok "HTTP from testhost: POST /heartbeat needs the token; the agent appears on D-Bus" \
    "without a token: $no_token" "with the token: $with_token" "hbctl show sys-http: owner-uid=$owner status=$st"
fi
page=$(http GET "http://$CT_ADDR:8765/" -H "Authorization: Bearer $TOKEN" 2>&1)
if [ "$(http_code "$page")" = 200 ] && [[ "$(tail -n1 <<<"$page")" == "200 text/html"* ]] && grep -q '<title>heartbeatd</title>' <<<"$page"; then
  ok "HTTP from testhost: GET / with the token is the dashboard ($(tail -n1 <<<"$page" | cut -d' ' -f2-), <title>heartbeatd</title>)"
else
  not_ok "HTTP from testhost: GET / is the dashboard (text/html with its title)" "$(head -c 300 <<<"$page")" "… $(tail -n1 <<<"$page")"
fi

# A just-booted machine: the installed heartbeatd (or HB_SYSTEM_BOOT_DAEMON,
# a binary on the host, copied in) under a time namespace whose monotonic
# and boot clocks read about 60 s, on a private session bus, with a
# declared agent whose heartbeat file is an hour old and names a live
# process: it must be stale (a fixed bug took times before boot for "now").
# unshare(1) runs from here, through nsenter, because writing
# timens_offsets needs CAP_SYS_TIME, which the container's own processes
# lack.
B=$T/boot
mkdir -p "$ROOT$B/state"
printf '[http]\nenabled=false\n\n[agent:old]\nheartbeat-file=%s/old.json\ntimeout-seconds=300\n' "$B" >"$ROOT$B/heartbeatd.conf"
"$PY" - "$ROOT$B/old.json" "$SLEEPER" <<'PY'
import datetime, json, sys
stamp = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
with open(sys.argv[1], "w") as f:
    json.dump({"process_key": "old", "pid": int(sys.argv[2]), "status": "running",
               "timestamp": stamp.isoformat(timespec="milliseconds"), "iteration": 1}, f)
PY
chmod 0644 "$ROOT$B/old.json"
HBD=$(prop ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
if [ -n "${HB_SYSTEM_BOOT_DAEMON:-}" ]; then
  install -m 0755 "$HB_SYSTEM_BOOT_DAEMON" "$ROOT$HELPERS/heartbeatd-under-test"
  HBD=$HELPERS/heartbeatd-under-test
  diag "just-booted check: testing $HB_SYSTEM_BOOT_DAEMON (HB_SYSTEM_BOOT_DAEMON), not the installed heartbeatd"
fi
in_ct systemd-run --quiet --unit=hb-test-bus /usr/bin/dbus-daemon --session --nofork --nopidfile --address="unix:path=$B/bus"
poll 10 test -S "$ROOT$B/bus"
up=$(in_ct cut -d. -f1 /proc/uptime)
OFFSET=$(( up > 60 ? up - 60 : 0 ))
nsenter -t "$LEADER" -a timeout -k 2 60 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 HOME="$B" XDG_STATE_HOME="$B/state" DBUS_SESSION_BUS_ADDRESS="unix:path=$B/bus" \
  unshare --time --fork --kill-child --monotonic=-"$OFFSET" --boottime=-"$OFFSET" \
  "$HBD" --session --config "$B/heartbeatd.conf" </dev/null >"$WORK/boot-daemon.log" 2>&1 &
BOOT_NSENTER=$!
boot_hbctl () { in_ct env DBUS_SESSION_BUS_ADDRESS="unix:path=$B/bus" hbctl --session "$@"; }
boot_state () { boot_hbctl show old --json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null; }
old_judged () { case "$(boot_state)" in stale|healthy|gone|error) return 0 ;; *) return 1 ;; esac; }
poll 10 old_judged
boot_st=$(boot_state)
boot_pid=$(in_ct busctl --address="unix:path=$B/bus" call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
  GetConnectionUnixProcessID s org.heartbeat.Monitor1 2>/dev/null | sed -n 's/^u //p')
boot_mono=""
[[ "$boot_pid" =~ ^[1-9][0-9]*$ ]] &&
  boot_mono=$(in_ct nsenter -t "$boot_pid" --time "$PY" -c 'import time; print("%.0f" % time.monotonic())' 2>/dev/null)
if [ "$boot_st" = stale ] && [ -n "$boot_mono" ] && [ "$boot_mono" -lt 600 ]; then
  ok "just booted (unshare --time: heartbeatd's monotonic clock at ${boot_mono}s): [agent:old] with an hour-old heartbeat file and a live pid is stale"
else
  not_ok "just booted: [agent:old] with an hour-old heartbeat file and a live pid is stale, not healthy" \
    "hbctl --session show old: state \"$boot_st\" (want stale); the daemon's monotonic clock: \"$boot_mono\" s (offset -$OFFSET s)" \
    "$(boot_hbctl show old 2>&1)" "$(tail -n 8 "$WORK/boot-daemon.log")"
fi
# end it: SIGTERM to timeout(1) (it passes it on to its process group)
for child in $(pgrep -P "$BOOT_NSENTER"); do kill -TERM "$child" 2>/dev/null; done
poll 5 eval '! kill -0 "$BOOT_NSENTER" 2>/dev/null' || kill -KILL "$BOOT_NSENTER" 2>/dev/null
wait "$BOOT_NSENTER" 2>/dev/null

# The end of this part: helpers stopped, the namespace and veth pair gone,
# heartbeatd back on its loopback configuration
for u in $HELPER_UNITS; do in_ct systemctl stop "$u" 2>/dev/null; done   # (Alertmanager's may not exist)
in_ct ip netns del testhost 2>/dev/null
rm -f "$ROOT$CONF_D/70-hb-system-test-alerts.conf" "$ROOT$CONF_D/71-hb-system-test-log.conf" \
  "$ROOT$CONF_D/72-hb-system-test-files.conf" "$ROOT$CONF_D/73-hb-system-test-http.conf" "$ROOT$TOKENS_FILE"
in_ct systemctl restart heartbeatd.service
left_units=$(for u in $HELPER_UNITS; do s=$(in_ct systemctl is-active "$u"); [ "$s" = inactive ] || echo "$u: $s"; done)
left_net=$(in_ct ip netns list; in_ct ip -br link show | grep -E '^hb-(ct|th)')
left_procs=$(in_ct pgrep -a -f '[p]rometheus-alertmanager|[h]b-test-receiver[.]py|[s]leep 86400|[h]eartbeatd --session|[d]bus-daemon --session')
if [ -z "$left_units$left_net$left_procs" ] && [ "$(prop ActiveState)" = active ] &&
   poll 5 journal_has _SYSTEMD_UNIT=heartbeatd.service MESSAGE="Serving HTTP on http://127.0.0.1:8765/" _PID="$(prop MainPID)"; then
  ok "cleanup: helper units inactive, testhost namespace and veth pair deleted, no helper process left, heartbeatd back on 127.0.0.1"
else
  not_ok "cleanup: helpers, namespace, veth pair and processes gone" "$left_units" "$left_net" "$left_procs" \
    "heartbeatd: $(prop ActiveState)"
fi

# ------------------------------------------ a unit-backed agent ([agent:ID] unit=)
#
# hb-test-worker.service is a real unit, run as user nobody, whose program
# (hb-test-worker.sh) beats hb-worker with the installed hbctl every 0.5 s
# unless HANG exists (a hung program). Its ExecStartPre=+ (full privileges)
# removes HANG, so a restarted worker beats again. A drop-in declares
# [agent:hb-worker] unit=hb-test-worker.service stale-threshold=3s and an
# alert whose empty restart-unit= restarts the agent's own unit. heartbeatd
# follows the unit: started -> healthy, stopped -> gone, running without
# beats -> stale -> restarted by the alert -> healthy. Read over HTTP on
# 127.0.0.1:8765 (heartbeatd is back on its loopback configuration), D-Bus
# and hbctl, and compared with what systemctl says.

W=hb-test-worker.service
HANG=/run/hb-test-worker-hang
HTTP_LO=http://127.0.0.1:8765
install -m 0755 "$SRCDIR/hb-test-worker.sh" "$ROOT$HELPERS/hb-test-worker.sh"
cat >"$ROOT/etc/systemd/system/$W" <<UNIT
[Unit]
Description=heartbeatd system test: a worker that beats hb-worker

[Service]
Type=simple
User=nobody
ExecStartPre=+/bin/rm -f $HANG
ExecStart=$HELPERS/hb-test-worker.sh hb-worker $HANG
Restart=no
UNIT
cat >"$ROOT$CONF_D/74-hb-system-test-worker.conf" <<CONF
[agent:hb-worker]
task=system test worker
unit=$W
stale-threshold=3s

[alert:worker-restart]
events=stale
agents=hb-worker
restart-unit=
cooldown=1s
CONF
chmod 0644 "$ROOT/etc/systemd/system/$W" "$ROOT$CONF_D/74-hb-system-test-worker.conf"
in_ct systemctl daemon-reload
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

wprop () { in_ct systemctl show -P "$1" "$W"; }
# agent_json ID: GET /v1/agents/ID (the agent's JSON object) into $WJ
agent_json () {
  WJ=$(in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/$1" 2>&1)
  [ "$(http_code "$WJ")" = 200 ] || return 1
  WJ=$(sed '$d' <<<"$WJ")
}
worker_json () { agent_json hb-worker; }
# wj PATH: a member of $WJ, e.g. state or unit.main-pid ("" if absent)
wj () {
  "$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
v = v.get("agent", v)
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(str(v).lower() if isinstance(v, bool) else v)' "$WJ" "$1" 2>/dev/null
}
# worker_is STATE [ACTIVE-STATE]: hb-worker's state (and its unit's) over HTTP
worker_is () {
  worker_json && [ "$(wj state)" = "$1" ] && { [ -z "${2:-}" ] || [ "$(wj unit.active-state)" = "$2" ]; }
}
worker_beats_above () { worker_json && [ "$(wj beats)" -gt "$1" ] 2>/dev/null; }
worker_journal () {
  in_ct journalctl -b -q --no-pager -u heartbeatd -n 15 2>&1
  in_ct journalctl -b -q --no-pager -u "$W" -n 5 2>&1
}
worker_diag () { echo "GET /v1/agents/hb-worker: $WJ"; worker_journal; }

# (1) started: healthy, beats from uid 65534 counted, the unit's numbers
out=$(in_ct systemctl start "$W" 2>&1)
rc=$?
if [ $rc -eq 0 ] && poll 15 worker_is healthy active && b0=$(wj beats) && poll 15 worker_beats_above "$b0" &&
   [ "$(in_ct ps -o user= -p "$(wprop MainPID)")" = nobody ]; then
  ok "unit=$W: started, hb-worker is healthy, the beats of its hbctl (uid 65534, no polkit) count: $b0 -> $(wj beats)"
else
  not_ok "unit=$W: started, hb-worker healthy and its beats (as uid 65534) counted" "start rc=$rc $out" \
    "unit: $(wprop ActiveState)/$(wprop SubState) MainPID=$(wprop MainPID) user=$(in_ct ps -o user= -p "$(wprop MainPID)")" \
    "$(worker_diag)"
fi

# ... and it is the cgroup that lets them in: uid 65534 outside the unit
# may not beat hb-worker (no polkit rule grants it now)
out=$(as_nobody hbctl beat hb-worker 2>&1)
rc=$?
if [ $rc -ne 0 ] && [ -n "$out" ]; then
  ok "unit=$W: uid 65534 outside the unit may not beat hb-worker (exit $rc: $(head -n1 <<<"$out"))"
else
  not_ok "unit=$W: uid 65534 outside the unit may not beat hb-worker" "hbctl beat rc=$rc: $out"
fi

pid1=$(wprop MainPID)
cpu_a=$(wprop CPUUsageNSec); mem_a=$(wprop MemoryCurrent)
worker_json
cpu_b=$(wprop CPUUsageNSec); mem_b=$(wprop MemoryCurrent)
hb_pid=$(wj unit.main-pid); hb_cpu=$(wj unit.cpu-usec); hb_mem=$(wj unit.memory-bytes)
hb_name=$(wj unit.name); hb_sub=$(wj unit.sub-state); hb_since=$(wj unit.active-since-usec)
since=$(in_ct systemctl show --timestamp=us -P ActiveEnterTimestamp "$W")
since_usec=$(in_ct date -d "$since" +%s%6N 2>/dev/null)
if [[ "$pid1" =~ ^[1-9][0-9]*$ ]] && [ "$hb_pid" = "$pid1" ] && [ "$hb_name" = "$W" ] && [ "$hb_sub" = running ] &&
   [[ "$since_usec" =~ ^[0-9]+$ ]] && [ "$hb_since" = "$since_usec" ]; then
  ok "HTTP: hb-worker's unit {name $hb_name, active/$hb_sub, main-pid $hb_pid, active-since-usec $hb_since} is systemctl's (MainPID $pid1, ActiveEnterTimestamp $since)"
else
  not_ok "HTTP: hb-worker's unit.main-pid etc. are systemctl's" "systemctl: MainPID=$pid1 ActiveEnterTimestamp=$since ($since_usec)" \
    "HTTP: name=$hb_name sub-state=$hb_sub main-pid=$hb_pid active-since-usec=$hb_since" "$(worker_diag)"
fi
# CPU: systemd's CPUUsageNSec and heartbeatd's cpu-usec are cpu.stat's
# usage_usec: heartbeatd's lies between the two readings around it.
# Memory moves with each hbctl the loop starts: within 4x of systemd's.
if [[ "$cpu_a" =~ ^[0-9]+$ ]] && [[ "$cpu_b" =~ ^[0-9]+$ ]]; then
  cpu_ok=$([[ "$hb_cpu" =~ ^[0-9]+$ ]] && [ "$hb_cpu" -ge $((cpu_a / 1000 - 1000)) ] && [ "$hb_cpu" -le $((cpu_b / 1000 + 1000)) ] && echo yes)
else
  cpu_ok=$([ -z "$hb_cpu" ] && echo "yes (systemd has no CPUUsageNSec: $cpu_a, absent here too)")
fi
if [[ "$mem_a" =~ ^[0-9]+$ ]] && [[ "$mem_b" =~ ^[0-9]+$ ]]; then
  lo=$(( (mem_a < mem_b ? mem_a : mem_b) / 4 )); hi=$(( (mem_a > mem_b ? mem_a : mem_b) * 4 ))
  mem_ok=$([[ "$hb_mem" =~ ^[0-9]+$ ]] && [ "$hb_mem" -gt 0 ] && [ "$hb_mem" -ge "$lo" ] && [ "$hb_mem" -le "$hi" ] && echo yes)
else
  mem_ok=$([ -z "$hb_mem" ] && echo "yes (systemd has no MemoryCurrent: $mem_a, absent here too)")
fi
if [ -n "$cpu_ok" ] && [ -n "$mem_ok" ]; then
  ok "HTTP: hb-worker's unit.cpu-usec $hb_cpu (systemd: $((${cpu_a:-0} / 1000))..$((${cpu_b:-0} / 1000)) µs) and memory-bytes $hb_mem (systemd: $mem_a, $mem_b)"
else
  not_ok "HTTP: hb-worker's unit.cpu-usec and memory-bytes agree with systemd's CPUUsageNSec and MemoryCurrent" \
    "systemctl before/after: CPUUsageNSec $cpu_a/$cpu_b MemoryCurrent $mem_a/$mem_b" \
    "HTTP: cpu-usec=$hb_cpu memory-bytes=$hb_mem" "$WJ"
fi
# hbctl status: hb-worker among the declared agents (before the heading of
# the others), its PID column the unit's MainPID
status_out=$(in_ct env COLUMNS=200 hbctl --no-color status 2>&1)
status_row=$(grep -m1 '^hb-worker ' <<<"$status_out")
row_line=$(grep -n -m1 '^hb-worker ' <<<"$status_out" | cut -d: -f1)
others_line=$(grep -n -m1 'Additional agents' <<<"$status_out" | cut -d: -f1)
# ... its STATE healthy and its PID the unit's MainPID, its RUNNING the
# time since the unit became active, its CPU the unit's (a duration, since
# systemd accounts CPU here), MEM the unit's or "-" when systemd has no
# MemoryCurrent either (columns found by their headings)
status_cols=$("$PY" - "$status_out" "$since_usec" "$(date +%s%6N)" "$mem_a" "$pid1" <<'PY'
import re, sys
out, since, now, mem, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
header = out.splitlines()[0]
row = next(l for l in out.splitlines() if l.startswith("hb-worker "))
cols = dict(zip(re.split(r"\s{2,}", header.strip()), re.split(r"\s{2,}", row.strip())))
if cols.get("STATE") != "healthy" or cols.get("PID") != pid:
    raise SystemExit(f"STATE {cols.get('STATE')!r}, PID {cols.get('PID')!r} (want healthy, {pid})")
def secs(d):
    m = re.fullmatch(r"(\d+)ms", d)
    if m: return int(m[1]) / 1000
    m = re.fullmatch(r"(\d+)s", d)
    if m: return int(m[1])
    m = re.fullmatch(r"(\d+)m(\d+)s", d)
    if m: return int(m[1]) * 60 + int(m[2])
    raise SystemExit(f"RUNNING {d!r} is not a duration")
running, expected = secs(cols["RUNNING"]), (now - since) / 1e6
if abs(running - expected) > 2:
    raise SystemExit(f"RUNNING {cols['RUNNING']} but the unit is active for {expected:.1f}s")
if not re.fullmatch(r"\d+(ms|s|m\d+s)", cols["CPU"]):
    raise SystemExit(f"CPU {cols['CPU']!r} is not a duration")
if mem.isdigit() != (cols["MEM"] != "-"):
    raise SystemExit(f"MEM {cols['MEM']!r} while systemd's MemoryCurrent is {mem!r}")
print(f"RUNNING {cols['RUNNING']} (active {expected:.1f}s), CPU {cols['CPU']}, MEM {cols['MEM']}")
PY
)
status_cols_rc=$?
if [ -n "$row_line" ] && { [ -z "$others_line" ] || [ "$row_line" -lt "$others_line" ]; } &&
   [ $status_cols_rc -eq 0 ]; then
  ok "hbctl status: hb-worker is listed with the declared agents (line $row_line, \"Additional agents\" at ${others_line:-none}), healthy, PID $pid1, $status_cols: $(tr -s ' ' <<<"$status_row")"
else
  not_ok "hbctl status: hb-worker among the declared agents, healthy, with PID $pid1, its unit's RUNNING, CPU and MEM" \
    "$status_cols" "$status_out"
fi

# (2) systemctl stop: gone, unit inactive
out=$(in_ct systemctl stop "$W" 2>&1)
rc=$?
if [ $rc -eq 0 ] && poll 15 worker_is gone inactive && [ "$(wj unit.main-pid)" = 0 ]; then
  ok "systemctl stop $W: hb-worker is gone, unit.active-state inactive, main-pid 0"
else
  not_ok "systemctl stop $W: hb-worker gone, unit.active-state inactive" "stop rc=$rc $out" "$(worker_diag)"
fi

# (3) systemctl start: a new run, healthy, a new main process
out=$(in_ct systemctl start "$W" 2>&1)
rc=$?
pid2=$(wprop MainPID)
if [ $rc -eq 0 ] && poll 15 worker_is healthy active && [ "$(wj unit.main-pid)" = "$pid2" ] && [ "$pid2" != "$pid1" ] &&
   b0=$(wj beats) && poll 15 worker_beats_above "$b0"; then
  ok "systemctl start $W: hb-worker is healthy again, main-pid $pid1 -> $pid2, beating"
else
  not_ok "systemctl start $W: hb-worker healthy again with the new main-pid" "start rc=$rc $out" \
    "MainPID $pid1 -> $pid2" "$(worker_diag)"
fi

# (4) the hang: no beats while the unit stays active -> stale within the
# 3 s threshold (+ the 0.5 s between beats, + margin) -> [alert:worker-restart]
# restarts the unit -> a new run that beats again
inv0=$(wprop InvocationID)
t_hang=$(date +%s%6N)
in_ct touch "$HANG"
worker_restarted () {
  local inv
  inv=$(wprop InvocationID)
  [ -n "$inv" ] && [ "$inv" != "$inv0" ] && [ "$(wprop ActiveState)" = active ]
}
restart_logged () {
  in_ct journalctl -b -q --no-pager -u heartbeatd.service -o cat |
    grep -qF "[alert:worker-restart] restarting $W for agent hb-worker: done"
}
if poll 20 worker_restarted && poll 10 restart_logged; then
  took=$("$PY" -c 'import sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e6))' "$t_hang" "$(date +%s%6N)")
  ok "hang: $HANG made hb-worker stale and [alert:worker-restart] (restart-unit= empty) restarted $W (InvocationID changed, MainPID $pid2 -> $(wprop MainPID)) within ${took}s of the touch"
else
  not_ok "hang: a worker that stops beating is stale and gets its own unit restarted" \
    "InvocationID $inv0 -> $(wprop InvocationID), ActiveState $(wprop ActiveState), hang file: $(in_ct ls -l "$HANG" 2>&1)" \
    "$(worker_diag)"
fi
pid3=$(wprop MainPID)
if poll 15 worker_is healthy active && [ "$(wj unit.main-pid)" = "$pid3" ] && b0=$(wj beats) && poll 15 worker_beats_above "$b0" &&
   ! in_ct test -e "$HANG" && [ "$(wj unit.heartbeatd-restarts)" = 1 ] &&
   restarts_line=$(in_ct hbctl show hb-worker 2>&1 | grep '^Restarts:') &&
   [[ "$restarts_line" =~ ^Restarts:\ +1\ \(1\ by\ heartbeatd\)$ ]]; then
  ok "hang: after the restart $HANG is gone (ExecStartPre=+) and hb-worker is healthy and beating (main-pid $pid3); hbctl show: $restarts_line"
else
  not_ok "hang: after the restart hb-worker is healthy and beats again, its restart counted" "MainPID $pid3, hang file: $(in_ct ls -l "$HANG" 2>&1)" \
    "hbctl show: ${restarts_line:-}" \
    "$(worker_diag)"
fi

# (5) the history: D-Bus GetHistory, GET /v1/agents/hb-worker/history and
# hbctl show. In order (other entries may sit between): healthy (the first
# start), gone (the stop), healthy (the start), stale (the hang), healthy
# (the restart).
# history_check FORMAT: the history on stdin (FORMAT dbus: busctl --json;
# http: the HTTP body) has the sequence; prints the states, and with the
# hang's time the seconds from the touch to stale
history_check () {
  "$PY" -c '
import json, sys
fmt, t_hang = sys.argv[1], int(sys.argv[2])
d = json.load(sys.stdin)
if fmt == "dbus":
    entries = [(int(at), st) for at, st in d["data"][0]]
else:
    entries = [(int(e["at-usec"]), e["state"]) for e in d["history"]]
states = [st for at, st in entries]
want = ["healthy", "gone", "healthy", "stale", "healthy"]
i = 0
for st in states:
    if i < len(want) and st == want[i]:
        i += 1
stale_after = [at for at, st in entries if st == "stale" and at >= t_hang - 1000000]
took = "%.1f" % ((stale_after[0] - t_hang) / 1e6) if stale_after else "?"
print(" ".join(states), "| stale %s s after the touch" % took)
ok = i == len(want) and entries == sorted(entries, key=lambda e: e[0]) and stale_after and \
     2.0 <= (stale_after[0] - t_hang) / 1e6 <= 6.0
sys.exit(0 if ok else 1)' "$1" "$t_hang"
}
dbus_hist=$(in_ct busctl --json=short call org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 GetHistory s hb-worker 2>&1)
if dbus_seq=$(history_check dbus <<<"$dbus_hist" 2>&1); then
  ok "D-Bus GetHistory(hb-worker): $dbus_seq"
else
  not_ok "D-Bus GetHistory(hb-worker): healthy … gone … healthy … stale … healthy, oldest first, stale 3 s (+ margin) after the hang" \
    "$dbus_seq" "$dbus_hist"
fi
http_hist=$(in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/hb-worker/history" 2>&1)
if [ "$(http_code "$http_hist")" = 200 ] && http_seq=$(sed '$d' <<<"$http_hist" | history_check http 2>&1); then
  ok "GET /v1/agents/hb-worker/history: $http_seq"
else
  not_ok "GET /v1/agents/hb-worker/history: healthy … gone … healthy … stale … healthy" "${http_seq:-}" "$http_hist"
fi
show_out=$(in_ct env COLUMNS=200 hbctl --no-color show hb-worker 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^History:' <<<"$show_out" && grep -qE '^(Changes:)? +[0-9:]+ +stale ' <<<"$show_out" &&
   grep -qE '^(Changes:)? +[0-9:]+ +gone ' <<<"$show_out" && grep -q "$W" <<<"$show_out"; then
  ok "hbctl show hb-worker: the unit and a timeline with stale and gone ($(grep -cE '^(Changes:)? +[0-9:]+ ' <<<"$show_out") changes listed)"
else
  not_ok "hbctl show hb-worker: the unit and a timeline with stale and gone" "rc=$rc" "$show_out"
fi

# (6) the dashboard (GET /, data/dashboard/index.html) of this daemon, in a
# real headless Chromium: tests/dashboard/test-dashboard.py --url. The
# container has --private-network, so its 127.0.0.1:8765 is not the host's:
# Chromium runs inside the container (nsenter into all its namespaces; the
# host's chromium and python3-websocket show through the overlay). It reads
# GET /v1/agents/hb-worker/history itself and compares hb-worker's strips
# (?short= covering this part's events) with it, colour by colour, in order
# and in place; the detail view (#agent=hb-worker) must list the same states
# and show the Unit section with systemctl's MainPID. Its TAP lines are
# numbered here.
DASH=$HELPERS/test-dashboard.py
install -m 0755 "$SRCDIR/../dashboard/test-dashboard.py" "$ROOT$DASH"
in_ct install -d -m 0700 "$T/dashboard-home"
dash_pid=$(wprop MainPID)
dash_out=$(nsenter -t "$LEADER" -a timeout -k 5 150 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 HOME="$T/dashboard-home" TMPDIR="$T" \
  "$PY" "$DASH" --url "$HTTP_LO" --check-agent hb-worker --expect-states healthy,gone,healthy,stale,healthy \
  --expect-main-pid "$dash_pid" --screenshot "$T/dashboard.png" 2>"$WORK/dashboard.err")
dash_rc=$?
dash_pid_after=$(wprop MainPID)
[ "$dash_pid_after" = "$dash_pid" ] || diag "the worker's MainPID changed during the dashboard check: $dash_pid -> $dash_pid_after"
dash_n=0 dash_failed=0 dash_fail="" dash_why=()
dash_flush () {
  [ -n "$dash_fail" ] && not_ok "$dash_fail" "${dash_why[@]}"
  dash_fail="" dash_why=()
}
while IFS= read -r line; do
  case $line in
    "ok "*) dash_flush; dash_n=$((dash_n + 1)); ok "$(sed 's/^ok [0-9]* - //' <<<"$line")" ;;
    "not ok "*) dash_flush; dash_n=$((dash_n + 1)); dash_failed=$((dash_failed + 1))
                dash_fail=$(sed 's/^not ok [0-9]* - //' <<<"$line") ;;
    "1..0 # SKIP"*) dash_flush; dash_n=$((dash_n + 1)); skip "dashboard: hb-worker's strips and detail view in Chromium" "${line#1..0 # SKIP }" ;;
    "#   "*) if [ -n "$dash_fail" ]; then dash_why+=("${line#\#   }"); else diag "${line#\# }"; fi ;;
    "# "*) dash_flush; diag "dashboard: ${line#\# }" ;;
    1..*) dash_flush ;;
    *) dash_flush; diag "dashboard: $line" ;;
  esac
done <<<"$dash_out"
dash_flush
if [ $dash_n -eq 0 ] || { [ $dash_rc -ne 0 ] && [ $dash_failed -eq 0 ]; }; then
  not_ok "dashboard: test-dashboard.py --url $HTTP_LO --check-agent hb-worker ran" "exit $dash_rc" \
    "$(tail -n 15 "$WORK/dashboard.err")"
fi
if [ -f "$ROOT$T/dashboard.png" ] && [ -d "$BUILDDIR/tests/system" ]; then
  cp "$ROOT$T/dashboard.png" "$BUILDDIR/tests/system/dashboard-hb-worker.png" &&
    diag "dashboard screenshot: $BUILDDIR/tests/system/dashboard-hb-worker.png"
fi

# every beat of the worker's three runs was accepted (a refusal would be
# in the worker's own journal)
refused=$(in_ct journalctl -b -q --no-pager -u "$W" -o cat | grep -m3 -E 'failed|not allowed|authenticate')
n_beats=$(worker_json && wj beats)
if [ -z "$refused" ]; then
  ok "unit=$W: no hbctl beat of the worker was refused in its three runs ($n_beats beats in the current one)"
else
  not_ok "unit=$W: no hbctl beat of the worker was refused" "$refused"
fi

# the end of this part: the worker stopped, its unit and drop-in removed
in_ct systemctl stop "$W"
rm -f "$ROOT/etc/systemd/system/$W" "$ROOT$CONF_D/74-hb-system-test-worker.conf"
in_ct rm -f "$HANG"
in_ct systemctl daemon-reload
in_ct systemctl reload heartbeatd.service
left=$(in_ct pgrep -a -f '[h]b-test-worker[.]sh')
[ -z "$left" ] || diag "hb-test-worker.sh still runs after systemctl stop: $left"

# ------------------------------------------------ a oneshot job ([agent:ID] unit=)
#
# hb-test-job.service is Type=oneshot, run as nobody: its job
# (hb-test-job.sh) runs while the unit is "activating", beating hb-job,
# until the test writes an exit status into its RuntimeDirectory. heartbeatd
# judges it as a job: running -> healthy (quiet -> stale), finished well ->
# idle (nothing to do until its next start), failed -> gone.

J=hb-test-job.service
JDIR=/run/hb-test-job
install -m 0755 "$SRCDIR/hb-test-job.sh" "$ROOT$HELPERS/hb-test-job.sh"
cat >"$ROOT/etc/systemd/system/$J" <<UNIT
[Unit]
Description=heartbeatd system test: a oneshot job that beats hb-job

[Service]
Type=oneshot
User=nobody
RuntimeDirectory=hb-test-job
ExecStart=$HELPERS/hb-test-job.sh hb-job $JDIR
UNIT
cat >"$ROOT$CONF_D/75-hb-system-test-job.conf" <<CONF
[agent:hb-job]
task=system test job
unit=$J
stale-threshold=3s
CONF
chmod 0644 "$ROOT/etc/systemd/system/$J" "$ROOT$CONF_D/75-hb-system-test-job.conf"
in_ct systemctl daemon-reload
out=$(in_ct systemctl reload heartbeatd.service 2>&1) || diag "systemctl reload heartbeatd: $out"

jprop () { in_ct systemctl show -P "$1" "$J"; }
job_json () { agent_json hb-job; }
# job_is STATE STATUS [ACTIVE-STATE]
job_is () {
  job_json && [ "$(wj state)" = "$1" ] && [ "$(wj status)" = "$2" ] &&
    { [ -z "${3:-}" ] || [ "$(wj unit.active-state)" = "$3" ]; }
}
job_beats_above () { job_json && [ "$(wj beats)" -gt "$1" ] 2>/dev/null; }
job_diag () {
  echo "GET /v1/agents/hb-job: $WJ"
  echo "unit: $(jprop ActiveState)/$(jprop SubState) Result=$(jprop Result)"
  in_ct journalctl -b -q --no-pager -u heartbeatd -n 10 2>&1
  in_ct journalctl -b -q --no-pager -u "$J" -n 5 2>&1
}
job_start () { in_ct systemctl start --no-block "$J" && poll 10 in_ct test -d "$JDIR"; }

# never run: a oneshot with nothing to do is idle, not gone
if poll 15 job_is healthy idle inactive; then
  ok "unit=$J (Type=oneshot), never started: hb-job is idle (healthy, status idle), unit inactive"
else
  not_ok "unit=$J (Type=oneshot), never started: hb-job idle" "$(job_diag)"
fi

# a run: healthy while it runs and beats; quiet -> stale; beats -> healthy
if job_start && poll 15 job_is healthy running activating && b0=$(wj beats) && poll 15 job_beats_above "$b0"; then
  ok "$J started (activating/start): hb-job is healthy and running, its beats (uid 65534) count: $b0 -> $(wj beats)"
else
  not_ok "$J started: hb-job healthy and beating" "$(job_diag)"
fi
in_ct touch "$JDIR/hang"
if poll 15 job_is stale running activating; then
  in_ct rm -f "$JDIR/hang"
  if poll 15 job_is healthy running activating; then
    ok "$J: a job that stops beating while it runs is stale, and healthy when it beats again"
  else
    not_ok "$J: healthy again after the hang" "$(job_diag)"
  fi
else
  in_ct rm -f "$JDIR/hang"
  not_ok "$J: a job that stops beating while it runs is stale" "$(job_diag)"
fi

# it finishes well: idle, and no gone in its history since it started
in_ct sh -c "echo 0 > $JDIR/exit"
job_history () {
  in_ct "$PY" "$HELPERS/hb-test-http.py" GET "$HTTP_LO/v1/agents/hb-job/history" 2>/dev/null | sed '$d' |
    "$PY" -c 'import json,sys; print(" ".join(e["state"] for e in json.load(sys.stdin)["history"]))'
}
if poll 15 job_is healthy idle inactive && [ "$(jprop Result)" = success ] && hist=$(job_history) &&
   [[ "$hist" == *"healthy stale healthy" ]]; then
  ok "$J exited 0: hb-job is idle (healthy, status idle), its history ends healthy stale healthy: $hist"
else
  not_ok "$J exited 0: hb-job idle, no gone" "history: ${hist:-}" "$(job_diag)"
fi

# systemd itself restarts (daemon-reexec: it leaves the bus and comes back
# under a new name), then reloads: heartbeatd follows the job through both
sd_pid1_name () { in_ct busctl --system status org.freedesktop.systemd1 2>/dev/null | sed -n 's/^UniqueName=//p'; }
sd_old=$(sd_pid1_name)
in_ct systemctl daemon-reexec
sd_back () { local n; n=$(sd_pid1_name); [ -n "$n" ] && [ "$n" != "$sd_old" ] && in_ct systemctl show -P Version >/dev/null 2>&1; }
if poll 20 sd_back && in_ct systemctl daemon-reload && job_start && poll 15 job_is healthy running activating; then
  ok "systemctl daemon-reexec (systemd $sd_old -> $(sd_pid1_name) on the bus) and daemon-reload: heartbeatd still follows $J, started again: healthy and running"
else
  not_ok "after daemon-reexec and daemon-reload, heartbeatd follows $J" "systemd on the bus: $sd_old -> $(sd_pid1_name)" "$(job_diag)"
fi

# it fails: gone, with the unit's result and exit status
if { [ "$(jprop ActiveState)" = activating ] || job_start; } && poll 15 job_is healthy running activating; then
  in_ct sh -c "echo 3 > $JDIR/exit"
  if poll 15 job_is gone stopped failed && [ "$(wj unit.result)" = exit-code ] && [ "$(wj unit.exit-status)" = 3 ]; then
    ok "$J exited 3: hb-job is gone (status stopped), unit failed, result exit-code, exit-status 3"
  else
    not_ok "$J exited 3: hb-job gone with the unit's result" "$(job_diag)"
  fi
else
  not_ok "$J started again: hb-job healthy" "$(job_diag)"
fi

in_ct systemctl stop "$J" 2>/dev/null
in_ct systemctl reset-failed "$J" 2>/dev/null
rm -f "$ROOT/etc/systemd/system/$J" "$ROOT$CONF_D/75-hb-system-test-job.conf"
in_ct systemctl daemon-reload
in_ct systemctl reload heartbeatd.service

# ------------------------------ a service has no run timeout; a unit declared before it starts
source "$SRCDIR/service-checks.sh"

# ------------------------------------------------ jobs that a systemd timer starts
source "$SRCDIR/timer-checks.sh"

# ------------------------------------------------ pausing an agent (maintenance)
source "$SRCDIR/pause-checks.sh"

# ------------------------------------- a user's unit (heartbeatd --session, systemd --user)
#
# heartbeatd on a user's session bus follows that user's systemd --user
# units. hbuser (created here) gets a user manager by lingering
# (user@UID.service, whose dbus.socket, from dbus-user-session, is the
# session bus at /run/user/UID/bus); heartbeatd runs as a transient unit of
# that manager with [agent:uw] unit=hb-user-worker.service, a user unit
# whose loop beats uw with hbctl --session. systemctl --user start and stop
# must make uw healthy and gone, with the unit's state and main PID. The end
# of this part stops both, ends the linger and removes the user.

HB_USER=hbuser
UW=hb-user-worker.service
if in_ct getent passwd "$HB_USER" >/dev/null; then
  diag "user $HB_USER exists already (the host has it)"
else
  out=$(in_ct useradd -m "$HB_USER" 2>&1) || diag "useradd -m $HB_USER: $out"
fi
HB_UID=$(in_ct id -u "$HB_USER" 2>/dev/null)
HB_HOME=$(in_ct getent passwd "$HB_USER" | cut -d: -f6)
# as_user COMMAND...: as hbuser, on its session bus and user manager
as_user () {
  in_ct runuser -u "$HB_USER" -- env XDG_RUNTIME_DIR="/run/user/$HB_UID" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$HB_UID/bus" "$@"
}
user_manager_up () {
  [ "$(in_ct systemctl show -P ActiveState "user@$HB_UID.service")" = active ] &&
    in_ct test -S "/run/user/$HB_UID/bus" &&
    case "$(as_user systemctl --user is-system-running 2>/dev/null)" in running|degraded) ;; *) false ;; esac
}
user_manager_diag () {
  echo "user@$HB_UID.service: $(in_ct systemctl show -P ActiveState "user@$HB_UID.service"); /run/user/$HB_UID: $(in_ct ls /run/user/$HB_UID 2>&1 | tr '\n' ' ')"
  echo "systemctl --user is-system-running: $(as_user systemctl --user is-system-running 2>&1)"
  in_ct journalctl -b -q --no-pager -u "user@$HB_UID.service" -n 8 2>&1
}
USER_BUS=no
out=$( [[ "$HB_UID" =~ ^[0-9]+$ ]] && in_ct loginctl enable-linger "$HB_USER" 2>&1)
rc=$?
if [ $rc -eq 0 ] && poll 30 user_manager_up; then
  USER_BUS=yes
  ok "loginctl enable-linger $HB_USER (uid $HB_UID): user@$HB_UID.service runs, its session bus is /run/user/$HB_UID/bus"
elif [ $rc -eq 0 ] && ! in_ct test -e /usr/lib/systemd/user/dbus.socket && ! in_ct test -e /usr/lib/systemd/user/dbus-broker.service; then
  skip "a user manager with a session bus for $HB_USER" "no user bus: neither dbus-user-session nor dbus-broker provides a dbus.socket for systemd --user"
else
  not_ok "loginctl enable-linger $HB_USER: user@$HB_UID.service with its session bus" "uid \"$HB_UID\", rc=$rc $out" "$(user_manager_diag)"
fi

if [ $USER_BUS = yes ]; then
  HBD_INSTALLED=$(prop ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
  UCONF=$HB_HOME/hb-system-test
  in_ct runuser -u "$HB_USER" -- mkdir -p "$HB_HOME/.config/systemd/user" "$UCONF"
  cat >"$ROOT$HB_HOME/.config/systemd/user/$UW" <<UNIT
[Unit]
Description=heartbeatd system test: a user unit that beats uw

[Service]
Type=simple
Environment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus
ExecStart=/bin/sh -c 'while :; do hbctl --session beat uw || echo "hbctl beat uw failed"; sleep 0.5; done'
UNIT
  cat >"$ROOT$UCONF/heartbeatd.conf" <<CONF
[http]
enabled=false

[agent:uw]
task=a user unit
unit=$UW
stale-threshold=3s
CONF
  in_ct chown "$HB_USER:$HB_USER" "$HB_HOME/.config/systemd/user/$UW" "$UCONF/heartbeatd.conf"
  as_user systemctl --user daemon-reload
  uprop () { as_user systemctl --user show -P "$1" "$UW"; }
  # uw_json: hbctl --session show uw --json, as hbuser, into $UJ
  uw_json () { UJ=$(as_user hbctl --session show uw --json 2>&1); }
  uj () { WJ=$UJ wj "$1"; }
  uw_is () { uw_json && [ "$(uj state)" = "$1" ] && [ "$(uj unit.active-state)" = "$2" ]; }
  uw_diag () {
    echo "hbctl --session show uw --json: $UJ"
    echo "systemctl --user: $UW $(uprop ActiveState)/$(uprop SubState) MainPID=$(uprop MainPID); heartbeatd: $(as_user systemctl --user show -P ActiveState hb-user-heartbeatd.service)"
    in_ct journalctl -b -q --no-pager _UID="$HB_UID" -n 12 2>&1
  }
  out=$(as_user systemd-run --user --quiet --unit=hb-user-heartbeatd -p Environment=PATH=/usr/local/bin:/usr/bin:/bin \
        "$HBD_INSTALLED" --session --config "$UCONF/heartbeatd.conf" --state-dir "$UCONF/state" 2>&1)
  rc=$?
  hbd_pid=$(as_user systemctl --user show -P MainPID hb-user-heartbeatd.service)
  if [ $rc -eq 0 ] && poll 15 uw_is no-heartbeat inactive && [ "$(uj status)" = waiting ] && [ "$(uj unit.name)" = "$UW" ] &&
     [ "$(in_ct ps -o user= -p "$hbd_pid")" = "$HB_USER" ]; then
    ok "heartbeatd --session as $HB_USER (user unit hb-user-heartbeatd.service, pid $hbd_pid): [agent:uw] unit=$UW, not started yet, waits (no-heartbeat, status waiting), unit.active-state inactive"
  else
    not_ok "heartbeatd --session as $HB_USER: [agent:uw] follows the user unit $UW (waiting while not started yet)" \
      "systemd-run --user rc=$rc $out" "heartbeatd pid \"$hbd_pid\" user $(in_ct ps -o user= -p "$hbd_pid" 2>&1)" "$(uw_diag)"
  fi

  out=$(as_user systemctl --user start "$UW" 2>&1)
  rc=$?
  upid1=$(uprop MainPID)
  uw_beating () { uw_json && [ "$(uj beats)" -gt 0 ] 2>/dev/null; }
  if [ $rc -eq 0 ] && poll 15 uw_is healthy active && [[ "$upid1" =~ ^[1-9][0-9]*$ ]] && [ "$(uj unit.main-pid)" = "$upid1" ] &&
     poll 15 uw_beating; then
    ok "systemctl --user start $UW: uw is healthy, unit.active-state active, main-pid $upid1 (systemctl --user's), $(uj beats) beats of its hbctl --session"
  else
    not_ok "systemctl --user start $UW: uw healthy with the unit's main PID" "start rc=$rc $out" "MainPID $upid1" "$(uw_diag)"
  fi

  out=$(as_user systemctl --user stop "$UW" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && poll 15 uw_is gone inactive && [ "$(uj unit.main-pid)" = 0 ]; then
    ok "systemctl --user stop $UW: uw is gone, unit.active-state inactive, main-pid 0"
  else
    not_ok "systemctl --user stop $UW: uw gone, unit inactive" "stop rc=$rc $out" "$(uw_diag)"
  fi

  out=$(as_user systemctl --user start "$UW" 2>&1)
  rc=$?
  upid2=$(uprop MainPID)
  uhist=$(as_user busctl --user --json=short call org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 GetHistory s uw 2>&1)
  uw_history () {
    uhist=$(as_user busctl --user --json=short call org.heartbeat.Monitor1 /org/heartbeat/Monitor1 org.heartbeat.Monitor1 GetHistory s uw 2>&1)
    "$PY" -c '
import json, sys
states = [st for at, st in json.loads(sys.argv[1])["data"][0]]
want, i = ["no-heartbeat", "healthy", "gone", "healthy"], 0
for st in states:
    if i < len(want) and st == want[i]:
        i += 1
sys.exit(0 if i == len(want) else 1)' "$uhist" 2>/dev/null
  }
  if [ $rc -eq 0 ] && poll 15 uw_is healthy active && [ "$(uj unit.main-pid)" = "$upid2" ] && [ "$upid2" != "$upid1" ] &&
     poll 5 uw_history; then
    ok "systemctl --user start $UW again: uw is healthy, main-pid $upid1 -> $upid2; GetHistory on the user bus: $("$PY" -c 'import json,sys; print(" ".join(st for at, st in json.loads(sys.argv[1])["data"][0]))' "$uhist")"
  else
    not_ok "systemctl --user start $UW again: uw healthy with the new main PID, history no-heartbeat … healthy … gone … healthy" \
      "start rc=$rc $out" "MainPID $upid1 -> $upid2" "GetHistory: $uhist" "$(uw_diag)"
  fi

  # The user owns what its own heartbeatd's configuration declares: from
  # its shell (outside the unit, and no polkit rule for it) it may beat uw.
  out=$(as_user hbctl --session beat uw 2>&1)
  rc=$?
  uw_json
  if [ $rc -eq 0 ] && [ "$(uj owner-uid)" = "$HB_UID" ]; then
    ok "hbctl --session beat uw from $HB_USER's shell, outside the unit: accepted; owner-uid $HB_UID (declared by the user's heartbeatd)"
  else
    not_ok "hbctl --session beat uw from $HB_USER's shell: the user owns its declared agent" \
      "beat rc=$rc $out" "owner-uid \"$(uj owner-uid)\"" "$(uw_diag)"
  fi

  # the end of this part: both user units stopped, the linger ended, the
  # user manager gone, the user removed
  as_user systemctl --user stop "$UW" hb-user-heartbeatd.service 2>/dev/null
fi
if [[ "$HB_UID" =~ ^[0-9]+$ ]]; then
  in_ct loginctl disable-linger "$HB_USER" 2>/dev/null
  in_ct loginctl terminate-user "$HB_USER" 2>/dev/null
  user_gone () { [ "$(in_ct systemctl show -P ActiveState "user@$HB_UID.service")" != active ] && ! in_ct pgrep -u "$HB_UID" >/dev/null; }
  poll 15 user_gone || diag "processes of $HB_USER left: $(in_ct pgrep -a -u "$HB_UID" 2>&1)"
  in_ct userdel -r "$HB_USER" 2>/dev/null
fi

# No failed units because of the install (heartbeatd, dbus, polkit).
failed=$(in_ct systemctl --failed --no-legend --plain 2>&1 | grep -E 'heartbeat|dbus|polkit')
dbus_errors=$(in_ct journalctl -b -q --no-pager -u dbus.service -o cat | grep -E 'Unable to reload|Encountered error' )
if [ -z "$failed" ] && [ -z "$dbus_errors" ]; then
  ok "no failed heartbeatd, dbus or polkit unit; dbus-daemon loaded its configuration without errors"
else
  not_ok "no failed heartbeatd, dbus or polkit unit; dbus-daemon loaded its configuration without errors" "$failed" "$dbus_errors"
fi

# ------------------------------------- HTTPS, the key by LoadCredential= (after the rest)
source "$SRCDIR/tls-checks.sh"

echo "1..$N"
diag "runtime: $("$PY" -c 'import sys, time; print("%.1f s" % (time.time() - float(sys.argv[1])))' "$START_TIME") (to here; teardown follows)"
[ $FAILED -eq 0 ]

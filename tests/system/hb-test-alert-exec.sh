#!/bin/sh
# tests/system/hb-test-alert-exec.sh: the exec= action of the system tier's
# [alert:hb-exec]. run-system-tests.sh installs it into the container;
# heartbeatd (user heartbeat, under heartbeatd.service's sandbox) runs it
# with HB_ALERT, HB_AGENT, HB_EVENT, HB_STATE, HB_STATUS, HB_TASK and
# HB_HOST (and HB_OUTPUT when the agent has an output). It writes them,
# sorted, to /var/log/heartbeat/hb-test-exec.EVENT.env (LogsDirectory= is,
# besides the state directory, the only place the unit may write),
# atomically, HB_OUTPUT whole to hb-test-exec.EVENT.output, and prints a
# line that heartbeatd logs to the journal. As careless scripts do, it
# leaves a child behind (sleep 900 &, its pid in hb-test-exec.EVENT.child),
# which heartbeatd must end with it.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu
out=/var/log/heartbeat/hb-test-exec.${HB_EVENT:-none}.env
env | grep '^HB_' | LC_ALL=C sort >"$out.tmp"
mv -f "$out.tmp" "$out"
printf '%s' "${HB_OUTPUT:-}" >"${out%.env}.output"
sleep 900 &
echo $! >"${out%.env}.child"
echo "hb-test-alert-exec: agent $HB_AGENT, event $HB_EVENT"

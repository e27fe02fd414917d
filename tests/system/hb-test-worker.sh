#!/bin/sh
# tests/system/hb-test-worker.sh ID HANG-FILE: the program of the system
# tier's hb-test-worker.service (a unit-backed agent, [agent:ID] unit=).
# Beats agent ID with the installed hbctl on the system bus every 0.5 s,
# except while HANG-FILE exists: then it keeps running without beating, as
# a hung program would. Runs as an unprivileged user (the unit's User=);
# heartbeatd lets it beat ID because it runs in the unit's cgroup.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
id=$1
hang=$2
while :; do
  if [ ! -e "$hang" ]; then
    hbctl beat "$id" || echo "hb-test-worker: hbctl beat $id failed" >&2
  fi
  sleep 0.5
done

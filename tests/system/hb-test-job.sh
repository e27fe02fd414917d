#!/bin/sh
# tests/system/hb-test-job.sh ID DIR: the program of the system tier's
# hb-test-job.service, a Type=oneshot job behind [agent:ID] unit=. Beats
# agent ID with the installed hbctl every 0.3 s, except while DIR/hang
# exists (a hung job), until DIR/exit appears: then it exits with the
# status written in it.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
id=$1
dir=$2
while [ ! -e "$dir/exit" ]; do
  if [ ! -e "$dir/hang" ]; then
    hbctl beat "$id" || echo "hb-test-job: hbctl beat $id failed" >&2
  fi
  sleep 0.3
done
exit "$(cat "$dir/exit")"

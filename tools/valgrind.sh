#!/usr/bin/env bash
# tools/valgrind.sh: a representative integration run (every D-Bus method
# and error, restart with state, hbctl, every bad HTTP request, the hostile
# D-Bus messages, a reconnection to the bus, alert programs and receivers
# that misbehave, a notify socket nobody reads, paged histories, pause and
# resume, badges, the reasons in alerts) with the
# daemon under valgrind memcheck. Passes when no daemon run reports an
# error or a definite leak. Slow (minutes); not part of tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind.sh: apt-get install valgrind" >&2; exit 1; }
[ -d build ] || meson setup build
meson compile -C build >/dev/null

logs=$(mktemp -d /tmp/hb-valgrind.XXXXXX)
export HB_DAEMON_WRAPPER="valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 --log-file=$logs/heartbeatd.%p.log"
# GLib's type system and GIO's worker threads keep what they allocate once.
export G_SLICE=always-malloc

tests=(
  methods/register-and-get-agent methods/beat-mark-idle-unregister methods/list-agents-and-get-status
  methods/declared-agent-from-config errors/not-found errors/invalid-argument errors/exists-across-uids
  errors/quota-exceeded-per-uid restart/kill9-keeps-registrations reload/sighup-bad-config-keeps-old
  notify/sigterm-stopping-exit-0
  hbctl/json-shapes hbctl/register-beat-idle-unregister hbctl/error-messages
  http/bad-requests http/rest-agents http/history http/seed-server-endpoints http/tokens
  hostile/metadata-refused hostile/nested-variants-on-system-policy
  lifecycle/reconnects-when-the-bus-drops-it lifecycle/state-directory-locked
  limits/list-agents-larger-than-the-bus http/agents-pages
  faults/undecodable-flood faults/reown-after-lost-connection faults/undecodable-kinds
  http/jobs hbctl/run-exit-codes crash/runs-survive-kill9 alerts/alertmanager-job-failed
  alerts/exec-forks-leave-nothing alerts/webhook-redirect-not-followed alerts/output-tail
  notify/never-blocks http/history/pages http/history/gzip
  methods/pause-resume http/pause-resume http/badge alerts/reason-in-payloads
  alerts/pause-resolves-alertmanager http/tls http/scopes
)
status=0
meson test -C build --no-rebuild --timeout-multiplier 5 "${tests[@]}" || status=1

errors=0
for log in "$logs"/heartbeatd.*.log; do
  if grep -q "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|Invalid \(read\|write\)" "$log"; then
    echo "== $log"; cat "$log"; errors=$((errors + 1))
  fi
done
echo "valgrind: $(ls "$logs" | wc -l) daemon runs, $errors with errors or definite leaks (logs in $logs)"
[ "$errors" -eq 0 ] && [ "$status" -eq 0 ]

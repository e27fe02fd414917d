#!/bin/sh
# tests/rules/check-prometheus.sh unit|examples PROMTOOL AMTOOL DATADIR TESTDIR
#   unit:     promtool test rules TESTDIR/heartbeat-rules.test.yml, the unit
#             tests of the heartbeat-rules.yml it names (by a path relative
#             to it: data/prometheus/ of the source tree)
#   examples: promtool check config DATADIR/prometheus.yml (with its rules
#             file and token file put where it names them) and amtool
#             check-config DATADIR/alertmanager.yml
# TAP output; "1..0 # SKIP" when PROMTOOL (Debian prometheus) or, for
# examples, AMTOOL (prometheus-alertmanager) is empty: not installed.
set -u
mode=$1 promtool=$2 amtool=$3 datadir=$4 testdir=$5

n=0 failed=0
check () { # check DESCRIPTION COMMAND...: one TAP test, the output as comments
  description=$1; shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then
    echo "ok $n - $description"
  else
    echo "not ok $n - $description"
    failed=1
  fi
  printf '%s\n' "$out" | sed 's/^/# /'
}

[ -n "$promtool" ] || { echo "1..0 # SKIP promtool (Debian prometheus) is not installed"; exit 0; }

case $mode in
  unit)
    echo "1..1"
    check "promtool test rules heartbeat-rules.test.yml" \
      "$promtool" test rules "$testdir/heartbeat-rules.test.yml"
    ;;
  examples)
    [ -n "$amtool" ] || { echo "1..0 # SKIP amtool (Debian prometheus-alertmanager) is not installed"; exit 0; }
    echo "1..4"
    tmp=$(mktemp -d) || exit 1
    trap 'rm -rf "$tmp"' EXIT
    # prometheus.yml names its rules and token files in /etc/prometheus/:
    # check a copy that names them in $tmp, where they are.
    sed "s|/etc/prometheus/|$tmp/|g" "$datadir/prometheus.yml" > "$tmp/prometheus.yml"
    cp "$datadir/heartbeat-rules.yml" "$tmp/heartbeat-rules.yml"
    echo "example-token" > "$tmp/heartbeat-token"
    check "promtool check config prometheus.yml" "$promtool" check config "$tmp/prometheus.yml"
    check "prometheus.yml loads heartbeat-rules.yml" \
      sh -c '"$1" check config "$2" 2>&1 | grep -E "heartbeat-rules.yml" && "$1" check config "$2" 2>&1 | grep -E "SUCCESS: [0-9]+ rules found"' \
      sh "$promtool" "$tmp/prometheus.yml"
    check "prometheus.yml scrapes with the job name the rules watch (heartbeat)" \
      grep -E '^  - job_name: heartbeat$' "$datadir/prometheus.yml"
    check "amtool check-config alertmanager.yml" "$amtool" check-config "$datadir/alertmanager.yml"
    ;;
  *)
    echo "usage: $0 unit|examples PROMTOOL AMTOOL DATADIR TESTDIR" >&2
    exit 2
    ;;
esac
exit $failed

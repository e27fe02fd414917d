#!/bin/sh
# tests/rules/check-prometheus.sh unit|examples PROMTOOL AMTOOL DATADIR TESTDIR
#   unit:     promtool test rules TESTDIR/heartbeat-rules.test.yml, the unit
#             tests of the heartbeat-rules.yml it names (by a path relative
#             to it: data/prometheus/ of the source tree)
#   examples: promtool check config DATADIR/prometheus.yml (with its rules,
#             token and CA files put where it names them), what it must
#             say for a fleet over TLS with two replicas and two
#             Alertmanagers, and amtool check-config DATADIR/alertmanager.yml
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
    echo "1..6"
    tmp=$(mktemp -d) || exit 1
    trap 'rm -rf "$tmp"' EXIT
    # prometheus.yml names its rules, token and CA files in
    # /etc/prometheus/: check a copy that names them in $tmp, where they
    # are. promtool fails on a missing rules or credentials file; it does
    # not open ca_file, which is created all the same.
    sed "s|/etc/prometheus/|$tmp/|g" "$datadir/prometheus.yml" > "$tmp/prometheus.yml"
    cp "$datadir/heartbeat-rules.yml" "$tmp/heartbeat-rules.yml"
    echo "example-token" > "$tmp/heartbeat-token"
    echo "(the CA certificate that signed the hosts' certificates)" > "$tmp/heartbeat-ca.pem"
    check "promtool check config prometheus.yml" "$promtool" check config "$tmp/prometheus.yml"
    check "prometheus.yml loads heartbeat-rules.yml" \
      sh -c '"$1" check config "$2" 2>&1 | grep -E "heartbeat-rules.yml" && "$1" check config "$2" 2>&1 | grep -E "SUCCESS: [0-9]+ rules found"' \
      sh "$promtool" "$tmp/prometheus.yml"
    check "prometheus.yml scrapes with the job name the rules watch (heartbeat)" \
      grep -E '^  - job_name: heartbeat$' "$datadir/prometheus.yml"
    check "prometheus.yml scrapes over https, the server verified by tls_config ca_file, with a read token from authorization credentials_file" \
      sh -c 'grep -v -E "^ *#" "$1" | sed -n "/^  - job_name: heartbeat\$/,/^  - job_name/p" > "$2/job" &&
             grep -E "^    scheme: https\$" "$2/job" &&
             grep -A2 -E "^    tls_config:\$" "$2/job" | grep -E "^      ca_file: /etc/prometheus/heartbeat-ca.pem\$" &&
             grep -A2 -E "^    authorization:\$" "$2/job" | grep -E "^      credentials_file: /etc/prometheus/heartbeat-token\$"' \
      sh "$datadir/prometheus.yml" "$tmp"
    check "prometheus.yml, for two replicas: external label replica, dropped from the alerts (alert_relabel_configs labeldrop), sent to two Alertmanagers" \
      sh -c 'grep -A1 -E "^  external_labels:\$" "$1" | grep -E "^    replica: " &&
             grep -A3 -E "^  alert_relabel_configs:\$" "$1" | grep -E -A1 "^    - action: labeldrop\$" | grep -E "^      regex: replica\$" &&
             grep -E "^        - targets: \[.+:9093., .+:9093.\]\$" "$1"' \
      sh "$datadir/prometheus.yml"
    check "amtool check-config alertmanager.yml" "$amtool" check-config "$datadir/alertmanager.yml"
    ;;
  *)
    echo "usage: $0 unit|examples PROMTOOL AMTOOL DATADIR TESTDIR" >&2
    exit 2
    ;;
esac
exit $failed

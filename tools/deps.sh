#!/usr/bin/env bash
# tools/deps.sh [build|run|test|docs]: installs the Debian packages heartbeat needs,
# only those that are missing. Sourced by tools/run.sh and tools/test.sh.
set -euo pipefail

build_packages=(
  meson ninja-build pkg-config gcc
  libglib2.0-dev libglib2.0-dev-bin libjson-glib-dev libsoup-3.0-dev libsystemd-dev libsqlite3-dev libcrypt-dev
  gettext scdoc
  gobject-introspection libgirepository1.0-dev
)
run_packages=(
  dbus-daemon glib-networking
)
test_packages=(
  dbus-daemon dbus-bin python3-dbusmock libxml2-utils systemd util-linux clang libclang-rt-14-dev
  dbus systemd-container polkitd procps
  prometheus prometheus-alertmanager chromium python3-websocket groff-base
  strace python3-jsonschema python3-yaml faketime curl openssl iproute2
  gjs python3-gi gir1.2-glib-2.0
)
# only for -Ddocs=true (the API reference); neither run.sh nor test.sh needs it
docs_packages=(
  gi-docgen
)

hb_missing_packages () {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

hb_install_packages () {
  local missing
  missing=$(hb_missing_packages "$@")
  [ -z "$missing" ] && return 0
  echo "heartbeat: installing missing Debian packages:" $missing >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The package lists may be absent on a fresh machine; fetch them once.
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; then
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
  fi
}

case "${1:-build}" in
  build) hb_install_packages "${build_packages[@]}" ;;
  run)   hb_install_packages "${build_packages[@]}" "${run_packages[@]}" ;;
  test)  hb_install_packages "${build_packages[@]}" "${test_packages[@]}" ;;
  docs)  hb_install_packages "${build_packages[@]}" "${docs_packages[@]}" ;;
  *) echo "usage: $0 [build|run|test|docs]" >&2; exit 2 ;;
esac

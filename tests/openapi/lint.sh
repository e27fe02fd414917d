#!/bin/sh
# tests/openapi/lint.sh DOCUMENT CONFIG: lints the OpenAPI document with
# Redocly CLI (the npm package @redocly/cli at the version and integrity of
# npm/package-lock.json beside this script), installed on first use with
# `npm ci` into a cache directory: $HB_NPM_CACHE, else
# $XDG_CACHE_HOME/heartbeatd/npm, else ~/.cache/heartbeatd/npm; a new lock
# file installs anew. Exit 77 (meson: skipped) with the reason when node or
# npm is missing or too old, or the package cannot be installed.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u

document=$1
config=$2
here=$(cd "$(dirname "$0")" && pwd)
lock=$here/npm/package-lock.json
package=@redocly/cli
version=$(sed -n 's|.*"@redocly/cli": "\(.*\)".*|\1|p' "$here/npm/package.json")  # one package, ~15 MB

skip () {
  echo "SKIP: $*"
  exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed (Debian: nodejs), so the OpenAPI document was not linted"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (Debian: npm), so the OpenAPI document was not linted"

# Redocly CLI 2 runs on Node.js >= 20.19 (20.x) or >= 22.12
node_version=$(node -p 'process.versions.node' 2>/dev/null) || skip "node does not run"
node -e '
  const [a, b] = process.versions.node.split(".").map(Number);
  process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1);
' || skip "node $node_version is older than $package@$version needs (20.19 or 22.12), so the OpenAPI document was not linted"

cache=${HB_NPM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/heartbeatd/npm}
prefix=$cache/redocly-cli-$version-$(sha256sum "$lock" | cut -c1-12)
redocly=$prefix/node_modules/.bin/redocly

if [ ! -x "$redocly" ]; then
  mkdir -p "$cache" || skip "cannot create the cache directory $cache"
  partial=$(mktemp -d "$cache/.install.XXXXXX") || skip "cannot write to $cache"
  echo "Installing $package@$version into $prefix"
  cp "$here/npm/package.json" "$lock" "$partial/"
  if ! npm ci --prefix "$partial" --no-audit --no-fund --loglevel=error >"$partial.log" 2>&1; then
    cat "$partial.log"
    rm -rf "$partial" "$partial.log"
    skip "npm could not install $package@$version (offline?), so the OpenAPI document was not linted"
  fi
  rm -f "$partial.log"
  # another run may have finished first: either copy is whole
  mv -T "$partial" "$prefix" 2>/dev/null || rm -rf "$partial"
fi
[ -x "$redocly" ] || skip "$package@$version is not at $prefix after its installation"

# no telemetry, no update check; the box about Node.js 20 goes to the log
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
  "$redocly" lint --format=stylish --config "$config" "$document"

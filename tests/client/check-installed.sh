#!/bin/bash
# check-installed.sh BUILD_ROOT: what `meson install` puts in place works.
#
# Installs the build into a temporary DESTDIR, checks that the library
# exports only the heartbeat_ API under its soname, builds example.c with
# the installed pkg-config file only, and runs it, example.py and example.js
# (with the installed typelib) against a heartbeatd through
# test-client-script. TAP on stdout.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

build=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok () { n=$((n + 1)); echo "ok $n - $*"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
failed=0

DESTDIR=$tmp meson install -C "$build" --no-rebuild --quiet >&2
lib=$(find "$tmp" -name 'libheartbeat-1.so.0' | head -n1)
libdir=$(dirname "$lib")
pcdir=$libdir/pkgconfig
typelibdir=$libdir/girepository-1.0

# the soname, and only the public API
if [ "$(objdump -p "$lib" | awk '/SONAME/ { print $2 }')" = libheartbeat-1.so.0 ]; then ok soname; else not_ok soname; fi
stray=$(nm -D --defined-only "$lib" | awk '$2 != "A" && $3 !~ /^heartbeat_/ { print $3 }')
if [ -z "$stray" ]; then ok "only heartbeat_* exported"; else not_ok "exported besides heartbeat_*: $stray"; fi
for h in heartbeat.h heartbeat-client.h heartbeat-agent-info.h heartbeat-keep-alive.h heartbeat-client-enums.h; do
  [ -f "$(dirname "$libdir")/../include/heartbeat-1/$h" ] || [ -n "$(find "$tmp" -path "*/include/heartbeat-1/$h")" ] \
    && ok "header $h installed" || not_ok "header $h missing"
done
[ -f "$typelibdir/Heartbeat-1.typelib" ] && ok typelib || not_ok "typelib missing"
[ -n "$(find "$tmp" -path '*/gir-1.0/Heartbeat-1.gir')" ] && ok gir || not_ok "gir missing"

# a C program built with the installed pkg-config file alone (its prefix
# moved under $tmp, where DESTDIR put everything)
prefix=$(pkg-config --variable=prefix "$pcdir/heartbeat-1.pc")
mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$tmp$prefix|" "$pcdir/heartbeat-1.pc" > "$tmp/pc/heartbeat-1.pc"
export PKG_CONFIG_PATH=$tmp/pc
if cflags=$(pkg-config --cflags heartbeat-1) && libs=$(pkg-config --libs heartbeat-1) &&
   cc -Wall -Werror -o "$tmp/example" "$src/example.c" $cflags $libs >&2; then
  ok "example.c builds with pkg-config heartbeat-1"
else
  not_ok "example.c does not build with pkg-config heartbeat-1"
fi

# all three run against a daemon, with the installed library and typelib
export LD_LIBRARY_PATH=$libdir GI_TYPELIB_PATH=$typelibdir
if [ -x "$tmp/example" ] && HB_CLIENT_COMMAND="$tmp/example" "$build/tests/client/test-client-script" -p /client/command >&2; then
  ok "example.c runs against heartbeatd"
else
  not_ok "example.c against heartbeatd"
fi
if /usr/bin/python3 -c 'import gi' 2>/dev/null; then
  if HB_CLIENT_COMMAND="/usr/bin/python3 $src/example.py" "$build/tests/client/test-client-script" -p /client/command >&2; then
    ok "example.py runs against heartbeatd with the installed typelib"
  else
    not_ok "example.py against heartbeatd"
  fi
else
  n=$((n + 1)); echo "ok $n # SKIP PyGObject (python3-gi) is missing"
fi
if gjs=$(command -v gjs); then
  if HB_CLIENT_COMMAND="$gjs -m $src/example.js" "$build/tests/client/test-client-script" -p /client/command >&2; then
    ok "example.js runs against heartbeatd with the installed typelib"
  else
    not_ok "example.js against heartbeatd"
  fi
else
  n=$((n + 1)); echo "ok $n # SKIP gjs is missing"
fi
echo "1..$n"
exit $failed

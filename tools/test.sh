#!/usr/bin/env bash
# tools/test.sh: build heartbeat and run the whole test suite: once in a
# normal build, and the unit and integration tests again (the daemon
# included) under AddressSanitizer and UndefinedBehaviorSanitizer, and the
# libFuzzer targets for 5 s each. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh test

[ -d build ] || meson setup build
meson compile -C build

[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
meson compile -C build-asan

# libFuzzer targets (clang): 5 s each over their corpus, see tests/fuzz/.
[ -d build-fuzz ] || CC=clang meson setup build-fuzz -Dfuzzing=true \
  -Db_sanitize=address,undefined -Db_lundef=false
meson compile -C build-fuzz

status=0
start=$SECONDS
# Under the sanitizers: everything but the whole-system tiers, and the
# integration tests once (with the fast Beat path, as deployed; the
# normal build also runs them without it, as no-fast-beat/*). This pass
# runs beside the normal one, one test at a time: most tests of either
# pass run alone (is_parallel: false), so each pass alone leaves a core
# idle. Its output follows the normal pass's.
(
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C build-asan --suite unit --suite integration --suite hbctl --suite http --suite alerts --suite faults \
      --no-suite no-fast-beat --print-errorlogs --num-processes 1 > build-asan/meson-logs/pass.txt 2>&1
  echo $? > build-asan/meson-logs/pass.status
  echo $SECONDS > build-asan/meson-logs/pass.end
) &
asan_pid=$!
meson test -C build --print-errorlogs --num-processes 2 || status=1
normal=$((SECONDS - start))
wait "$asan_pid"
cat build-asan/meson-logs/pass.txt
[ "$(cat build-asan/meson-logs/pass.status)" = 0 ] || status=1
asan=$(($(cat build-asan/meson-logs/pass.end) - start)); start=$SECONDS
meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes 2 || status=1
fuzz=$((SECONDS - start))
echo "test time: ${normal} s normal build, ${asan} s ASan+UBSan (beside it), ${fuzz} s fuzzing (${SECONDS} s in all)"

# One closing line for people and CI: the counts of all runs.
python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
  build-fuzz/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as log:
        for line in log:
            result = json.loads(line)["result"]
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status

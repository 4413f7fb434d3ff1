#!/usr/bin/env bash
# Build and run every test (unit + integration). Does its own set-up:
# packages (scripts/deps.sh), meson configure, build.
#
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-asan/
#   scripts/test.sh --suite unit only one suite (unit | integration)
#   ALYS_SOAK=1 scripts/test.sh  also the long soak/chaos runs
#
# Ends with one line "N passed, N failed" (meson tests) and exits non-zero if
# any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=build
meson_args=()
suite=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize)
      builddir=build-asan
      meson_args+=("-Db_sanitize=address,undefined" -Db_lundef=false -Dbuildtype=debug)
      ;;
    --suite) suite=(--suite "$2"); shift ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/deps.sh
# Quiet when all is well; on failure, what meson or the compiler said.
buildlog=$(mktemp)
trap 'rm -f "$buildlog"' EXIT
quiet() {
  if ! "$@" > "$buildlog" 2>&1; then
    cat "$buildlog" >&2
    echo "test.sh: '$*' failed (its output is above)" >&2
    exit 1
  fi
}
if [ ! -f "$builddir/build.ninja" ]; then
  quiet meson setup "$builddir" "${meson_args[@]}"
fi
quiet ninja -C "$builddir"

# Sanitizers: any report fails the test (no recovering from UB).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

set +e
meson test -C "$builddir" --print-errorlogs --num-processes 2 "${suite[@]}" | tee "$builddir/test-output.txt"
rc=${PIPESTATUS[0]}
set -e

log="$builddir/test-output.txt"
count() { sed -n "s/^$1: *\([0-9][0-9]*\) *$/\1/p" "$log" | tail -n1; }
ok=$(count Ok); fail=$(count Fail); timeout=$(count Timeout); upass=$(count 'Unexpected Pass')
ok=${ok:-0}; fail=${fail:-0}; timeout=${timeout:-0}; upass=${upass:-0}
failed=$((fail + timeout + upass))
if [ "$ok" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: no test ran" >&2
  rc=1
fi
echo "$ok passed, $failed failed"
exit "$rc"

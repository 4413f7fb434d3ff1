#!/usr/bin/env bash
# Long sweeps of alys-sim, the deterministic simulator of the whole sync
# (tests/sim; docs/ARCHITECTURE.md "The simulator").
#
#   scripts/sim.sh                 seeds 1..10000
#   scripts/sim.sh A..B            seeds A to B
#   scripts/sim.sh A..B -- ARGS    extra alys-sim options for every case
#   SIM_JOBS=N scripts/sim.sh ...  N parallel workers (default: online CPUs)
#
# Splits the range into one contiguous slice per worker (each worker
# generates its chains once and reuses them), prints every failure with its
# replay command, and ends with one line "N passed, M failed" (exit 1 if
# any failed). Logs stay in build/sim-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

range=${1:-1..10000}
shift || true
if [ "${1:-}" = "--" ]; then
  shift
fi
if ! [[ $range =~ ^([0-9]+)\.\.([0-9]+)$ ]]; then
  echo "sim.sh: expected a seed range A..B, got '$range'" >&2
  exit 2
fi
first=${BASH_REMATCH[1]}
last=${BASH_REMATCH[2]}
if [ "$last" -lt "$first" ]; then
  echo "sim.sh: empty range $range" >&2
  exit 2
fi

if [ ! -f build/build.ninja ]; then
  bash scripts/deps.sh
  meson setup build >/dev/null
fi
ninja -C build tests/sim/alys-sim >/dev/null
sim=build/tests/sim/alys-sim

jobs=${SIM_JOBS:-$(nproc)}
total=$((last - first + 1))
if [ "$jobs" -gt "$total" ]; then
  jobs=$total
fi
logs=build/sim-logs
rm -rf "$logs"
mkdir -p "$logs"

start=$(date +%s)
pids=()
per=$(((total + jobs - 1) / jobs))
for ((j = 0; j < jobs; j++)); do
  a=$((first + j * per))
  b=$((a + per - 1))
  if [ "$a" -gt "$last" ]; then
    break
  fi
  if [ "$b" -gt "$last" ]; then
    b=$last
  fi
  "$sim" --seeds "$a..$b" "$@" >"$logs/slice-$j.txt" 2>&1 &
  pids+=("$!")
done
for pid in "${pids[@]}"; do
  wait "$pid" || true
done
elapsed=$(($(date +%s) - start))

passed=0
failed=0
for f in "$logs"/slice-*.txt; do
  grep -A 40 '^FAIL' "$f" | sed -n '/^FAIL/,/replay:/p' || true
  line=$(tail -n 1 "$f")
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    echo "sim.sh: $f did not finish: $line" >&2
    failed=$((failed + 1))
  fi
done
if [ "$elapsed" -gt 0 ]; then
  echo "sim.sh: $((passed + failed)) cases in ${elapsed} s on $jobs workers" \
    "($(((passed + failed) * 60 / elapsed)) seeds per minute)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Benchmarks: figures and ratios, never assertions (machines here are shared
# and noisy; compare within one run). Each part is its own script so it can be
# run alone:
#   scripts/bench_restart.sh   restart latency per actor (median, p99)
#   scripts/bench_import.sh    import throughput: sequential vs 1 vs 2 validators,
#                              vs the raw signature-verification rate; peak RSS
#   scripts/bench_sync.sh      sync throughput from 3 peers, parallel vs
#                              sequential, with and without 50 ms latency;
#                              re-downloads after kill -9; peak RSS
# Usage: scripts/bench.sh [restart|import|sync]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(restart import sync)
for p in "${parts[@]}"; do
  script="scripts/bench_$p.sh"
  if [ ! -f "$script" ]; then
    echo "bench: no $script" >&2
    exit 2
  fi
  echo "=== $p ==="
  bash "$script"
  echo
done

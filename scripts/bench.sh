#!/usr/bin/env bash
# Benchmarks: figures and ratios, never assertions (machines here are shared
# and noisy; compare within one run). Each part is its own script so it can be
# run alone:
#   scripts/bench_restart.sh   restart latency per actor (median, p99)
#   scripts/bench_import.sh    import throughput: sequential vs 1 vs 2 validators,
#                              vs the raw signature-verification rate; peak RSS
#   scripts/bench_sync.sh      sync throughput from 3 peers, parallel vs
#                              sequential, with and without 50 ms latency, and
#                              over the import of the same chain; re-downloads
#                              after kill -9; peak RSS; CURVE links vs
#                              [network] plaintext (the ratio)
#   scripts/bench_million.sh   (only with --million) a 1,000,000-block chain
#                              imported and synced: every process's peak RSS
#                              at 1M next to the same run's at 10k, total
#                              node RSS, throughput and node CPU per block in
#                              the last 10k blocks over the first 10k,
#                              database bytes per block
# Usage: scripts/bench.sh [--quick] [--million] [--json FILE]
#                         [restart|import|sync|million]...   (default: the
#                         first three, and million too with --million)
#   --quick      small chains and few repeats (BENCH_QUICK=1 for the parts):
#                exercises every figure in a minute or two; the figures are
#                noisier and the RSS ones say little.
#   --million    also run the "million" part (BENCH_MILLION=1 for the
#                parts): it takes long (on 2 cores under other load: 5 min
#                to generate the chain once, cached in BENCH_DIR/chains,
#                then 10 min to import and 12 min to sync it; ~5.5 GB of
#                disk); with --quick it is a 20,000-block version.
#   --json FILE  also write every printed figure to FILE (jq), nested by the
#                dots of its key: .restart_median_ms.storage,
#                .import_over_verify.tx10, .rss_kib.storage."10000", ...
#                A figure that cannot be measured yet is null, and
#                .null_reasons["its.key"] says why (printed too).
#                .meta has the date, commit, cores, load and mode.
set -euo pipefail
cd "$(dirname "$0")/.."

json=""
parts=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) export BENCH_QUICK=1 ;;
    --million) export BENCH_MILLION=1 ;;
    --json)
      [ $# -ge 2 ] || { echo "bench: --json needs a FILE" >&2; exit 2; }
      json=$2
      shift ;;
    --json=*) json=${1#--json=} ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    -*) echo "bench: unknown option $1" >&2; exit 2 ;;
    *) parts+=("$1") ;;
  esac
  shift
done
if [ ${#parts[@]} -eq 0 ]; then
  parts=(restart import sync)
  [ "${BENCH_MILLION:-0}" = 1 ] && parts+=(million)
fi
# naming the part asks for it
for p in "${parts[@]}"; do [ "$p" = million ] && export BENCH_MILLION=1; done
for p in "${parts[@]}"; do
  [ -f "scripts/bench_$p.sh" ] || { echo "bench: no scripts/bench_$p.sh" >&2; exit 2; }
done

bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
if [ -n "$json" ]; then
  command -v jq >/dev/null || { echo "bench: --json needs jq" >&2; exit 2; }
  BENCH_FIGURES=$(mktemp /tmp/alys-figures-XXXXXX)
  export BENCH_FIGURES
  trap 'rm -f "$BENCH_FIGURES"' EXIT
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

for p in "${parts[@]}"; do
  echo "=== $p ==="
  bash "scripts/bench_$p.sh"
  echo
done

if [ -n "$json" ]; then
  # Lines "key<TAB>value<TAB>reason" from the parts; value is a number or null.
  jq -Rn \
     --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
     --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
     --argjson cores "$(nproc)" \
     --arg load_start "$load_start" \
     --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
     --argjson quick "$([ "${BENCH_QUICK:-0}" = 1 ] && echo true || echo false)" \
     --argjson million "$([ "${BENCH_MILLION:-0}" = 1 ] && echo true || echo false)" \
     --arg parts "${parts[*]}" '
    reduce (inputs | select(length > 0) | split("\t")) as $f ({};
      ($f[1] == "null") as $null
      | setpath($f[0] | split("."); if $null then null else ($f[1] | tonumber) end)
      | if $null then .null_reasons[$f[0]] = ($f[2] // "not measured") else . end)
    | .meta = {date: $date, commit: $commit, cores: $cores, quick: $quick, million: $million,
               parts: ($parts | split(" ")), load_start: $load_start, load_end: $load_end}
  ' < "$BENCH_FIGURES" > "$json.tmp"
  mv "$json.tmp" "$json"
  echo "figures: $json ($(grep -c . "$BENCH_FIGURES") values)"
fi

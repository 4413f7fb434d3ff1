#!/usr/bin/env bash
# Import throughput of the validation pipeline (figures and ratios, not
# assertions). Called by scripts/bench.sh; runs alone too:
#
#   scripts/bench_import.sh [BUILD_DIR]        (default: build)
#
# For generated chains with 10 and with 100 txs per block it imports into a
# fresh node, three ways: strategy "sequential" (checks inside the
# BlockProcessor, one block at a time, each batch committed before the next
# is checked: the seed's behaviour), "parallel" with 1 validator and with 2.
# It prints blocks/s and tx/s of each, the ratios parallel(2)/sequential and
# 2 validators/1, and end-to-end tx/s divided by the raw 2-core BIP340
# verification rate that alys-verify-bench measures in the same run. Then it
# imports 10k and 100k blocks (10 txs) with 2 validators and prints every
# process's peak RSS (VmHWM, read from /proc before stopping it).
#
# The actors are started by hand (storage, block_processor, validators), not
# through the supervisor, so nothing else shares the machine with them.
# Each throughput figure is the best of REPEAT imports into a fresh node:
# on a shared machine other load only ever slows a run down.
# Environment: BENCH_DIR (work dir, default /tmp/alys-bench; chains are kept
# there between runs), BLOCKS10 (10000), BLOCKS100 (2000), REPEAT (3),
# RSS_SMALL (10000), RSS_LARGE (100000), VERIFY_SECONDS (3); BENCH_QUICK=1
# makes the defaults 500, 100, 1, 500, 2000, 1. BENCH_FIGURES: see figure.
set -euo pipefail
cd "$(dirname "$0")/.."

# figure KEY VALUE [WHY]: one figure for scripts/bench.sh --json, appended to
# $BENCH_FIGURES when set. VALUE is a number, or null with WHY.
figure() { if [ -n "${BENCH_FIGURES:-}" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$BENCH_FIGURES"; fi; }
quick() { if [ "${BENCH_QUICK:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }

build=${1:-build}
[ -x "$build/actors/alysctl/alysctl" ] || { echo "bench_import: build $build first (ninja -C $build)" >&2; exit 2; }
bench_dir=${BENCH_DIR:-/tmp/alys-bench}
blocks10=${BLOCKS10:-$(quick 500 10000)}
blocks100=${BLOCKS100:-$(quick 100 2000)}
repeat=${REPEAT:-$(quick 1 3)}
rss_small=${RSS_SMALL:-$(quick 500 10000)}
rss_large=${RSS_LARGE:-$(quick 2000 100000)}
verify_seconds=${VERIFY_SECONDS:-$(quick 1 3)}
mkdir -p "$bench_dir"

bin() { echo "$build/actors/$1"; }
pids=()
stop_all() {
  for p in "${pids[@]:-}"; do if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi; done
  for p in "${pids[@]:-}"; do if [ -n "$p" ]; then wait "$p" 2>/dev/null || true; fi; done
  pids=()
}
trap stop_all EXIT

# chain NAME BLOCKS TXS: generate once (chaingen is deterministic).
chain() {
  local dir="$bench_dir/chains/$1"
  if [ ! -s "$dir/result.txt" ]; then
    mkdir -p "$dir"
    echo "generating $1: $2 blocks x $3 txs ..." >&2
    "$(bin chaingen/alys-chaingen)" --blocks "$2" --txs-per-block "$3" --accounts 1000 \
      --authorities 5 --seed "bench-$1" --out "$dir" --no-verify > "$dir/result.txt.tmp"
    mv "$dir/result.txt.tmp" "$dir/result.txt"
  fi
  echo "$dir"
}

# node DIR STRATEGY WORKERS GENESIS: a config and the actors, started.
start_node() {
  local dir=$1 strategy=$2 workers=$3 genesis=$4
  rm -rf "$dir"; mkdir -p "$dir/run" "$dir/data"
  sed -e "s|^data_dir = .*|data_dir = \"$dir/data\"|" \
      -e "s|^run_dir = .*|run_dir = \"$dir/run\"|" \
      -e "s|^genesis_file = .*|genesis_file = \"$genesis\"|" \
      -e "s|^strategy = .*|strategy = \"$strategy\"|" \
      -e "s|^log_level = .*|log_level = \"warn\"|" \
      deploy/alys-sync.toml > "$dir/node.toml"
  "$(bin storage/alys-storage)" --config "$dir/node.toml" 2> "$dir/storage.log" & pids+=($!)
  storage_pid=$!
  "$(bin block_processor/alys-block-processor)" --config "$dir/node.toml" 2> "$dir/bp.log" & pids+=($!)
  bp_pid=$!
  validator_pids=()
  for i in $(seq 1 "$workers"); do
    "$(bin validator/alys-validator)" --config "$dir/node.toml" --name "validator-$i" 2> "$dir/v$i.log" & pids+=($!)
    validator_pids+=($!)
  done
  sleep 1
}

hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

clk=$(getconf CLK_TCK)
# cpu_s PID...: CPU seconds (user + system) the processes have used.
cpu_s() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  awk -v t="$t" -v c="$clk" 'BEGIN {printf "%.2f", t / c}'
}

# run_import DIR CHAIN: import, print "SECONDS BLOCKS ALYSCTL_CPU_SECONDS".
run_import() {
  local TIMEFORMAT='%U %S' cpu line
  cpu=$( { time "$(bin alysctl/alysctl)" --config "$1/node.toml" import "$2/chain.export" \
             > "$1/import.out" 2> "$1/import.err"; } 2>&1 )
  line=$(grep '^imported' "$1/import.out")
  # "imported N blocks (1..N) in S s: R blocks/s"
  awk -v cpu="$cpu" '{split(cpu, c, " "); for (i = 1; i <= NF; i++) if ($i == "in") print $(i+1), $2, c[1] + c[2]}' <<< "$line"
}

# The yardstick, measured once per round and also best of $repeat: a rate,
# like the imports, only ever comes out too low when something else runs.
# vcpu: verifications per CPU-second of the verifying thread, which other
# load barely moves (unlike the wall-clock rates).
v1=0 v2=0 vcpu=0
measure_verify() {
  local rates
  rates=$("$(bin benchtools/alys-verify-bench)" --seconds "$verify_seconds" --threads 2)
  v1=$(awk -v b="$v1" '/verify_1core_per_s/ {print ($2 > b ? $2 : b)}' <<< "$rates")
  v2=$(awk -v b="$v2" '/verify_2core_per_s/ {print ($2 > b ? $2 : b)}' <<< "$rates")
  vcpu=$(awk -v b="$vcpu" '/verify_per_cpu_s/ {print ($2 > b ? $2 : b)}' <<< "$rates")
}

# one_run TXS MODE CHAIN: import once into a fresh node; keep the best.
declare -A best util cpu blocks_of
one_run() {
  local txs=$1 mode=$2 c=$3 s blocks ctl_cpu node_cpu
  case $mode in
    sequential) start_node "$bench_dir/node" sequential 0 "$c/genesis" ;;
    parallel-1) start_node "$bench_dir/node" parallel 1 "$c/genesis" ;;
    parallel-2) start_node "$bench_dir/node" parallel 2 "$c/genesis" ;;
  esac
  read -r s blocks ctl_cpu < <(run_import "$bench_dir/node" "$c")
  node_cpu=$(cpu_s "$storage_pid" "$bp_pid" "${validator_pids[@]}")
  stop_all
  blocks_of[$txs]=$blocks
  if [ -z "${best[$txs,$mode]:-}" ] || awk -v a="$s" -v b="${best[$txs,$mode]}" 'BEGIN {exit !(a < b)}'; then
    best[$txs,$mode]=$s
    util[$txs,$mode]=$(awk -v n="$node_cpu" -v c="$ctl_cpu" -v s="$s" -v k="$(nproc)" \
                           'BEGIN {printf "%.0f", 100 * (n + c) / (s * k)}')
    cpu[$txs,$mode]=$(awk -v n="$node_cpu" -v c="$ctl_cpu" 'BEGIN {printf "%.2f", n + c}')
  fi
}

modes=(sequential parallel-1 parallel-2)
declare -A tps bps chain_of
for txs in 10 100; do
  n=$([ "$txs" = 10 ] && echo "$blocks10" || echo "$blocks100")
  chain_of[$txs]=$(chain "b$n-t$txs" "$n" "$txs")
done
echo "== import throughput, best of $repeat ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
# Rounds go through the verify rate and every mode in turn, so a burst of
# other load does not fall on one figure only.
for _ in $(seq 1 "$repeat"); do
  measure_verify
  for txs in 10 100; do
    for mode in "${modes[@]}"; do one_run "$txs" "$mode" "${chain_of[$txs]}"; done
  done
done
printf '%-5s %-12s %8s %10s %10s %6s\n' txs mode blocks blocks/s tx/s cpu%
for txs in 10 100; do
  for mode in "${modes[@]}"; do
    secs=${best[$txs,$mode]} blocks=${blocks_of[$txs]}
    bps[$txs,$mode]=$(awk -v b="$blocks" -v s="$secs" 'BEGIN {printf "%.0f", b / s}')
    tps[$txs,$mode]=$(awk -v b="$blocks" -v s="$secs" -v t="$txs" 'BEGIN {printf "%.0f", b * t / s}')
    printf '%-5s %-12s %8s %10s %10s %6s\n' "$txs" "$mode" "$blocks" "${bps[$txs,$mode]}" "${tps[$txs,$mode]}" \
           "${util[$txs,$mode]}"
    figure "import.tx$txs.$mode.blocks" "$blocks"
    figure "import.tx$txs.$mode.seconds" "$secs"
    figure "import.tx$txs.$mode.blocks_per_s" "${bps[$txs,$mode]}"
    figure "import.tx$txs.$mode.tx_per_s" "${tps[$txs,$mode]}"
    figure "import.tx$txs.$mode.cpu_pct" "${util[$txs,$mode]}"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo "(cpu%: CPU time of the node's processes and alysctl over wall time x cores; sequential"
echo " stays near 100/cores by design, a parallel run well below ~90 was starved by other load)"
echo
echo "== ratios"
for txs in 10 100; do
  pos=$(ratio "${tps[$txs,parallel-2]}" "${tps[$txs,sequential]}")
  two=$(ratio "${tps[$txs,parallel-2]}" "${tps[$txs,parallel-1]}")
  echo "txs/block $txs: parallel(2)/sequential ${pos}x  2 validators/1 ${two}x"
  figure "parallel_over_sequential.import_tx$txs" "$pos"
  figure "two_over_one_validators.import_tx$txs" "$two"
done
echo "raw BIP340 verification: 1 core ${v1}/s, 2 cores ${v2}/s, ${vcpu} per CPU-second of a thread"
figure verify_per_s.1core "$v1"
figure verify_per_s.2cores "$v2"
figure verify_per_cpu_s "$vcpu"
for txs in 10 100; do
  iov=$(ratio "${tps[$txs,parallel-2]}" "$v2")
  echo "txs/block $txs: end-to-end tx/s (parallel 2) / raw 2-core verify rate = $iov" \
       "(signature-only ceiling $(awk -v t="$txs" 'BEGIN {printf "%.2f", t / (t + 1)}'):" \
       "blocks carry one more signature each, the header's)"
  figure "import_over_verify.tx$txs" "$iov"
  # The same per CPU-second (node + alysctl vs the verifying thread): what
  # the wall-clock ratio is when the node has the cores to itself, and
  # close to it under other load.
  iovc=$(awk -v b="${blocks_of[$txs]}" -v t="$txs" -v c="${cpu[$txs,parallel-2]}" -v v="$vcpu" \
             'BEGIN {printf "%.2f", (c > 0 && v > 0 ? b * t / c / v : 0)}')
  echo "txs/block $txs: the same per CPU-second (node and alysctl CPU vs $vcpu verifications" \
       "per CPU-second) = $iovc"
  figure "import_over_verify_cpu.tx$txs" "$iovc"
  if awk -v r="$iov" -v t="$txs" 'BEGIN {exit !(r > t / (t + 1))}'; then
    echo "  (above the ceiling: other load slowed the verify measurement more than the imports;" \
         "this ratio means nothing, run again on a quiet machine)"
  fi
done
echo "goals (issue 11): end-to-end >= 0.80 of the 2-core rate with 10-tx blocks, >= 0.88 with 100-tx blocks"

echo
echo "== peak RSS (VmHWM, KiB), parallel with 2 validators, 10 txs/block"
printf '%-8s %10s %10s %10s %10s\n' blocks storage processor valid-1 valid-2
for n in $rss_small $rss_large; do
  c=$(chain "b$n-t10" "$n" 10)
  start_node "$bench_dir/node" parallel 2 "$c/genesis"
  run_import "$bench_dir/node" "$c" > /dev/null
  hs=$(hwm_kb "$storage_pid") hp=$(hwm_kb "$bp_pid")
  h1=$(hwm_kb "${validator_pids[0]}") h2=$(hwm_kb "${validator_pids[1]}")
  printf '%-8s %10s %10s %10s %10s\n' "$n" "$hs" "$hp" "$h1" "$h2"
  figure "rss_kib.storage.$n" "$hs"
  figure "rss_kib.block_processor.$n" "$hp"
  figure "rss_kib.validator-1.$n" "$h1"
  figure "rss_kib.validator-2.$n" "$h2"
  stop_all
done
rm -rf "$bench_dir/node"

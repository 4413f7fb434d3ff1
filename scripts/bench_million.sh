#!/usr/bin/env bash
# bench_million.sh: a million blocks, flat (issue 11 item 5). Figures and
# ratios, never assertions. Called by `scripts/bench.sh --million` (it
# takes a long while: generation, an import and a sync of the whole chain);
# runs alone too:
#
#   BENCH_MILLION=1 scripts/bench_million.sh [BUILD_DIR]   (default: build)
#
# (without BENCH_MILLION=1 it says so and does nothing, so that a plain
# `scripts/bench.sh million` does not start an hour of work by accident).
#
#   1. chain: MILLION_BLOCKS (1,000,000) blocks x 10 txs, made once by
#      alys-chaingen and kept under BENCH_DIR/chains (the same name and seed
#      as bench_import.sh would give it);
#   2. import: a fresh node with the default config (deploy/alys-sync.toml;
#      only its paths, ports, log_level and validation_workers = 2, as in
#      bench_import.sh, are set) started by its supervisor; `alysctl import`
#      of the whole chain;
#   3. sync: that database served by one node (MILLION_SERVERS, 1..3: more
#      are copies of it), a second fresh node (same config) syncs it all,
#      started paused and resumed once its peers are connected.
#
# While each runs, a sampler reads every POLL seconds the node's head
# (StorageActor) and, for every process of the node (supervisor, actors
# and warm standbys), VmRSS and VmHWM and utime + stime from /proc. It prints:
#   - per process: VmHWM and VmRSS when the head first passes EARLY
#     (10,000) blocks and at the end, and the ratio of the two peaks (VmHWM
#     is a high-water mark: the reading at EARLY is the 10k-block run's
#     peak, in the same run);
#   - total node RSS (the sum over the processes of their VmHWM, an upper
#     bound of what they held at once, and of their VmRSS at the end) beside
#     the 256 MiB bound;
#   - blocks/s of the first EARLY blocks and of the last EARLY blocks, and
#     the ratio last/first: other load on the machine moves it;
#   - the node's CPU seconds per 1,000 blocks over the same two windows and
#     their ratio last/first: other load barely moves this one, it is the
#     figure to trust on a shared machine;
#   - database bytes per block: du of the data dir / blocks, and the SST
#     files alone (RocksDB's live data) / blocks; ldb's
#     rocksdb.estimate-live-data-size when ldb is installed.
#   Every sample is kept in WORK/PHASE.samples ("head ms ticks" and per
#   process "name:VmRSS_KiB:ticks"), to find out afterwards who grew.
#   A progress line every EVERY (100,000) blocks (height, blocks/s and CPU
#   s/kblock over the last EARLY blocks, total VmRSS, the data dir's size),
#   so a run cut short still says how far it got and how fast.
#
# Cut short: MILLION_IMPORT_S / MILLION_SYNC_S (seconds, 0 = no limit) or a
# file WORK/stop (touch it) end the running phase: its figures are those at
# the height reached (keys then carry that height, not MILLION_BLOCKS) and
# the sync, if it has not started, syncs what was imported.
#
# Keys (scripts/bench.sh --json), P a process (supervisor, storage,
# peer_manager, block_processor, sync, validator-1, validator-2, and the
# supervisor's warm standbys: storage-standby, ...), N the blocks reached:
#   rss_kib.P.N                       import: VmHWM at the end
#   million.import.hwm_kib_at_10000.P, .rss_kib_at_10000.P, .rss_kib_end.P,
#     .hwm_end_over_10000.P           (EARLY in the key when not 10000)
#   million.import.total_rss_kib      sum of VmHWM at the end (bound 262144)
#   million.import.total_rss_now_kib  sum of VmRSS at the end
#   million.import.total_pss_now_kib  sum of Pss at the end (shared pages
#                                     counted once: what the node costs)
#   million.import.{blocks,seconds,blocks_per_s}
#   million.import.{first,last}_blocks_per_s, .last_over_first_throughput
#   million.import.cpu_s_per_kblock_{first,last}, .cpu_per_kblock_last_over_first
#   million.import.cpu_s_per_kblock_{first,last}_100000,
#     .cpu_per_kblock_last_over_first_100000   (the same over EVERY blocks)
#   rss_kib_sync.syncing.P.N, rss_kib_sync.serving.P.N   sync: VmHWM at the end
#   million.sync.*                    as million.import.* (the syncing node)
#   million.db_bytes, million.db_bytes_per_block, million.sst_bytes_per_block,
#   million.live_data_bytes_per_block (ldb; null without it)
# (bench_import.sh's rss_kib.P.10000 comes from a run of its own, with the
# actors started by hand: the same-run 10k peaks are the million.*_at_10000.)
#
# Environment: BENCH_DIR (default /tmp/alys-bench; the chain is kept in
# BENCH_DIR/chains, the imported database and nodes in BENCH_DIR/million:
# for 1M blocks 1.6 GB of chain and 1.9 GB of database twice), MILLION_BLOCKS
# (1000000), MILLION_EARLY (10000), MILLION_EVERY (100000), MILLION_POLL_S
# (2), MILLION_SERVERS (1), MILLION_LOG (log_level, "warn"),
# MILLION_IMPORT_S, MILLION_SYNC_S (0); BENCH_QUICK=1 makes the defaults
# MILLION_BLOCKS 20000, MILLION_EARLY 2000, MILLION_EVERY 5000.
# BENCH_FIGURES: see figure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ALYS_ROOT=$ROOT
ALYS_BUILD=$(cd "${1:-$ROOT/build}" && pwd)
export ALYS_BUILD
# shellcheck source=SCRIPTDIR/../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"

if [ "${BENCH_MILLION:-0}" != 1 ]; then
  echo "bench_million: skipped (it takes a long while): scripts/bench.sh --million, or BENCH_MILLION=1"
  exit 0
fi
for b in supervisor alysctl chaingen; do
  [ -x "$(alys_bin $b)" ] || { echo "bench_million: $(alys_bin $b) is not built" >&2; exit 2; }
done

# figure KEY VALUE [WHY]: one figure for scripts/bench.sh --json, appended to
# $BENCH_FIGURES when set. VALUE is a number, or null with WHY.
figure() { if [ -n "${BENCH_FIGURES:-}" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$BENCH_FIGURES"; fi; }
quick() { if [ "${BENCH_QUICK:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }
num_or_null() { if [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then echo "$1"; else echo null; fi; }
# fig KEY VALUE: figure, null (with a reason) when VALUE is not a number
fig() { local v; v=$(num_or_null "$2"); figure "$1" "$v" "${3:-not measured (the run did not get that far)}"; }
calc() { awk "BEGIN {$1}"; }

blocks=${MILLION_BLOCKS:-$(quick 20000 1000000)}
early=${MILLION_EARLY:-$(quick 2000 10000)}
every=${MILLION_EVERY:-$(quick 5000 100000)}
poll=${MILLION_POLL_S:-2}
nservers=${MILLION_SERVERS:-1}
log_level=${MILLION_LOG:-warn}
import_limit=${MILLION_IMPORT_S:-0}
sync_limit=${MILLION_SYNC_S:-0}
txs=10
bound_kib=262144
bench_dir=${BENCH_DIR:-/tmp/alys-bench}
WORK=$bench_dir/million
clk=$(getconf CLK_TCK)
mkdir -p "$WORK"
rm -f "$WORK/stop"
trap 'alys_cleanup' EXIT
trap 'exit 130' INT TERM

echo "== a million blocks, flat: $blocks blocks x $txs txs ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"

# ---- the chain, once (bench_import.sh's chain(): same dir, same seed)
CHAIN=$bench_dir/chains/b$blocks-t$txs
if [ ! -s "$CHAIN/result.txt" ]; then
  echo "generating $blocks blocks x $txs txs into $CHAIN ..."
  t0=$(alys_now_ms)
  alys_chain "$CHAIN" "$blocks" "$txs" "bench-b$blocks-t$txs" --no-verify --threads "$(nproc)" ||
    { echo "bench_million: chaingen failed" >&2; exit 1; }
  echo "generated in $(calc "printf \"%.0f\", ($(alys_now_ms) - $t0) / 1000") s"
fi
echo "chain: $CHAIN/chain.export, $(stat -c %s "$CHAIN/chain.export") bytes"

# ---- the sampler

# procs NODE: "name pid" lines, the supervisor and every process it
# started: the actors (their --name) and the warm standbys it keeps for a
# fast restart (NAME-standby): they are the node's memory too.
procs() {
  local sup c
  sup=$(alys_node_pid "$1")
  echo "supervisor $sup"
  for c in $(pgrep -P "$sup"); do
    tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null |
      awk -v pid="$c" '{n = ""; s = ""
        for (i = 1; i < NF; i++) if ($i == "--name") n = $(i + 1)
        for (i = 1; i <= NF; i++) if ($i == "--standby") s = "-standby"
        if (n != "") print n s, pid}' || true
  done
}
# status_kb PID FIELD: VmRSS / VmHWM in KiB, "" when the process is gone.
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Per phase: PNAMES/PPIDS the processes; samples SH (head), ST (ms), SC
# (CPU ticks of all the processes); AT10_HWM/AT10_RSS per process at EARLY.
declare -a PNAMES PPIDS SH ST SC
declare -A AT10_HWM AT10_RSS END_HWM END_RSS ROCKS
load_procs() {
  local n p
  PNAMES=() PPIDS=()
  while read -r n p; do
    if [ -z "$p" ] || [ "$p" = null ]; then continue; fi
    PNAMES+=("$n") PPIDS+=("$p")
  done < <(procs "$1")
}
# A process that restarted keeps its name: its new pid is looked up again
# and the restart said (its CPU and peak start again from zero).
RESTARTS=0
check_procs() {
  local i
  for i in "${!PPIDS[@]}"; do
    if [ ! -r "/proc/${PPIDS[i]}/stat" ]; then
      echo "bench_million: ${PNAMES[i]} (pid ${PPIDS[i]}) is gone: a restart? (its figures start again)" >&2
      RESTARTS=$((RESTARTS + 1))
      load_procs "$NODE"
      return
    fi
  done
}
cpu_ticks() { local t=0 p; for p in "${PPIDS[@]}"; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
head_of() { alys_head "$1" head_height; }

# sample: one more sample of NODE (head, time, CPU); "" head is skipped.
sample() {
  local h
  check_procs
  h=$(head_of "$NODE")
  [[ $h =~ ^[0-9]+$ ]] || return 0
  SH+=("$h") ST+=("$(alys_now_ms)") SC+=("$(cpu_ticks)")
  # WORK/PHASE.samples: head ms ticks, then per process name:VmRSS:ticks
  local i line="$h ${ST[${#ST[@]}-1]} ${SC[${#SC[@]}-1]}"
  for i in "${!PPIDS[@]}"; do
    line+=" ${PNAMES[i]}:$(status_kb "${PPIDS[i]}" VmRSS):$(ticks "${PPIDS[i]}")"
  done
  echo "$line" >>"$WORK/$PHASE.samples"
}
last() { local -n a=$1; echo "${a[${#a[@]}-1]}"; }

# window_from FIRST_INDEX TO_INDEX: "blocks/s cpu_s_per_kblock blocks"
window() {
  local i=$1 j=$2
  awk -v h0="${SH[i]}" -v h1="${SH[j]}" -v t0="${ST[i]}" -v t1="${ST[j]}" \
      -v c0="${SC[i]}" -v c1="${SC[j]}" -v k="$clk" 'BEGIN {
    n = h1 - h0; s = (t1 - t0) / 1000
    if (n <= 0 || s <= 0) { print "- - 0"; exit }
    printf "%.0f %.3f %d\n", n / s, (c1 - c0) / k / n * 1000, n }'
}
# last_window_start [WIDTH]: index of the latest sample at least WIDTH
# (EARLY) blocks below the newest one (0 if none).
last_window_start() {
  local n=${#SH[@]} top i w=${1:-$early}
  top=${SH[n - 1]}
  for ((i = n - 1; i >= 0; i--)); do
    if ((SH[i] <= top - w)); then echo "$i"; return; fi
  done
  echo 0
}
# first_window_end WIDTH: index of the first sample WIDTH blocks above the
# first one ("" if none).
first_window_end() {
  local i
  for i in "${!SH[@]}"; do
    if ((SH[i] >= SH[0] + $1)); then echo "$i"; return; fi
  done
}
sum_rss() { local t=0 p v; for p in "${PPIDS[@]}"; do v=$(status_kb "$p" VmRSS); t=$((t + ${v:-0})); done; echo "$t"; }

# progress: one line per EVERY blocks.
NEXT_PRINT=0
progress() {
  local top=${SH[${#SH[@]}-1]} w el
  ((top >= NEXT_PRINT)) || return 0
  NEXT_PRINT=$(((top / every + 1) * every))
  read -r bps cpk _ < <(window "$(last_window_start)" $((${#SH[@]} - 1)))
  el=$(calc "printf \"%.0f\", ($(last ST) - ${ST[0]}) / 1000")
  w=$(du -sb "$NODE/data" 2>/dev/null | cut -f1)
  printf '  %s: head %8d  %6s s  last %d blocks: %6s blocks/s %7s CPU s/kblock  total VmRSS %7d KiB  storage %7s KiB  data %s MB  load %s%s\n' \
    "$PHASE" "$top" "$el" "$early" "$bps" "$cpk" "$(sum_rss)" \
    "$(status_kb "$(pid_of storage)" VmRSS)" "$(calc "printf \"%.0f\", ${w:-0} / 1048576")" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$(also)"
}
# also: the serving node's total VmRSS and its storage's (ALSO: its dir)
ALSO=""
also() {
  [ -n "$ALSO" ] || return 0
  local t=0 n p v st=0
  while read -r n p; do
    v=$(status_kb "$p" VmRSS)
    t=$((t + ${v:-0}))
    [ "$n" = storage ] && st=${v:-0}
  done < <(procs "$ALSO")
  echo "  server: total VmRSS $t KiB, storage $st KiB"
}
mib() { [[ ${1:-} =~ ^[0-9.e+]+$ ]] && calc "printf \"%.1f\", $1 / 1048576" || echo -; }
pid_of() { local i; for i in "${!PNAMES[@]}"; do [ "${PNAMES[i]}" = "$1" ] && { echo "${PPIDS[i]}"; return; }; done; echo 0; }

# at_early: once, when the head first passes EARLY above the start.
record_early() {
  local i
  for i in "${!PPIDS[@]}"; do
    AT10_HWM[${PNAMES[i]}]=$(status_kb "${PPIDS[i]}" VmHWM)
    AT10_RSS[${PNAMES[i]}]=$(status_kb "${PPIDS[i]}" VmRSS)
  done
  EARLY_INDEX=$((${#SH[@]} - 1))
  rocks_read early
}
# rocks_read WHEN: storage's alys_storage_rocksdb_bytes gauges of NODE
# (updated every 2 s) into ROCKS[WHEN:part]: which part of RocksDB's
# memory moves between the early and the end readings.
ROCKS_PARTS=(memtables table_readers block_cache block_cache_pinned)
rocks_read() {
  local part
  for part in "${ROCKS_PARTS[@]}"; do
    ROCKS[$1:$part]=$(alys_metric "$NODE" alys_storage_rocksdb_bytes "part=\"$part\"")
  done
}
record_end() {
  local i
  END_PSS=0
  for i in "${!PPIDS[@]}"; do
    END_PSS=$((END_PSS + $(awk '$1 == "Pss:" {print $2}' "/proc/${PPIDS[i]}/smaps_rollup" 2>/dev/null || echo 0)))
    END_HWM[${PNAMES[i]}]=$(status_kb "${PPIDS[i]}" VmHWM)
    END_RSS[${PNAMES[i]}]=$(status_kb "${PPIDS[i]}" VmRSS)
  done
  rocks_read end
}

# watch PHASE NODE PID TARGET LIMIT_S: sample NODE until PID (the import,
# or 0 for a sync) ends, the head reaches TARGET, LIMIT_S passes (0: no
# limit) or WORK/stop appears; then the end readings.
watch() {
  PHASE=$1 NODE=$2
  local pid=$3 target=$4 limit=$5 start=$SECONDS top
  SH=() ST=() SC=() EARLY_INDEX=""
  rm -f "$WORK/$PHASE.samples"
  AT10_HWM=() AT10_RSS=() END_HWM=() END_RSS=() ROCKS=()
  NEXT_PRINT=$every
  sample
  [ ${#SH[@]} -gt 0 ] || { echo "bench_million: $PHASE: no head from $NODE" >&2; return 1; }
  STOPPED=""
  while :; do
    sleep "$poll"
    sample
    top=$(last SH)
    if [ -z "$EARLY_INDEX" ] && ((top >= SH[0] + early)); then record_early; fi
    progress
    if ((top >= target)); then break; fi
    if [ "$pid" != 0 ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [ -f "$WORK/stop" ]; then STOPPED="stop file"; break; fi
    if ((limit > 0 && SECONDS - start >= limit)); then STOPPED="${limit} s limit"; break; fi
  done
  record_end
}

# report PHASE KEYPREFIX RSSKEY: the phase's table and figures. RSSKEY is
# the prefix of the end-of-run peak keys (RSSKEY.P.N).
report() {
  local phase=$1 kp=$2 rk=$3 n=${#SH[@]} reached first last_i p hw hwe ratio tot=0 totnow=0
  reached=$(($(last SH) - SH[0]))
  echo
  echo "-- $phase: $reached blocks in $(calc "printf \"%.1f\", ($(last ST) - ${ST[0]}) / 1000") s${STOPPED:+ (cut short: $STOPPED)}; load $(cut -d' ' -f1-3 /proc/loadavg)"
  fig "$kp.blocks" "$reached"
  local secs
  secs=$(calc "printf \"%.1f\", ($(last ST) - ${ST[0]}) / 1000")
  fig "$kp.seconds" "$secs"
  fig "$kp.blocks_per_s" "$(calc "printf \"%.0f\", $reached / $secs")"
  printf '%-24s %10s %10s %10s %10s %9s\n' process "hwm@$early" "rss@$early" hwm@end rss@end end/early
  for p in "${PNAMES[@]}"; do
    hw=${AT10_HWM[$p]:-} hwe=${END_HWM[$p]:-}
    ratio=-
    [ -n "$hw" ] && [ -n "$hwe" ] && ratio=$(calc "printf \"%.2f\", $hwe / $hw")
    printf '%-24s %10s %10s %10s %10s %9s\n' "$p" "${hw:--}" "${AT10_RSS[$p]:--}" "${hwe:--}" "${END_RSS[$p]:--}" "$ratio"
    fig "$rk.$p.$reached" "$hwe"
    fig "$kp.hwm_kib_at_$early.$p" "$hw"
    fig "$kp.rss_kib_at_$early.$p" "${AT10_RSS[$p]:-}"
    fig "$kp.rss_kib_end.$p" "${END_RSS[$p]:-}"
    fig "$kp.hwm_end_over_$early.$p" "$ratio"
    tot=$((tot + ${hwe:-0})) totnow=$((totnow + ${END_RSS[$p]:-0}))
  done
  echo "total node RSS: sum of peaks $tot KiB ($(calc "printf \"%.1f\", $tot / 1024") MiB), now $totnow KiB; bound < $bound_kib KiB (256 MiB)"
  echo "  (RSS counts the shared libraries' pages in every process; the node's proportional share, Pss, now: $END_PSS KiB)"
  fig "$kp.total_rss_kib" "$tot"
  fig "$kp.total_rss_now_kib" "$totnow"
  fig "$kp.total_pss_now_kib" "$END_PSS"
  local part line="storage's RocksDB memory (its own accounting), MiB at $early -> end:"
  for part in "${ROCKS_PARTS[@]}"; do
    line+=" $part $(mib "${ROCKS[early:$part]:-}") -> $(mib "${ROCKS[end:$part]:-}")"
    fig "$kp.rocksdb_bytes_at_$early.$part" "${ROCKS[early:$part]:-}"
    fig "$kp.rocksdb_bytes_end.$part" "${ROCKS[end:$part]:-}"
  done
  echo "$line"
  if [ -z "$EARLY_INDEX" ]; then
    echo "(the head never passed $early blocks: no window figures)"
    return 0
  fi
  local fb fc fn lb lc ln
  read -r fb fc fn < <(window 0 "$EARLY_INDEX")
  first=$(last_window_start)
  ((first >= EARLY_INDEX)) || first=$EARLY_INDEX  # windows never overlap
  last_i=$((n - 1))
  read -r lb lc ln < <(window "$first" "$last_i")
  echo "first $fn blocks: $fb blocks/s, $fc node CPU s per 1000 blocks"
  echo "last  $ln blocks (heads ${SH[first]}..${SH[last_i]}): $lb blocks/s, $lc node CPU s per 1000 blocks"
  local rt rc
  rt=$(calc "printf \"%.2f\", ($fb > 0 ? $lb / $fb : 0)" 2>/dev/null || echo -)
  rc=$(calc "printf \"%.2f\", ($fc > 0 ? $lc / $fc : 0)" 2>/dev/null || echo -)
  echo "last/first: throughput ${rt}x (other load moves it), CPU per block ${rc}x (the one to trust; flat = 1.00, goal within 10%)"
  fig "$kp.first_blocks_per_s" "$fb"
  fig "$kp.last_blocks_per_s" "$lb"
  fig "$kp.cpu_s_per_kblock_first" "$fc"
  fig "$kp.cpu_s_per_kblock_last" "$lc"
  fig "$kp.last_over_first_throughput" "$rt"
  fig "$kp.cpu_per_kblock_last_over_first" "$rc"
  fig "$kp.restarts" "$RESTARTS"
  # The same over EVERY-block windows, when there are two: 10k blocks are a
  # few seconds, and the first ones carry the start (handshakes, the first
  # requests, an empty cache); this one shows a trend over the run.
  local e1 e2
  e1=$(first_window_end "$every")
  [ -n "$e1" ] || return 0
  e2=$(last_window_start "$every")
  ((e2 >= e1)) || return 0
  read -r fb fc fn < <(window 0 "$e1")
  read -r lb lc ln < <(window "$e2" "$last_i")
  rc=$(calc "printf \"%.2f\", ($fc > 0 ? $lc / $fc : 0)" 2>/dev/null || echo -)
  echo "over the first $fn and the last $ln blocks: $fc and $lc node CPU s per 1000 blocks: ${rc}x"
  fig "$kp.cpu_s_per_kblock_first_$every" "$fc"
  fig "$kp.cpu_s_per_kblock_last_$every" "$lc"
  fig "$kp.cpu_per_kblock_last_over_first_$every" "$rc"
}

# ---- import
node_conf() {   # node_conf NODE NAME [key=value ...]
  local node=$1 name=$2
  shift 2
  rm -rf "$node" "$WORK/r/$name"
  mkdir -p "$node"
  alys_node_config "$node" "$WORK/r/$name" "$CHAIN/genesis" "name=\"$name\"" \
    'validation_workers=2' "log_level=\"$log_level\"" "metrics_port=$(alys_free_port)" "$@"
}

echo
echo "== import of $blocks blocks into a fresh node (default config, 2 validators)"
IMP=$WORK/import
node_conf "$IMP" import
alys_node_start "$IMP"
alys_node_wait_ready "$IMP" 60 || { echo "bench_million: import node did not start" >&2; exit 1; }
load_procs "$IMP"
# the binary itself, not alys_ctl: $! must be alysctl's pid (a function in
# the background is a subshell, and a signal to it would not reach alysctl)
"$(alys_bin alysctl)" --config "$IMP/node.toml" import "$CHAIN/chain.export" >"$WORK/import.out" 2>&1 &
imp_pid=$!
ALYS_PIDS+=("$imp_pid")
watch import "$IMP" "$imp_pid" "$blocks" "$import_limit"
if kill -0 "$imp_pid" 2>/dev/null; then kill -TERM "$imp_pid" 2>/dev/null || true; fi
wait "$imp_pid" 2>/dev/null || true
report import million.import rss_kib
imported=$(head_of "$IMP")
alys_node_stop "$IMP" 60

# ---- database size
echo
bytes=$(du -sb "$IMP/data" | cut -f1)
sst=$(find "$IMP/data" -name '*.sst' -printf '%s\n' | awk '{t += $1} END {printf "%d", t}')
echo "== database: $bytes bytes for $imported blocks: $(calc "printf \"%.0f\", $bytes / $imported") bytes/block (du of the data dir); SST files $sst bytes: $(calc "printf \"%.0f\", $sst / $imported") bytes/block"
fig million.db_bytes "$bytes"
fig million.db_bytes_per_block "$(calc "printf \"%.0f\", $bytes / $imported")"
fig million.sst_bytes_per_block "$(calc "printf \"%.0f\", $sst / $imported")"
live=""
if command -v ldb >/dev/null; then
  # every column family's estimate (ldb's default is the default one only)
  db=$(dirname "$(find "$IMP/data" -name CURRENT | head -n1)")
  live=$( { ldb --db="$db" list_column_families 2>/dev/null || true; } |
    sed -n 's/.*{\(.*\)}.*/\1/p' | tr ',' '\n' | tr -d ' ' |
    while read -r cf; do
      [ -n "$cf" ] || continue
      ldb --db="$db" --column_family="$cf" get_property rocksdb.estimate-live-data-size 2>/dev/null |
        awk -F': *' '{print $NF}' || true
    done | awk '/^[0-9]+$/ {t += $1; n++} END {if (n) printf "%d", t}')
fi
if [ -n "$live" ]; then
  echo "   RocksDB estimate-live-data-size (ldb, all column families): $live bytes: $(calc "printf \"%.0f\", $live / $imported") bytes/block"
  fig million.live_data_bytes_per_block "$(calc "printf \"%.0f\", $live / $imported")"
else
  figure million.live_data_bytes_per_block null "ldb not installed or could not open the database"
fi

# ---- sync
echo
echo "== sync of $imported blocks from $nservers serving node(s) into a fresh node (default config, 2 validators)"
SERVERS=() EPS=()
mv "$IMP/data" "$WORK/db"
for i in $(seq 1 "$nservers"); do
  s=$WORK/server$i
  node_conf "$s" "server$i" "listen=\"tcp://127.0.0.1:$(alys_free_port)\""
  rm -rf "$s/data"
  # the last one takes the imported database itself, the others a copy
  if [ "$i" = "$nservers" ]; then mv "$WORK/db" "$s/data"; else cp -a "$WORK/db" "$s/data"; fi
  rm -f "$s/data/node.key" # a key of its own each
  EPS+=("$(alys_node_endpoint "$s")")
  alys_node_start "$s"
  SERVERS+=("$s")
done
for s in "${SERVERS[@]}"; do
  alys_node_wait_ready "$s" 120 || { echo "bench_million: $s did not start" >&2; exit 1; }
done
list=$(printf '"%s", ' "${EPS[@]}")
FRESH=$WORK/fresh
node_conf "$FRESH" fresh 'strategy="parallel"' "bootstrap_peers=[${list%, }]"
ALYS_SYNC_START_PAUSED=1 alys_node_start "$FRESH"
alys_node_wait_ready "$FRESH" 60 || { echo "bench_million: syncing node did not start" >&2; exit 1; }
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
  ap=$(alys_sync_json "$FRESH" | alys_jget total_peers)
  [ -n "$ap" ] && [ "$ap" -ge "$nservers" ] && break
  sleep 0.2
done
load_procs "$FRESH"
RESTARTS=0
alys_ctl "$FRESH" sync resume >/dev/null
ALSO=${SERVERS[0]}
watch sync "$FRESH" 0 "$imported" "$sync_limit"
report sync million.sync rss_kib_sync.syncing
# the serving node's peaks (its processes, over the whole sync)
echo "serving node (server1), VmHWM KiB at the end:"
NODE=${SERVERS[0]}
load_procs "$NODE"
reached=$(($(last SH) - SH[0]))
tot=0 pss=0
for i in "${!PNAMES[@]}"; do
  hw=$(status_kb "${PPIDS[i]}" VmHWM)
  printf '  %-24s %10s\n' "${PNAMES[i]}" "${hw:--}"
  fig "rss_kib_sync.serving.${PNAMES[i]}.$reached" "$hw"
  tot=$((tot + ${hw:-0}))
  pss=$((pss + $(awk '$1 == "Pss:" {print $2}' "/proc/${PPIDS[i]}/smaps_rollup" 2>/dev/null || echo 0)))
done
echo "serving node total: sum of peaks $tot KiB ($(calc "printf \"%.1f\", $tot / 1024") MiB), Pss now $pss KiB; bound < $bound_kib KiB (256 MiB)"
echo "  (its storage's block cache fills with the bodies it serves, up to the cache's size:"
echo "   max_memory_gb = $(alys_cfg "$NODE" max_memory_gb), cache_size_mb = $(alys_cfg "$NODE" cache_size_mb): 0 = 1/16 of the budget)"
fig million.sync.serving_total_rss_kib "$tot"
fig million.sync.serving_total_pss_kib "$pss"
alys_node_stop "$FRESH" 60
for s in "${SERVERS[@]}"; do alys_node_stop "$s" 60; done
echo
echo "(nodes and database left in $WORK; load at the end $(cut -d' ' -f1-3 /proc/loadavg))"

#!/usr/bin/env bash
# bench_sync.sh: sync benchmarks between real nodes on loopback (figures and
# ratios, never assertions). Called by scripts/bench.sh; runs alone too:
#
#   scripts/bench_sync.sh [BUILD_DIR]        (default: build)
#
#   1. throughput: a fresh node syncs BLOCKS blocks (10 txs each) from 3
#      local serving nodes, strategy "parallel" vs "sequential" (the seed's
#      behaviour: one random peer, 1024-block batches, one after another,
#      blocks checked one at a time): blocks/s, tx/s and the ratio;
#   2. the same with 50 ms injected on every response of every peer
#      (alys-faultproxy --fault delay 50 in front of each server);
#   3. blocks re-downloaded after kill -9 of each actor of the syncing node
#      at about a third of the sync: what the servers served beyond the
#      chain's length (their alys_peer_served_items_total{kind="blocks"});
#   4. peak RSS (VmHWM) of every process of the syncing node, of a serving
#      node and of a fault proxy, read from /proc just before they stop;
#   5. sync over import: the parallel sync's tx/s over the tx/s of an
#      `alysctl import` of the same chain into a fresh node with the same
#      config, measured in the same run (what the network costs when the
#      peers are fast);
#   6. bandwidth-capped peers (issue 11 item 4): alys-faultproxy
#      --upload-kbps K in front of the servers, K computed from the chain's
#      average encoded block size (chain.export bytes / blocks) so that one
#      capped peer can send about CAP_BPS blocks/s: one capped peer
#      (parallel strategy), 3 capped peers parallel vs sequential, and 8
#      capped peers (8 proxies, each a peer of its own, in front of the 3
#      servers in turn) parallel with max_parallel_downloads = CAP8_PARALLEL
#      (16), over min(8 x one capped peer, the uncapped parallel sync of 1.);
#   7. what CURVE costs: the parallel sync of 1. again with every node at
#      [network] plaintext = true, and the ratio of the two throughputs.
#
# The syncing node starts paused (ALYS_SYNC_START_PAUSED=1) and is resumed
# once all three peers are connected, so every run starts from the same
# place and the clock measures the sync, not the dialling.
# Environment: BENCH_DIR (default /tmp/alys-bench; chains are kept there),
# BLOCKS (20000), REPEAT (1: best of N per figure), DELAY_MS (50),
# KILL_BLOCKS (6000: chain of the kill runs), CAP_BPS (300: blocks/s one
# capped peer can send), CAP8_PARALLEL (16: the syncing node's
# max_parallel_downloads with 8 capped peers), CAP8_WINDOW (4096: its
# download_window); BENCH_QUICK=1 makes the defaults BLOCKS 1000,
# KILL_BLOCKS 600. BENCH_FIGURES: see figure. BENCH_SYNC_ONLY=capped: only
# the uncapped parallel sync of 1. and section 6 (a look at the cap alone);
# BENCH_SYNC_ONLY=kills: only the re-downloads after kill -9 (KILL_ACTORS:
# which, default "none storage peer_manager block_processor sync validator-1").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ALYS_ROOT=$ROOT
ALYS_BUILD=$(cd "${1:-$ROOT/build}" && pwd)
export ALYS_BUILD
# shellcheck source=SCRIPTDIR/../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
for b in supervisor alysctl chaingen faultproxy; do
  [ -x "$(alys_bin $b)" ] || { echo "bench_sync: $(alys_bin $b) is not built" >&2; exit 2; }
done

# figure KEY VALUE [WHY]: one figure for scripts/bench.sh --json, appended to
# $BENCH_FIGURES when set. VALUE is a number, or null with WHY.
figure() { if [ -n "${BENCH_FIGURES:-}" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$BENCH_FIGURES"; fi; }
quick() { if [ "${BENCH_QUICK:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }
num_or_null() { if [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then echo "$1"; else echo null; fi; }

bench_dir=${BENCH_DIR:-/tmp/alys-bench}/sync
blocks=${BLOCKS:-$(quick 1000 20000)}
repeat=${REPEAT:-1}
delay=${DELAY_MS:-50}
cap_bps=${CAP_BPS:-300}
cap8_parallel=${CAP8_PARALLEL:-16}
cap8_window=${CAP8_WINDOW:-4096}
kill_blocks=${KILL_BLOCKS:-$(quick 600 6000)}
txs=10
mkdir -p "$bench_dir"
WORK=$(mktemp -d /tmp/alys-bsync-XXXXXX)
trap 'alys_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# chain_db BLOCKS: chain + imported database, once.
chain_db() {
  local dir=$bench_dir/chain-b$1-t$txs
  alys_chain "$dir" "$1" "$txs" "bench-sync-$1" --no-verify >/dev/null
  if [ ! -f "$dir/db.done" ]; then
    local node=$WORK/import
    rm -rf "$node" "$dir/db"
    alys_node_config "$node" "$WORK/r/import" "$dir/genesis" 'validation_workers=2' \
      'log_level="warn"' 'wal_sync=false' "metrics_port=$(alys_free_port)"
    alys_node_start "$node"
    # (in a || so that set -e does not end the script at the first poll)
    alys_node_wait_ready "$node" 60 || { echo "bench_sync: import node did not start" >&2; exit 1; }
    # The database is kept and reused: it must hold the whole chain (an
    # import cut short once left a 5,632-block "20,000-block" database that
    # made every later sync wait for heights no server had).
    local got=""
    alys_ctl "$node" import "$dir/chain.export" >"$WORK/import.out" 2>&1 &&
      got=$(awk '$1 == "head_hash" {print $2}' "$WORK/import.out")
    alys_node_stop "$node"
    if [ -z "$got" ] || [ "$got" != "$(alys_chain_value "$dir" head_hash)" ]; then
      echo "bench_sync: the import of $dir did not reach the chain's head: $(tail -n 3 "$WORK/import.out")" >&2
      exit 1
    fi
    mv "$node/data" "$dir/db"
    touch "$dir/db.done"
    rm -rf "$node"
  fi
  rm -f "$dir/db/node.key" # each server copy gets a key of its own
  echo "$dir"
}

# LINK: extra config of every node of a run: () = CURVE (the default),
# ('plaintext=true') = no CURVE (what CURVE costs, section 7).
SERVERS=() SERVER_EPS=() PROXY_EPS=() PROXY_PIDS=() LINK=()
start_servers() {   # start_servers CHAIN
  local i node port
  SERVERS=() SERVER_EPS=()
  for i in 1 2 3; do
    node=$WORK/s$i
    rm -rf "$node"
    mkdir -p "$node"
    cp -a "$1/db" "$node/data"
    port=$(alys_free_port)
    alys_node_config "$node" "$WORK/r/s$i" "$1/genesis" "name=\"server$i\"" \
      'validation_workers=1' 'log_level="warn"' "listen=\"tcp://127.0.0.1:$port\"" \
      "metrics_port=$(alys_free_port)" "${LINK[@]}"
    SERVER_EPS+=("$(alys_node_endpoint "$node")")
    alys_node_start "$node"
    SERVERS+=("$node")
  done
  for node in "${SERVERS[@]}"; do
    alys_node_wait_ready "$node" 60 || { echo "bench_sync: $node did not start" >&2; exit 1; }
  done
}

start_proxies() {   # a delay proxy in front of each server
  local ep port
  PROXY_EPS=() PROXY_PIDS=()
  for ep in "${SERVER_EPS[@]}"; do
    port=$(alys_free_port)
    # a peer with a key of its own, CURVE on both sides
    alys_proxy_start "$port" "$ep" "$WORK/proxy-$port.log" --fault delay --fault-arg "$delay"
    PROXY_PIDS+=("$ALYS_PROXY_PID")
    PROXY_EPS+=("$ALYS_PROXY_EP")
  done
  sleep 0.3
}

stop_proxies() { local p; for p in "${PROXY_PIDS[@]}"; do alys_stop_pid "$p" 3; done; PROXY_PIDS=(); }

# start_capped N KBPS: capped proxies (no other fault) until there are N,
# the i-th in front of server i mod 3: several proxies may front one server,
# each is a peer of its own (its own key). CAP_EPS, CAP_PIDS.
CAP_EPS=() CAP_PIDS=()
start_capped() {
  local i port
  for ((i = ${#CAP_EPS[@]}; i < $1; i++)); do
    port=$(alys_free_port)
    alys_proxy_start "$port" "${SERVER_EPS[i % ${#SERVER_EPS[@]}]}" "$WORK/cap-$port.log" \
      --upload-kbps "$2"
    CAP_PIDS+=("$ALYS_PROXY_PID")
    CAP_EPS+=("$ALYS_PROXY_EP")
  done
  sleep 0.3
}
stop_capped() { local p; for p in "${CAP_PIDS[@]}"; do alys_stop_pid "$p" 3; done; CAP_PIDS=() CAP_EPS=(); }

# fresh NAME STRATEGY EPS...: a syncing node, started paused, with the
# extra config FRESH_EXTRA (e.g. ('max_parallel_downloads=8')).
FRESH_EXTRA=()
fresh() {
  local name=$1 strategy=$2
  shift 2
  local node=$WORK/$name list
  FRESH_PEERS=$#
  list=$(printf '"%s", ' "$@")
  rm -rf "$node" "$WORK/r/$name"
  mkdir -p "$node"
  alys_node_config "$node" "$WORK/r/$name" "$CHAIN/genesis" "name=\"$name\"" \
    'validation_workers=2' 'log_level="warn"' "strategy=\"$strategy\"" \
    "bootstrap_peers=[${list%, }]" "metrics_port=$(alys_free_port)" "${LINK[@]}" \
    "${FRESH_EXTRA[@]}"
  if [ "${HOLD:-1}" = 1 ]; then
    ALYS_SYNC_START_PAUSED=1 alys_node_start "$node"
  else
    alys_node_start "$node"
  fi
  FRESH=$node
}

sync_field() { alys_sync_json "$1" | alys_jget "$2"; }

# synced_or_failed NODE HEIGHT: Synced at HEIGHT (0); Failed, or the
# supervisor gone (2: stop waiting; its log says why); else 1.
synced_or_failed() {
  local st rc=0
  alys_synced_at "$1" "$2" || rc=$?
  [ "$rc" = 0 ] && return 0
  # The supervisor exited (a config it refused, say): no sense in polling on.
  if [ "$rc" = 2 ]; then
    tail -n 3 "$1/node.log" >&2
    return 2
  fi
  st=$(sync_field "$1" state)
  if [ "$st" = Failed ]; then
    grep 'sync failed' "$1/node.log" | tail -1 >&2
    return 2
  fi
  return 1
}

# run_sync: resume FRESH once its peers (all of them, at most 20 s) are
# there; print the seconds to Synced.
run_sync() {
  local node=$FRESH deadline=$((SECONDS + 20)) ap t0 t1
  while ((SECONDS < deadline)); do
    ap=$(sync_field "$node" total_peers)
    [ -n "$ap" ] && [ "$ap" -ge "$FRESH_PEERS" ] && break
    sleep 0.1
  done
  t0=$(alys_now_ms)
  alys_ctl "$node" sync resume >/dev/null
  alys_eventually 1200 synced_or_failed "$node" "$BLOCKS_NOW" ||
    { echo "bench_sync: $node: sync did not finish" >&2; return 1; }
  t1=$(alys_now_ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) / 1000}'
}

declare -A secs
measure() {   # measure LABEL STRATEGY EPS...
  local label=$1 strategy=$2 best="" s r
  shift 2
  for r in $(seq 1 "$repeat"); do
    fresh "f-$label-$r" "$strategy" "$@"
    s=$(run_sync) || s=""
    alys_node_stop "$FRESH"
    [ -n "$s" ] || continue
    best=$(awk -v a="$s" -v b="$best" 'BEGIN {print (b == "" || a < b) ? a : b}')
  done
  secs[$label]=$best
  if [ -z "$best" ]; then
    printf '%-28s %8d %8s\n' "$label" "$BLOCKS_NOW" failed
    figure "sync.$label.seconds" null "the sync failed (its node.log says why)"
    return 0
  fi
  report "$label" "$best"
}
# report LABEL SECONDS: a line of the table and its figures.
report() {
  local bps tps
  bps=$(awk -v n="$BLOCKS_NOW" -v s="$2" 'BEGIN {printf "%.0f", n / s}')
  tps=$(awk -v n="$BLOCKS_NOW" -v t="$txs" -v s="$2" 'BEGIN {printf "%.0f", n * t / s}')
  printf '%-28s %8d %8.2f %10s %10s\n' "$1" "$BLOCKS_NOW" "$2" "$bps" "$tps"
  figure "sync.$1.blocks" "$BLOCKS_NOW"
  figure "sync.$1.seconds" "$2"
  figure "sync.$1.blocks_per_s" "$bps"
  figure "sync.$1.tx_per_s" "$tps"
}
# ratio A B: secs[A] / secs[B]; bps_of A: blocks/s of A; null when a run failed
ratio() {
  if [ -z "${secs[$1]}" ] || [ -z "${secs[$2]}" ]; then echo null; return; fi
  awk -v a="${secs[$1]}" -v b="${secs[$2]}" 'BEGIN {printf "%.2f", (a > 0 ? a / b : 0)}'
}
bps_of() {
  if [ -z "${secs[$1]}" ]; then echo null; return; fi
  awk -v n="$BLOCKS_NOW" -v s="${secs[$1]}" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}'
}

# capped_section: section 6, with the servers up and secs[parallel] measured.
capped_section() {
  local bytes avg kbps r3 b1 b8 bp bound r8
  bytes=$(stat -c %s "$CHAIN/chain.export")
  avg=$(awk -v b="$bytes" -v n="$BLOCKS_NOW" 'BEGIN {printf "%.0f", b / n}')
  # KiB/s for cap_bps blocks/s of the average block, rounded up
  kbps=$(awk -v a="$avg" -v r="$cap_bps" 'BEGIN {k = a * r / 1024; printf "%d", (k == int(k) ? k : int(k) + 1)}')
  echo
  echo "== bandwidth-capped peers: --upload-kbps $kbps per proxy = ~$cap_bps blocks/s of $avg-byte blocks (chain.export $bytes bytes / $BLOCKS_NOW blocks)"
  figure sync_capped.block_bytes "$avg"
  figure sync_capped.upload_kbps "$kbps"
  printf '%-28s %8s %8s %10s %10s\n' run blocks seconds blocks/s tx/s
  start_capped 3 "$kbps"
  # The default request_timeout_ms: a sequential 1024-block range takes
  # ~3.4 s of link at the cap (10 s at CAP_BPS=100); once one range is
  # measured, every peer's timeout follows the measured bandwidth past
  # request_timeout_ms (peer_table.h, issue 11), and a first range with
  # nothing measured gets request_timeout_ms per 256 blocks.
  FRESH_EXTRA=()
  measure parallel+cap-1peer parallel "${CAP_EPS[0]}"
  measure parallel+cap-3peers parallel "${CAP_EPS[@]}"
  measure sequential+cap-3peers sequential "${CAP_EPS[@]}"
  start_capped 8 "$kbps"
  # Not a timeout matter: ranges in flight go to the peers with the fewest
  # first (sync_peers.c), so the default 3 would keep only 3 of the 8 busy:
  # 2 per peer, so that a peer's link is not idle while its next request is
  # on its way
  # and download_window 4096: the window must hold what 8 links deliver
  # while a range travels and the one below it is processed; with 1024
  # (64-block ranges) 8 capped peers reached ~0.77 of 8 x one peer, with
  # 4096 ~0.87 on a 10,000-block chain (start and tail weigh more there).
  FRESH_EXTRA+=("max_parallel_downloads=$cap8_parallel" "download_window=$cap8_window")
  measure parallel+cap-8peers parallel "${CAP_EPS[@]}"
  FRESH_EXTRA=()
  stop_capped
  r3=$(ratio sequential+cap-3peers parallel+cap-3peers)
  b1=$(bps_of parallel+cap-1peer) b8=$(bps_of parallel+cap-8peers) bp=$(bps_of parallel)
  bound=null r8=null
  if [ "$b1" != null ] && [ "$b8" != null ] && [ "$bp" != null ]; then
    bound=$(awk -v a="$b1" -v p="$bp" 'BEGIN {printf "%.0f", (8 * a < p ? 8 * a : p)}')
    r8=$(awk -v a="$b8" -v b="$bound" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
  fi
  echo "one capped peer: $b1 blocks/s (cap ~$cap_bps); uncapped parallel (3 peers): $bp blocks/s"
  echo "parallel / sequential, 3 capped peers: ${r3}x (limit 3x)"
  echo "8 capped peers: $b8 blocks/s over min(8 x $b1, $bp) = $bound: $r8"
  capped_figure parallel_over_sequential.sync_capped_3peers "$r3"
  capped_figure parallel_over_sequential.sync_capped_8peers "$r8"
  capped_figure sync_capped.one_peer_blocks_per_s "$b1"
  capped_figure sync_capped.8peers_blocks_per_s "$b8"
  capped_figure sync_capped.uncapped_parallel_blocks_per_s "$bp"
  capped_figure sync_capped.8peers_bound_blocks_per_s "$bound"
}
# capped_figure KEY VALUE: VALUE is null only when a sync it needs failed
capped_figure() {
  if [ "$2" = null ]; then
    figure "$1" null "a sync it needs failed (see the table above)"
  else
    figure "$1" "$2"
  fi
}

# import_same_chain: seconds of an alysctl import of $CHAIN into a fresh node
# configured as the syncing ones are (no peers).
import_same_chain() {
  local node=$WORK/import-same t0 t1
  rm -rf "$node" "$WORK/r/import-same"
  mkdir -p "$node"
  alys_node_config "$node" "$WORK/r/import-same" "$CHAIN/genesis" 'name="import-same"' \
    'validation_workers=2' 'log_level="warn"' 'strategy="parallel"' "metrics_port=$(alys_free_port)"
  alys_node_start "$node"
  alys_node_wait_ready "$node" 60 || { echo "bench_sync: $node did not start" >&2; exit 1; }
  t0=$(alys_now_ms)
  alys_ctl "$node" import "$CHAIN/chain.export" >/dev/null
  t1=$(alys_now_ms)
  alys_node_stop "$node"
  rm -rf "$node"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) / 1000}'
}

# ---- re-downloads after kill -9 (kill_section; BENCH_SYNC_ONLY=kills runs it alone)
kill_section() {
  echo
  echo "== blocks re-downloaded after kill -9 at ~1/3 of a $kill_blocks-block sync (window 1024)"
  CHAIN=$(chain_db "$kill_blocks")
  BLOCKS_NOW=$kill_blocks
  start_servers "$CHAIN"
  served() { alys_served_blocks "${SERVERS[@]}"; }
  printf '%-18s %10s %12s %14s\n' killed at_height served re-downloaded
  local a cur pid
  for a in ${KILL_ACTORS:-none storage peer_manager block_processor sync validator-1}; do
    sleep 1.2
    before=$(served)
    HOLD=0 fresh "k-$a" parallel "${SERVER_EPS[@]}"
    node=$FRESH
    at="-"
    deadline=$((SECONDS + 60))
    while [ "$a" != none ] && ((SECONDS < deadline)); do
      # A status or pid read may time out on a loaded machine: try again
      # (under set -e a failed read would end the whole bench silently).
      cur=$(sync_field "$node" current_height || true)
      if [ -n "$cur" ] && [ "$cur" -ge $((kill_blocks / 3)) ]; then
        pid=$(alys_actor_pid "$node" "$a" || true)
        [ -n "$pid" ] || continue
        at=$cur
        kill -9 "$pid" || true
        break
      fi
      sleep 0.05
    done
    alys_wait_synced "$node" "$kill_blocks" 300 || echo "bench_sync: kill $a: no sync" >&2
    sleep 1.5
    after=$(served)
    printf '%-18s %10s %12s %14s\n' "$a" "$at" "$((after - before))" "$((after - before - kill_blocks))"
    figure "redownloaded_blocks.$a" "$((after - before - kill_blocks))"
    figure "served_blocks_after_kill.$a" "$((after - before))"
    figure "killed_at_height.$a" "$(num_or_null "$at")" "not killed (the reference run) or the sync never reached 1/3"
    alys_node_stop "$node"
  done
  for n in "${SERVERS[@]}"; do alys_node_stop "$n"; done
}

if [ "${BENCH_SYNC_ONLY:-}" = kills ]; then
  kill_section
  exit 0
fi

echo "== sync throughput: $blocks blocks x $txs txs from 3 local peers ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
CHAIN=$(chain_db "$blocks")
BLOCKS_NOW=$blocks
start_servers "$CHAIN"
printf '%-28s %8s %8s %10s %10s\n' run blocks seconds blocks/s tx/s
measure parallel parallel "${SERVER_EPS[@]}"
if [ "${BENCH_SYNC_ONLY:-}" = capped ]; then
  capped_section
  exit 0
fi
measure sequential sequential "${SERVER_EPS[@]}"
start_proxies
measure "parallel+${delay}ms" parallel "${PROXY_EPS[@]}"
measure "sequential+${delay}ms" sequential "${PROXY_EPS[@]}"
secs[import]=$(import_same_chain)
report "import (alysctl, same chain)" "${secs[import]}"
echo
r_pos=$(ratio sequential parallel)
r_delay=$(ratio "sequential+${delay}ms" "parallel+${delay}ms")
r_lat_p=$(ratio "parallel+${delay}ms" parallel)
r_lat_s=$(ratio "sequential+${delay}ms" sequential)
r_soi=$(ratio import parallel)
echo "parallel / sequential:               ${r_pos}x"
echo "parallel / sequential, ${delay} ms latency: ${r_delay}x"
echo "latency cost: parallel ${r_lat_p}x slower, sequential ${r_lat_s}x slower"
echo "sync over import (parallel sync tx/s / import tx/s, same chain): $r_soi"
figure parallel_over_sequential.sync_3peers "$r_pos"
figure "parallel_over_sequential.sync_3peers_delay${delay}ms" "$r_delay"
figure latency_cost.parallel "$r_lat_p"
figure latency_cost.sequential "$r_lat_s"
figure sync_over_import "$r_soi"
capped_section

# ---- peak RSS: a parallel sync through the proxies, all processes alive at the end
echo
echo "== peak RSS (VmHWM, KiB) after a parallel sync of $blocks blocks"
fresh f-rss parallel "${PROXY_EPS[@]}"
run_sync >/dev/null
printf '%-18s %10s %10s\n' process syncing serving
for a in supervisor storage peer_manager block_processor sync validator-1 validator-2; do
  if [ "$a" = supervisor ]; then
    p1=$(alys_node_pid "$FRESH"); p2=$(alys_node_pid "${SERVERS[0]}")
  else
    p1=$(alys_actor_pid "$FRESH" "$a"); p2=$(alys_actor_pid "${SERVERS[0]}" "$a")
  fi
  h1=-; h2=-
  [ -n "$p1" ] && h1=$(alys_hwm_kb "$p1")
  [ -n "$p2" ] && h2=$(alys_hwm_kb "$p2")
  printf '%-18s %10s %10s\n' "$a" "$h1" "$h2"
  figure "rss_kib_sync.syncing.$a.$blocks" "$(num_or_null "$h1")" "no $a process"
  figure "rss_kib_sync.serving.$a.$blocks" "$(num_or_null "$h2")" "no $a process"
done
hp=$(alys_hwm_kb "${PROXY_PIDS[0]}")
printf '%-18s %10s\n' alys-faultproxy "$hp"
figure "rss_kib_sync.alys-faultproxy.$blocks" "$(num_or_null "$hp")" "no proxy process"
alys_node_stop "$FRESH"
stop_proxies
for n in "${SERVERS[@]}"; do alys_node_stop "$n"; done

# ---- what CURVE costs: the same parallel sync over plaintext links
echo
echo "== CURVE cost: the parallel sync of $blocks blocks with [network] plaintext = true"
LINK=('plaintext=true')
start_servers "$CHAIN"
printf '%-28s %8s %8s %10s %10s\n' run blocks seconds blocks/s tx/s
measure parallel-plaintext parallel "${SERVER_EPS[@]}"
for n in "${SERVERS[@]}"; do alys_node_stop "$n"; done
LINK=()
r_curve=$(ratio parallel-plaintext parallel)
echo "CURVE / plaintext throughput (parallel, 3 peers): ${r_curve}x (1.00 = free; target >= 0.90)"
figure curve_over_plaintext.sync_3peers "$r_curve"

kill_section

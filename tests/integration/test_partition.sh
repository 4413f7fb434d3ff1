#!/usr/bin/env bash
# test_partition.sh: fork choice across a healed partition (TAP output).
#
# A generated chain with four authorities (alys-chaingen, short slots)
# whose last block's slot is about now. Four nodes, one authority each, all
# holding the chain (imported). A and B know each other; C and D know only
# an endpoint where nothing listens yet (a fault proxy to A, started at the
# heal). C and D may produce alone (min_sync_peers = 0), so during the
# partition three branches grow from the common chain: A and B's in half
# the slots, C's and D's in a quarter each. D allows reorgs of at most 2
# blocks (max_reorg_depth = 2). Checked:
#   (a) during the partition C and D produce on branches of their own;
#   (b) at the heal C adopts A's longer branch: one atomic reorg (storage's
#       alys_chain_reorgs_total, SyncActor's count in `alysctl status
#       --json` chain.reorgs), C's head becomes A's (same hash), and
#       production goes on on the one chain (A's head and C's agree again
#       after more blocks); A, on the longer branch, did no reorg; A is not
#       banned or penalised to ban at C for serving another branch;
#   (t) txs submitted to C during the partition (alys-loadgen) go into C's
#       branch; the reorg undoes those blocks and their txs return to C's
#       pool (alys_mempool_reorg_returned_total), and from there into a
#       block of the one chain: C's pool ends empty, every tx having left
#       it twice as included (C's branch, then the one chain);
#   (c) D refuses A's branch loudly: its fork point is more than 2 blocks
#       below D's head: chain.reorgs_refused >= 1 with the reason,
#       alys_chain_reorgs_refused_total >= 1, an error in D's log, and D
#       stays on its own branch (no reorg).
# Every wait is "eventually within T" (lib.sh); T is a number of slots of
# the chain's own slot duration (SLOT_MS) times ALYS_TIME_FACTOR, plus the
# node's configured start budgets where a process starts. Every node and
# proxy dials from 127.0.0.1, so inbound admission allows 64 clients per
# address (its own limit is serve_attack's subject, not this test's).
# Helpers run through check and alys_eventually (indirectly):
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ALYS_ROOT=${ALYS_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
export ALYS_BUILD=${ALYS_BUILD_DIR:-$ALYS_ROOT/build}
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

WORK=$(mktemp -d /tmp/alys-itf-XXXXXX)
tests=0 failures=0
SLOT_MS=${ALYS_IT_SLOT_MS:-1000}
BLOCKS=20
D_BRANCH=3 # blocks D produces alone: its fork is then deeper than its limit of 2

finish() {
  alys_cleanup
  if [ "$failures" -gt 0 ] || [ "${ALYS_IT_KEEP:-0}" = 1 ]; then
    echo "# nodes and logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

ok() { tests=$((tests + 1)); echo "ok $tests - $*"; }
not_ok() { tests=$((tests + 1)); failures=$((failures + 1)); echo "not ok $tests - $*"; }
diag() { echo "# $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

for b in supervisor alysctl chaingen producer/alys-producer faultproxy loadgen/alys-loadgen; do
  if [ ! -x "$(alys_bin $b)" ]; then
    echo "1..0 # SKIP $(alys_bin $b) is not built"
    exit 0
  fi
done

slots_s() { echo $(((SLOT_MS * $1 * ALYS_TIME_FACTOR + 999) / 1000)); }
height() { alys_head "$WORK/$1" head_height; }
head_hash() { alys_head "$WORK/$1" head_hash; }
metric() { local v; v=$(alys_metric "$WORK/$1" "$2" "${3:-}"); echo "${v:-0}"; }
# grows NODE METRIC FROM [MATCH]: the counter (the series whose line holds
# MATCH, e.g. an actor label) is above FROM now.
grows() { awk -v a="$(metric "$1" "$2" "${4:-}")" -v b="$3" 'BEGIN {exit !(a > b)}'; }
chain_field() { alys_ctl "$WORK/$1" status --json 2>/dev/null | jq -r ".chain.$2 // empty"; }
same_head() {
  local a b
  a=$(head_hash "$1")
  b=$(head_hash "$2")
  [ -n "$a" ] && [ "$a" = "$b" ]
}

echo "1..15"
now_s=$(date +%s)
gen_time=$((now_s - (BLOCKS * 21 / 20 + 2) * SLOT_MS / 1000))
"$(alys_bin chaingen)" --blocks "$BLOCKS" --txs-per-block 2 --accounts 50 --authorities 4 \
  --seed partition-it --slot-ms "$SLOT_MS" --genesis-time "$gen_time" --out "$WORK/chain" \
  > "$WORK/chain.txt" || { not_ok "chaingen"; exit 1; }
i=1
for n in A B C D; do
  sed -n "${i}p" "$WORK/chain/keys" > "$WORK/$n.key"
  chmod 600 "$WORK/$n.key"
  i=$((i + 1))
done

node_key() { mkdir -p "$WORK/$1/data" && alys_key_new "$WORK/$1/data/node.key"; }
KA=$(node_key A) KB=$(node_key B) KC=$(node_key C)
PA=$(alys_free_port) PB=$(alys_free_port) PC=$(alys_free_port) PD=$(alys_free_port)
# The proxies C and D will reach A through, keys made now (their endpoints
# go into C's and D's configs); nothing listens there until the heal.
XC=$(alys_free_port) XD=$(alys_free_port)
KXC=$(alys_key_new "$WORK/proxy-c.key") KXD=$(alys_key_new "$WORK/proxy-d.key")
node_config() { # NAME PORT PEER_ENDPOINT [key=value ...]
  local name=$1 port=$2 peer=$3
  shift 3
  mkdir -p "$WORK/$name"
  alys_node_config "$WORK/$name" "$WORK/$name/run" "$WORK/chain/genesis" "name=\"$name\"" \
    "listen=\"tcp://127.0.0.1:$port\"" "bootstrap_peers=[\"$peer\"]" \
    "metrics_port=$(alys_free_port)" 'validation_workers=1' \
    "log_level=\"${ALYS_IT_LOG_LEVEL:-info}\"" 'max_inbound_per_address=64' 'enabled=true' \
    "key_file=\"$WORK/$name.key\"" "$@"
}
node_config A "$PA" "alys://$KB@127.0.0.1:$PB"
node_config B "$PB" "alys://$KA@127.0.0.1:$PA"
cd_configs() { # EXTRA...: C's and D's configs
  node_config C "$PC" "alys://$KXC@127.0.0.1:$XC" 'min_sync_peers=0' "$@"
  node_config D "$PD" "alys://$KXD@127.0.0.1:$XD" 'min_sync_peers=0' 'max_reorg_depth=2' "$@"
}

# Every node holds the common chain before it produces: A imports it (it
# may not produce before B is up: min_sync_peers 1), B syncs it from A; C
# and D, which may produce alone, import it with their producers off and
# restart with them on.
import_into() {
  alys_node_wait_ready "$WORK/$1" &&
    alys_ctl "$WORK/$1" import "$WORK/chain/chain.export" > "$WORK/import-$1.log" 2>&1
}
cd_configs 'enabled=false'
alys_node_start "$WORK/A"
imported=0
import_into A && imported=$((imported + 1))
for n in B C D; do alys_node_start "$WORK/$n"; done
import_into C && imported=$((imported + 1))
import_into D && imported=$((imported + 1))
b_synced() { local h; h=$(height B); [ -n "$h" ] && [ "$h" -ge "$BLOCKS" ]; }
alys_eventually "$(alys_budget_s "$WORK/B" sync "$BLOCKS")" b_synced && imported=$((imported + 1))
check "every node holds the common chain ($BLOCKS blocks)" test "$imported" = 4
alys_node_stop "$WORK/C"
alys_node_stop "$WORK/D"
cd_configs
alys_node_start "$WORK/C"
alys_node_start "$WORK/D"
TXN=20
alys_node_wait_ready "$WORK/C"
"$(alys_bin loadgen/alys-loadgen)" --seed partition-it --accounts 50 --genesis "$WORK/chain/genesis" \
  --chain "$WORK/chain/chain.export" --rate 0 --count "$TXN" --submit "alys://$KC@127.0.0.1:$PC" \
  > /dev/null 2> "$WORK/loadgen.log"
accepted=$(sed -n 's/.* \([0-9]*\) accepted.*/\1/p' "$WORK/loadgen.log" | tail -n1)
check "C admits the $TXN txs alys-loadgen submits (accepted ${accepted:-none})" \
  test "${accepted:-0}" = "$TXN"

# ---- (a) the partition -------------------------------------------------------------

# The partition lasts until D has produced D_BRANCH blocks alone (a quarter
# of the slots): C has about as many, A and B twice as many together.
apart() {
  local a c d
  a=$(height A) c=$(height C) d=$(height D)
  grows C alys_producer_block_txs_total $((TXN - 1)) &&
    grows D alys_producer_blocks_total $((D_BRANCH - 1)) &&
    [ -n "$a" ] && [ -n "$c" ] && [ -n "$d" ] && [ "$a" -gt "$c" ] && [ "$a" -gt "$d" ]
}
check "C (with the $TXN txs) and D produce alone while A and B grow a longer branch" \
  alys_eventually "$(($(alys_budget_s "$WORK/D" ready) + $(slots_s $((8 * D_BRANCH + 8)))))" apart
diag "before the heal: A $(height A), B $(height B), C $(height C), D $(height D)" \
  "(common chain $BLOCKS)"
apart_heads() { ! same_head A C && ! same_head A D; }
check "C's and D's heads are not A's" apart_heads

# ---- (b) the heal: C adopts the longer branch --------------------------------------

start_proxy() { # PORT KEYFILE LOG
  "$(alys_bin faultproxy)" --listen "tcp://127.0.0.1:$1" --upstream "alys://$KA@127.0.0.1:$PA" \
    --key "$2" > "$3" 2>&1 &
  ALYS_PIDS+=($!)
}
start_proxy "$XC" "$WORK/proxy-c.key" "$WORK/proxy-c.log"
start_proxy "$XD" "$WORK/proxy-d.key" "$WORK/proxy-d.log"
c_follows_a() { same_head A C; }
check "C converges on A's head after the heal" \
  alys_eventually "$(($(alys_budget_s "$WORK/C" ready) + $(slots_s 12)))" c_follows_a
c_reorged() { [ "$(chain_field C reorgs)" -ge 1 ] 2> /dev/null; }
check "C's status counts the reorg (chain.reorgs)" c_reorged
# Metrics reach the collector about once a second.
check "C's storage counted one atomic reorg (alys_chain_reorgs_total)" \
  alys_eventually "$(slots_s 4)" grows C alys_chain_reorgs_total 0 'actor="storage"'
check "C logged the reorg with its depth" grep -q 'reorg: .*depth\|fork choice: reorg to' \
  "$WORK/C/node.log"
a_no_reorg() { [ "$(metric A alys_chain_reorgs_total)" = 0 ]; }
check "A, on the longer branch, did no reorg" a_no_reorg
not_banned() {
  ! alys_ctl "$WORK/C" peers --json 2>/dev/null | jq -e '.peers[]? | select(.state == "banned")' \
    > /dev/null
}
check "nobody is banned at C for serving another branch" not_banned
pc=$(metric C alys_producer_blocks_total)
c_produces_on() { grows C alys_producer_blocks_total "$pc" && same_head A C; }
check "C produces again on the one chain (a block of C's, heads agree)" \
  alys_eventually "$(slots_s 16)" c_produces_on

# ---- (t) the txs of C's undone blocks ----------------------------------------------

returned() { grows C alys_mempool_reorg_returned_total $((TXN - 1)) 'actor="storage"'; }
check "the $TXN txs of C's undone blocks return to C's pool" alys_eventually "$(slots_s 4)" returned
pool_empty() {
  local st
  st=$(alys_ctl "$WORK/C" tx status --json 2> /dev/null)
  [ "$(jq -r '.txs // empty' <<< "$st")" = 0 ] &&
    [ "$(jq -r '.removed_included // 0' <<< "$st")" -ge $((2 * TXN)) ] && same_head A C
}
check "they go into the one chain (C's pool ends empty, each tx included twice)" \
  alys_eventually "$(slots_s 16)" pool_empty

# ---- (c) D refuses a reorg deeper than its max_reorg_depth --------------------------

d_refused() { [ "$(chain_field D reorgs_refused)" -ge 1 ] 2> /dev/null; }
check "D refuses A's branch (chain.reorgs_refused), deeper than max_reorg_depth 2" \
  alys_eventually "$(($(alys_budget_s "$WORK/D" ready) + $(slots_s 12)))" d_refused
d_loud() {
  grows D alys_chain_reorgs_refused_total 0 'actor="sync"' &&
    grep -q 'REFUSED a reorg.*max_reorg_depth is 2' "$WORK/D/node.log" &&
    chain_field D last_reorg_refused | grep -q 'max_reorg_depth is 2' &&
    [ "$(chain_field D reorgs)" = 0 ]
}
check "D's refusal is loud (metric, error log, status) and D did no reorg" \
  alys_eventually "$(slots_s 4)" d_loud
diag "after: A $(height A), B $(height B), C $(height C), D $(height D);" \
  "C: $(chain_field C last_reorg); D: $(chain_field D last_reorg_refused)"
for n in D C B A; do alys_node_stop "$WORK/$n"; done
exit $((failures > 0))

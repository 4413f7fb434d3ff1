#!/usr/bin/env bash
# test_live.sh: the live chain between real nodes on loopback (TAP output).
#
# A generated chain (alys-chaingen, one authority, short slots) whose genesis
# time puts its last block's slot just before now. Node A imports it and
# runs alys-producer with the authority's key ([producer] enabled, key_file);
# node B starts fresh. Each has the other in bootstrap_peers. Checked:
#   (a) A produces blocks in its slots (alys_producer_blocks_total grows),
#       B receives them as NewBlock pushes (alys_gossip_blocks_received_total)
#       and follows: B's head equals A's head within a few slots;
#   (b) kill -9 of A's producer, then of A's storage, at moments spread over
#       a slot: production resumes (the produced counter grows again) and the
#       fence holds: across every incarnation of the producer, no slot was
#       signed for two different blocks (the producer logs each signature
#       with its slot and hash), and A and B agree on the chain;
#   (t) txs: alys-loadgen submits TXN valid transfers to B as a peer would;
#       B admits and gossips them to A; A's producer puts them in its blocks
#       (alys_producer_block_txs_total reaches TXN), and B's pool lets each
#       go when A's block including it commits on B (removed_included), so
#       both pools end empty and B still follows A;
#   (a') B stopped while A produces more than PMG_MAX_GAP blocks, then
#       restarted: it catches up (range sync) and follows by gossip again;
#   (c) a block pushed to B that fails the stateless checks (it_pusher: a
#       peer "evil" pushing an unsigned block on B's head) is charged to
#       its pusher and counted dropped;
#   (d) two nodes, one authority each (a second chain with two
#       authorities): both produce in their own slots and their heads
#       converge on one chain;
#   and first of all, the supervisor's preflight refuses a key file others
#   can read, and a key that is not a genesis authority (exit 78).
# Every wait is "eventually within T" (lib.sh); T here is a number of slots
# of the chain's own slot duration (SLOT_MS) times ALYS_TIME_FACTOR, plus the
# node's configured start/restart budgets where a process (re)starts.
# Helpers run through check and alys_eventually (indirectly):
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ALYS_ROOT=${ALYS_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
export ALYS_BUILD=${ALYS_BUILD_DIR:-$ALYS_ROOT/build}
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

WORK=$(mktemp -d /tmp/alys-itl-XXXXXX)
tests=0 failures=0
SLOT_MS=${ALYS_IT_SLOT_MS:-1000}
PMG_GAP=8 # PMG_MAX_GAP (actors/peer_manager/pm_gossip.h): farther ahead is range sync's
BLOCKS=40

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

for b in supervisor alysctl chaingen producer/alys-producer loadgen/alys-loadgen; do
  if [ ! -x "$(alys_bin $b)" ]; then
    echo "1..0 # SKIP $(alys_bin $b) is not built"
    exit 0
  fi
done

# slots_s N: N slots in seconds (rounded up), times ALYS_TIME_FACTOR.
slots_s() { echo $(((SLOT_MS * $1 * ALYS_TIME_FACTOR + 999) / 1000)); }

height() { alys_head "$WORK/$1" head_height; }
head_hash() { alys_head "$WORK/$1" head_hash; }
metric() { local v; v=$(alys_metric "$WORK/$1" "$2" "${3:-}"); echo "${v:-0}"; }

# grows NODE METRIC FROM [LABEL_MATCH]: the counter is above FROM now.
grows() { awk -v a="$(metric "$1" "$2" "${4:-}")" -v b="$3" 'BEGIN {exit !(a > b)}'; }
# above NODE H: the node's head is above height H.
above() { local h; h=$(height "$1"); [ -n "$h" ] && [ "$h" -gt "$2" ]; }
# follows: B's head is A's head (same height and hash) now.
follows() {
  local ha hb
  ha=$(head_hash A)
  hb=$(head_hash B)
  [ -n "$ha" ] && [ "$ha" = "$hb" ]
}

# pool NODE FIELD: a field of `alysctl tx status --json` on NODE.
pool() { alys_ctl "$WORK/$1" tx status --json 2>/dev/null | jq -r ".$2 // empty" 2>/dev/null; }
pool_is() { [ "$(pool "$1" "$2")" = "$3" ]; }
# metric_ge NODE NAME MIN: the counter is >= MIN now.
metric_ge() { awk -v v="$(metric "$1" "$2")" -v m="$3" 'BEGIN {exit !(v + 0 >= m + 0)}'; }

# fence_held: every "slot S: block height H hash X signed" line of A's
# producers (all incarnations) names one hash per slot.
fence_held() {
  grep -ho 'slot [0-9]*: block height [0-9]* hash [0-9a-f]* signed' "$WORK/A/node.log" |
    awk '{s = $2; h = $7; if ((s in seen) && seen[s] != h) {bad = 1; print "# slot " s " signed twice: " seen[s] " " h} seen[s] = h}
         END {exit bad}'
}

# ---- the chain and the nodes -----------------------------------------------------

echo "1..29"
now_s=$(date +%s)
# The last block's slot lands about now: chaingen leaves 1 slot in 20
# empty, so BLOCKS blocks span at most BLOCKS * 21 / 20 slots.
gen_time=$((now_s - (BLOCKS * 21 / 20 + 2) * SLOT_MS / 1000))
"$(alys_bin chaingen)" --blocks "$BLOCKS" --txs-per-block 2 --accounts 50 --authorities 1 \
  --seed live-it --slot-ms "$SLOT_MS" --genesis-time "$gen_time" --out "$WORK/chain" \
  > "$WORK/chain.txt" || { not_ok "chaingen"; exit 1; }
head -n 1 "$WORK/chain/keys" > "$WORK/a.key"
chmod 600 "$WORK/a.key"

# node_key NAME: the node's key made before its config (each node names the
# other in bootstrap_peers, alys://KEY@...); echoes the key.
node_key() { mkdir -p "$WORK/$1/data" && alys_key_new "$WORK/$1/data/node.key"; }
KA=$(node_key A) KB=$(node_key B)
PA=$(alys_free_port) PB=$(alys_free_port)
node_config() { # NAME PORT PEER_ENDPOINT [key=value ...]
  local name=$1 port=$2 peer=$3
  shift 3
  mkdir -p "$WORK/$name"
  alys_node_config "$WORK/$name" "$WORK/$name/run" "$WORK/chain/genesis" "name=\"$name\"" \
    "listen=\"tcp://127.0.0.1:$port\"" "bootstrap_peers=[\"$peer\"]" \
    "metrics_port=$(alys_free_port)" 'validation_workers=1' 'log_level="info"' "$@"
}

# (c) first: the preflight refuses bad keys before anything starts.
node_config X "$(alys_free_port)" "alys://$KA@127.0.0.1:$PA" 'enabled=true' "key_file=\"$WORK/x.key\""
head -n 1 "$WORK/chain/keys" > "$WORK/x.key"
chmod 644 "$WORK/x.key"
"$(alys_bin supervisor)" --config "$WORK/X/node.toml" > "$WORK/X/node.log" 2>&1
rc=$?
check "preflight refuses a key file others can read (exit $rc)" \
  test "$rc" = 78 -a -n "$(grep -l 'producer.key_file' "$WORK/X/node.log")"
# Not an authority: a valid secret key that is not in the genesis.
echo 0000000000000000000000000000000000000000000000000000000000000001 > "$WORK/x.key"
chmod 600 "$WORK/x.key"
"$(alys_bin supervisor)" --config "$WORK/X/node.toml" > "$WORK/X/node2.log" 2>&1
rc=$?
check "preflight refuses a key that is not a genesis authority (exit $rc)" \
  test "$rc" = 78 -a -n "$(grep -l 'not one of the genesis' "$WORK/X/node2.log")"

# A imports the chain with its producer off, then starts producing: it is
# the chain's only authority and may produce alone (min_sync_peers = 0, for
# (a') where B is down), so a producer running before the import would
# build its own chain from genesis.
node_config A "$PA" "alys://$KB@127.0.0.1:$PB"
node_config B "$PB" "alys://$KA@127.0.0.1:$PA"
alys_node_start "$WORK/A"
import_chain() { alys_ctl "$WORK/A" import "$WORK/chain/chain.export" > "$WORK/import.log" 2>&1; }
if alys_node_wait_ready "$WORK/A" && import_chain; then ok "A imports the chain"; else not_ok "A imports the chain"; fi
alys_node_stop "$WORK/A"
node_config A "$PA" "alys://$KB@127.0.0.1:$PB" 'enabled=true' "key_file=\"$WORK/a.key\"" 'min_sync_peers=0' \
  'max_reorg_depth=16'
alys_node_start "$WORK/A"
check "A starts with its producer" alys_node_wait_ready "$WORK/A"
alys_node_start "$WORK/B"
check "B starts fresh" alys_node_wait_ready "$WORK/B"

# ---- (a) production and gossip ---------------------------------------------------

T_SYNC=$(($(alys_budget_s "$WORK/B" sync "$BLOCKS") + $(slots_s 10)))
check "A produces blocks in its slots" alys_eventually "$T_SYNC" above A "$BLOCKS"
check "B receives pushed blocks (NewBlock)" \
  alys_eventually "$T_SYNC" grows B alys_gossip_blocks_received_total 0
h0=$(height A)
check "A keeps producing (head above $h0 within 5 slots)" \
  alys_eventually "$(slots_s 5)" above A "$((h0 + 2))"
check "B follows A: equal heads within a few slots" alys_eventually "$(slots_s 5)" follows
producer_status() {
  alys_ctl "$WORK/A" status --json 2>/dev/null |
    jq -e '.producer.enabled == true and .producer.authority_index == 0 and
           .producer.produced > 0 and .producer.signed_up_to_slot > 0' > /dev/null 2>&1
}
# declared: a counter exported before its first event (its value may be 0).
declared() { [ -n "$(alys_metric "$WORK/$1" "$2" "${3:-}")" ]; }
producer_declared() {
  declared A alys_producer_missed_slots_total 'reason="fence_refused"' &&
    declared A alys_producer_block_txs_total
}
check "A exports the producer's counters from the start (a miss reason never seen, block txs)" \
  alys_eventually "$(slots_s 3)" producer_declared
check "alysctl status --json shows the producer's counters" \
  alys_eventually "$(slots_s 5)" producer_status
chain_status() {
  alys_ctl "$WORK/A" status --json 2>/dev/null |
    jq -e --argjson b "$BLOCKS" '.chain.head_height > $b and (.chain.head_hash | length) == 64 and
           .chain.finalized_or_reorg_limit_height == .chain.head_height - 16' > /dev/null 2>&1
}
check "alysctl status --json shows the chain: head and reorg limit (head - max_reorg_depth)" \
  chain_status
diag "A: head $(height A), produced $(metric A alys_producer_blocks_total)," \
  "missed $(metric A alys_producer_missed_slots_total); B: head $(height B)," \
  "gossip received $(metric B alys_gossip_blocks_received_total)"

# ---- (t) txs submitted to B end up in A's blocks ------------------------------------

TXN=200
LG=$(alys_bin loadgen/alys-loadgen)
"$LG" --seed live-it --accounts 50 --genesis "$WORK/chain/genesis" --chain "$WORK/chain/chain.export"   --rate 0 --count "$TXN" --submit "alys://$KB@127.0.0.1:$PB" > /dev/null 2> "$WORK/loadgen.log"
accepted=$(sed -n 's/.* \([0-9]*\) accepted.*/\1/p' "$WORK/loadgen.log" | tail -n1)
check "B admits the $TXN txs alys-loadgen submits (accepted ${accepted:-none})" \
  test "${accepted:-0}" = "$TXN"
check "A's producer puts all $TXN in its blocks" \
  alys_eventually "$(($(alys_budget_s "$WORK/B" request) + $(slots_s 10)))" \
  metric_ge A alys_producer_block_txs_total "$TXN"
check "B's pool lets them go as A's blocks commit on B (removed_included $TXN)" \
  alys_eventually "$(slots_s 5)" pool_is B removed_included "$TXN"
check "both pools end empty" alys_eventually "$(slots_s 5)" pool_is A txs 0
check "B still follows A after blocks with txs" alys_eventually "$(slots_s 5)" follows
diag "A: $(grep -c 'txs in the block' "$WORK/A/node.log") blocks built with txs;" \
  "last: $(grep -o '[0-9]* of [0-9]* txs in the block' "$WORK/A/node.log" | tail -n1)"

# ---- (a') behind by more than a few blocks: range sync, then gossip again -----------

alys_node_stop "$WORK/B"
hb=$(height A)
check "A produces on while B is down ($((PMG_GAP + 4)) blocks)" \
  alys_eventually "$(slots_s $((2 * (PMG_GAP + 4))))" above A "$((hb + PMG_GAP + 4))"
g0=$(metric B alys_gossip_blocks_received_total)
alys_node_start "$WORK/B"
check "B, restarted behind, catches up and follows A again" \
  alys_eventually "$(($(alys_budget_s "$WORK/B" ready) + $(alys_budget_s "$WORK/B" sync 64) + $(slots_s 5)))" follows
check "B follows through pushed blocks again" \
  alys_eventually "$(slots_s 5)" grows B alys_gossip_blocks_received_total "$g0"

# ---- (c) a pushed invalid block costs its pusher ------------------------------------

PUSHER=${ALYS_IT_PUSHER:-$ALYS_BUILD/tests/integration/it_pusher}
KEVIL=$(alys_key_new "$WORK/evil.key")
charged() { grep -q "peer $KEVIL pushed an invalid block" "$WORK/B/node.log"; }
if [ -x "$PUSHER" ]; then
  "$PUSHER" "$WORK/chain/genesis" "alys://$KB@127.0.0.1:$PB" "$WORK/evil.key" > "$WORK/pusher.log" 2>&1 ||
    diag "it_pusher: $(cat "$WORK/pusher.log")"
  check "B charges the pusher of an unsigned block" \
    alys_eventually "$(alys_budget_s "$WORK/B" request)" charged
  check "B counts it dropped as invalid" alys_eventually "$(alys_budget_s "$WORK/B" request)" \
    grows B alys_gossip_blocks_dropped_total 0 'reason="invalid"'
else
  not_ok "B charges the pusher of an unsigned block # it_pusher not built"
  not_ok "B counts it dropped as invalid # it_pusher not built"
fi

# ---- (b) kill -9 of the producer, then storage, at moments spread over a slot ------

T_RESTART=$(($(alys_budget_s "$WORK/A" restart) + $(slots_s 4)))
kill_and_resume() { # ACTOR ROUND
  local pid h
  pid=$(alys_actor_pid "$WORK/A" "$1")
  [ -n "$pid" ] || return 1
  # A moment inside the slot: (ROUND * 37 % 100) percent of it.
  sleep "$(awk -v r="$2" -v s="$SLOT_MS" 'BEGIN {printf "%.3f", (r * 37 % 100) * s / 100000}')"
  kill -9 "$pid" 2>/dev/null || return 1
  h=$(height A)
  h=${h:-0}
  alys_eventually "$T_RESTART" above A "$((h + 1))"
}
resumed=0
for r in 1 2 3 4; do kill_and_resume producer "$r" && resumed=$((resumed + 1)); done
check "production resumes after each kill -9 of the producer ($resumed of 4)" test "$resumed" = 4
resumed=0
for r in 1 2; do kill_and_resume storage "$r" && resumed=$((resumed + 1)); done
check "production resumes after each kill -9 of storage ($resumed of 2)" test "$resumed" = 2
check "the fence held: no slot signed for two blocks" fence_held
check "B still follows A (same head hash)" alys_eventually "$(slots_s 8)" follows

alys_node_stop "$WORK/B"
alys_node_stop "$WORK/A"

# ---- (d) two authorities, each producing in its own slots, one chain ----------------

now_s=$(date +%s)
gen_time=$((now_s - (BLOCKS * 21 / 20 + 2) * SLOT_MS / 1000))
"$(alys_bin chaingen)" --blocks "$BLOCKS" --txs-per-block 2 --accounts 50 --authorities 2 \
  --seed live-it-2 --slot-ms "$SLOT_MS" --genesis-time "$gen_time" --out "$WORK/chain2" \
  > "$WORK/chain2.txt" || { not_ok "chaingen (two authorities)"; exit 1; }
sed -n 1p "$WORK/chain2/keys" > "$WORK/c.key"
sed -n 2p "$WORK/chain2/keys" > "$WORK/d.key"
chmod 600 "$WORK/c.key" "$WORK/d.key"
PC=$(alys_free_port) PD=$(alys_free_port)
KC=$(node_key C) KD=$(node_key D)
node_config2() { # NAME PORT PEER_ENDPOINT KEY [key=value ...]
  mkdir -p "$WORK/$1"
  alys_node_config "$WORK/$1" "$WORK/$1/run" "$WORK/chain2/genesis" "name=\"$1\"" \
    "listen=\"tcp://127.0.0.1:$2\"" "bootstrap_peers=[\"$3\"]" \
    "metrics_port=$(alys_free_port)" 'validation_workers=1' 'log_level="info"' \
    'enabled=true' "key_file=\"$4\"" "${@:5}"
}
# C holds the chain and may produce alone (min_sync_peers = 0); D starts
# only once C has produced on the imported chain: an import goes straight to
# storage, and C's peer manager, which polls its head, could otherwise still
# tell D height 0 (D, with no fork choice yet, would then build on genesis).
node_config2 C "$PC" "alys://$KD@127.0.0.1:$PD" "$WORK/c.key" 'min_sync_peers=0'
node_config2 D "$PD" "alys://$KC@127.0.0.1:$PC" "$WORK/d.key"
alys_node_start "$WORK/C"
alys_node_wait_ready "$WORK/C" && alys_ctl "$WORK/C" import "$WORK/chain2/chain.export" \
  > "$WORK/import2.log" 2>&1
c_produced() { grows C alys_producer_blocks_total 0; }
check "C produces on the imported chain" alys_eventually "$(slots_s 6)" c_produced
alys_node_start "$WORK/D"
alys_node_wait_ready "$WORK/D"
both_produce() { grows C alys_producer_blocks_total 2 && grows D alys_producer_blocks_total 2; }
check "two authorities both produce (3 blocks each) on one chain" \
  alys_eventually "$(($(alys_budget_s "$WORK/D" sync "$BLOCKS") + $(slots_s 12)))" both_produce
same_head() {
  local hc hd
  hc=$(alys_head "$WORK/C" head_hash)
  hd=$(alys_head "$WORK/D" head_hash)
  [ -n "$hc" ] && [ "$hc" = "$hd" ]
}
check "their heads converge (same hash) within a few slots" alys_eventually "$(slots_s 6)" same_head
diag "C: head $(alys_head "$WORK/C" head_height), produced $(metric C alys_producer_blocks_total);" \
  "D: head $(alys_head "$WORK/D" head_height), produced $(metric D alys_producer_blocks_total)"
alys_node_stop "$WORK/D"
alys_node_stop "$WORK/C"
exit $((failures > 0))

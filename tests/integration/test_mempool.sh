#!/usr/bin/env bash
# test_mempool.sh: transactions between real nodes on loopback (TAP output).
#
# Node A holds a generated chain (alys-chaingen, 10 accounts, imported with
# alysctl import) and serves it; node B syncs it from A. Then:
#   - `alysctl tx send` to A (a transfer signed with account 0's key, which
#     alys-loadgen --export-key writes) is accepted, and appears in B's
#     mempool through gossip (`alysctl tx status --json` on B);
#   - invalid txs are refused by A with their reason (bad signature via
#     `alysctl tx submit`, nonce too low, balance too low) and not gossiped:
#     A relayed exactly one tx and B never saw another;
#   - a hostile client (alys-loadgen --submit, as fast as it can, one
#     message after another) is rate-limited: RATE_LIMITED answers, A's
#     alys_tx_gossip_dropped_total{reason="rate_limited"} grows, A's peer
#     manager keeps running; one sending badly signed txs is charged for
#     them: it gets fewer of its messages answered than an honest flood.
# Every wait is "eventually within T" (lib.sh), T from the node's config
# timeouts (alys_budget_s) times ALYS_TIME_FACTOR.
# Nodes live under /tmp/alys-itm-XXXXXX (ipc paths <= 107 bytes), kept on
# failure or with ALYS_IT_KEEP=1. Every process is stopped on exit (trap).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ALYS_ROOT=${ALYS_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
export ALYS_BUILD=${ALYS_BUILD_DIR:-$ALYS_ROOT/build}
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

WORK=$(mktemp -d /tmp/alys-itm-XXXXXX)
tests=0 failures=0
SEED=mempool-it

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

LG=$ALYS_BUILD/actors/loadgen/alys-loadgen
for b in "$(alys_bin supervisor)" "$(alys_bin alysctl)" "$(alys_bin chaingen)" "$LG"; do
  if [ ! -x "$b" ]; then
    echo "1..0 # SKIP $b is not built"
    exit 0
  fi
done

# ---- helpers -------------------------------------------------------------------------

EP_A=""
new_node() {
  local name=$1 port mport
  port=$(alys_free_port)
  mport=$(alys_free_port)
  alys_node_config "$WORK/$name" "$WORK/$name/run" "$WORK/chain/genesis" "name=\"$name\"" \
    "listen=\"tcp://127.0.0.1:$port\"" "bootstrap_peers=$2" "metrics_port=$mport" \
    "validation_workers=1" 'log_level="info"' || return 1
  # Its alys://KEY@127.0.0.1:PORT (the key is made now, as at its start).
  printf -v "EP_$name" '%s' "$(alys_node_endpoint "$WORK/$name")"
}

start_ready() {
  alys_node_start "$WORK/$1"
  alys_node_wait_ready "$WORK/$1"
}

# pool NODE FIELD: a field of `alysctl tx status --json` on NODE.
pool() { alys_ctl "$WORK/$1" tx status --json 2>/dev/null | jq -r ".$2 // empty" 2>/dev/null; }
pool_is() { [ "$(pool "$1" "$2")" = "$3" ]; }
# metric_ge NODE NAME MATCH MIN: the metric is >= MIN now.
metric_ge() {
  local v
  v=$(alys_metric "$WORK/$1" "$2" "$3")
  awk -v v="$v" -v m="$4" 'BEGIN {exit !(v != "" && v + 0 >= m + 0)}'
}
metric_is() {
  local v
  v=$(alys_metric "$WORK/$1" "$2" "$3")
  awk -v v="$v" -v m="$4" 'BEGIN {exit !(v != "" && v + 0 == m + 0)}'
}

# send NODE ARGS...: alysctl tx send; its output in $WORK/send.out.
send() { local n=$1; shift; alys_ctl "$WORK/$n" tx send "$@" > "$WORK/send.out" 2>&1; }
said() { grep -q "$1" "$WORK/send.out" || { diag "got: $(cat "$WORK/send.out")"; return 1; }; }

# flood FILE ARGS...: alys-loadgen --submit to A, as fast as it can; its
# tally (stderr) in FILE.
flood() {
  local out=$1; shift
  "$LG" --seed "$SEED" --accounts 10 --genesis "$WORK/chain/genesis" \
    --submit "$EP_A" --rate 0 "$@" > /dev/null 2> "$out"
}
# tally FILE FIELD: "rate-limited messages N" etc. from a loadgen summary.
tally() { sed -n "s/.*$2 \([0-9]*\).*/\1/p" "$1" | tail -n1; }

# ---- chain and nodes -----------------------------------------------------------------

alys_chain "$WORK/chain" 40 4 "$SEED" --accounts 10 || { not_ok "chaingen"; exit 1; }
HEIGHT=$(alys_chain_value "$WORK/chain" head_height)

new_node A '[]'
check "node A starts" start_ready A
import_chain() { alys_ctl "$WORK/A" import "$WORK/chain/chain.export" > "$WORK/import.log" 2>&1; }
check "A imports the chain (alysctl import)" import_chain
new_node B "[\"$EP_A\"]"
check "node B starts with A as its peer" start_ready B
check "B syncs A's chain" alys_wait_synced "$WORK/B" "$HEIGHT"

PUB1=$("$LG" --seed "$SEED" --accounts 10 --export-key 1 --out "$WORK/key1")
"$LG" --seed "$SEED" --accounts 10 --export-key 0 --out "$WORK/key0" > /dev/null

# ---- a valid tx: accepted, gossiped ----------------------------------------------------

T=$(($(alys_budget_s "$WORK/B" request) + 2))
check "A: alysctl tx send is accepted" send A --to "$PUB1" --amount 5 --fee 3 --key-file "$WORK/key0"
check "  ... and says so" said '^accepted '
check "A holds it" pool_is A txs 1
check "B holds it through gossip" alys_eventually "$T" pool_is B txs 1
# Metrics reach the supervisor's collector within a flush or two (1 s each).
check "A counted one relayed copy" alys_eventually "$T" metric_is A alys_tx_gossip_relayed_total "" 1

# ---- invalid txs: refused with the reason, not gossiped -------------------------------

# Account 0 sent txs in the chain (chaingen's senders go round the 10
# accounts), so nonce 0 is below its account nonce.
NONCE=0
BAD=$("$LG" --seed "$SEED" --accounts 10 --genesis "$WORK/chain/genesis" --rate 0 --count 1 \
      --rng-seed 7 2>/dev/null | head -n1)
# Flip the last hex digit: the signature no longer verifies.
last=${BAD: -1}
flip=$([ "$last" = 0 ] && echo 1 || echo 0)
BAD="${BAD%?}$flip"
alys_ctl "$WORK/A" tx submit "$BAD" > "$WORK/send.out" 2>&1
check "A: a badly signed tx is refused: bad_signature" said 'refused: bad_signature'
send A --to "$PUB1" --amount 5 --fee 3 --nonce "$NONCE" --key-file "$WORK/key0"
check "A: a tx below the account's nonce is refused: nonce_too_low" said 'refused: nonce_too_low'
send A --to "$PUB1" --amount 1000000000000000000 --fee 1 --key-file "$WORK/key1"
check "A: a tx the balance cannot pay is refused: insufficient_balance" \
  said 'refused: insufficient_balance'
not_gossiped() {
  metric_is A alys_tx_gossip_relayed_total "" 1 && pool_is B txs 1 && [ "$(pool B refused)" = "{}" ]
}
check "none of them was gossiped (A relayed one tx, B holds one and refused none)" \
  alys_holds 1 not_gossiped

# ---- a hostile client -----------------------------------------------------------------

PM_PID=$(alys_actor_pid "$WORK/A" peer_manager)
flood "$WORK/honest.txt" --batch 64 --count 6400
diag "honest flood: $(tail -n1 "$WORK/honest.txt")"
check "a flood of SubmitTx is rate-limited" \
  test "$(tally "$WORK/honest.txt" 'rate-limited messages')" -gt 0
check "A counts the dropped txs (rate_limited)" alys_eventually "$T" \
  metric_ge A alys_tx_gossip_dropped_total 'reason="rate_limited"' 1
flood "$WORK/hostile.txt" --batch 64 --count 6400 --bad-signatures
diag "hostile flood: $(tail -n1 "$WORK/hostile.txt")"
good_ans=$(( $(sed -n 's/.* in \([0-9]*\) messages.*/\1/p' "$WORK/honest.txt") - $(tally "$WORK/honest.txt" 'rate-limited messages') ))
bad_ans=$(( $(sed -n 's/.* in \([0-9]*\) messages.*/\1/p' "$WORK/hostile.txt") - $(tally "$WORK/hostile.txt" 'rate-limited messages') ))
check "bad signatures are charged: $bad_ans messages answered vs $good_ans for an honest flood" \
  test "$bad_ans" -lt "$good_ans"
check "A's peer manager survived the floods (same pid)" \
  test "$(alys_actor_pid "$WORK/A" peer_manager)" = "$PM_PID"

echo "1..$tests"
[ "$failures" -eq 0 ]

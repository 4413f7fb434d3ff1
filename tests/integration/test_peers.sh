#!/usr/bin/env bash
# test_peers.sh: the peer layer between real nodes on loopback (TAP output).
#
# Node A holds a generated chain (alys-chaingen, 2,000 blocks, imported with
# alysctl import) and serves it; node C has another genesis; proxy P is an
# alys-faultproxy in front of A that rewrites the genesis hash of A's Status.
# Node B starts fresh with A, C and P in bootstrap_peers. Checked:
#   - `alysctl peers --json` on B shows A connected with A's height, B syncs
#     A's chain through the peer manager;
#   - C is refused at the handshake and shown banned for its genesis (on B),
#     and B shows as refused on C (inbound);
#   - P (wrong_genesis) is refused and banned, A is not penalised;
#   - the bans survive a kill -9 of B's peer manager: listed again after its
#     restart with the same expiry (loaded from StorageActor, not re-made);
#   - identity: every node has a key (a 0600 file under data_dir, printed
#     by `alysctl key show`); B lists A under A's key; P is a peer with its
#     own key (CURVE on both sides); node D dialling A's address with the
#     wrong key, and node E with [network] plaintext = true dialling A's
#     right endpoint, never get A connected while B (honest, keyed) does.
# Every wait is "eventually within T" (lib.sh), T from the node's config
# timeouts (alys_budget_s) times ALYS_TIME_FACTOR.
# Nodes live under /tmp/alys-itp-XXXXXX (ipc paths <= 107 bytes), kept on
# failure or with ALYS_IT_KEEP=1. Every process is stopped on exit (trap).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ALYS_ROOT=${ALYS_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
export ALYS_BUILD=${ALYS_BUILD_DIR:-$ALYS_ROOT/build}
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

WORK=$(mktemp -d /tmp/alys-itp-XXXXXX)
tests=0 failures=0

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

for b in supervisor alysctl chaingen faultproxy; do
  if [ ! -x "$(alys_bin $b)" ]; then
    echo "1..0 # SKIP $(alys_bin $b) is not built"
    exit 0
  fi
done

# ---- helpers -------------------------------------------------------------------------

# peer_field NODE ENDPOINT FIELD: FIELD of the peers entry with that endpoint.
peer_field() {
  alys_ctl "$1" peers --json 2>/dev/null |
    jq -r --arg ep "$2" --arg f "$3" '[.peers[] | select(.endpoint == $ep)][0][$f] // empty' 2>/dev/null
}

# peer_matches NODE ENDPOINT FIELD REGEX: the field matches now.
peer_matches() { [[ $(peer_field "$1" "$2" "$3") =~ $4 ]]; }

# wait_peer NODE ENDPOINT FIELD REGEX: until the field matches, within T:
# the node's start and a handshake (one request timeout), alys_budget_s.
wait_peer() {
  local t
  t=$(($(alys_budget_s "$1" ready) + $(alys_budget_s "$1" request)))
  alys_eventually "$t" peer_matches "$@" && return 0
  diag "$1: $2 $3 = '$(peer_field "$1" "$2" "$3")', wanted /$4/"
  return 1
}

# new_node NAME GENESIS BOOTSTRAP_JSON [key=value ...]: configure WORK/NAME
# (ports picked here); sets EP_NAME to its alys:// endpoint (its key made
# now by `alysctl key show`, as a script hands out a node's endpoint).
EP_A="" EP_B="" EP_C=""
new_node() {
  local name=$1 port mport ep
  port=$(alys_free_port)
  mport=$(alys_free_port)
  alys_node_config "$WORK/$name" "$WORK/$name/run" "$2" "name=\"$name\"" \
    "listen=\"tcp://127.0.0.1:$port\"" "bootstrap_peers=$3" "metrics_port=$mport" \
    "validation_workers=1" 'log_level="info"' "${@:4}"
  ep=$(alys_node_endpoint "$WORK/$name")
  printf -v "EP_$name" '%s' "$ep"
}

# key_of ENDPOINT: the key (hex) of an alys:// endpoint.
key_of() { local k=${1#alys://}; echo "${k%@*}"; }

# key_file_private NODE: the node's key file exists with mode 600.
key_file_private() { [ "$(stat -c %a "$1/data/node.key" 2>/dev/null)" = 600 ]; }

# key_show_consistent NODE EP: `key show` prints the key of EP and EP.
key_show_consistent() {
  local out
  out=$(alys_ctl "$1" key show) || return 1
  grep -q "^key  *$(key_of "$2")\$" <<< "$out" && grep -q "^endpoint  *$2\$" <<< "$out"
}

# not_connected NODE ENDPOINT: the peer at ENDPOINT is not connected.
not_connected() { [ "$(peer_field "$1" "$2" state)" != connected ]; }

start_ready() {
  alys_node_start "$WORK/$1"
  alys_node_wait_ready "$WORK/$1"
}

import_chain() { alys_ctl "$WORK/$1" import "$2" > "$WORK/import-$1.log" 2>&1; }

# ---- chains and nodes ----------------------------------------------------------------

echo "1..23"
alys_chain "$WORK/chain" 2000 4 peers-it || { not_ok "chaingen"; exit 1; }
alys_chain "$WORK/other" 3 1 peers-it-other || { not_ok "chaingen (other genesis)"; exit 1; }
HEIGHT=$(alys_chain_value "$WORK/chain" head_height)

new_node A "$WORK/chain/genesis" '[]'
new_node C "$WORK/other/genesis" '[]'
check "node A starts" start_ready A
check "node C (another genesis) starts" start_ready C
check "A imports the chain (alysctl import)" import_chain A "$WORK/chain/chain.export"

check "A's key file is private (mode 600)" key_file_private "$WORK/A"
check "alysctl key show prints A's key and alys:// endpoint" key_show_consistent "$WORK/A" "$EP_A"

# The proxy is a peer with a key of its own, CURVE on both sides.
alys_proxy_start "$(alys_free_port)" "$EP_A" "$WORK/proxy.log" --fault wrong_genesis ||
  not_ok "faultproxy with its own key"
EP_P=$ALYS_PROXY_EP

new_node B "$WORK/chain/genesis" "[\"$EP_A\", \"$EP_C\", \"$EP_P\"]"
check "node B starts fresh with A, C and P as bootstrap peers" start_ready B

# ---- handshake and table -----------------------------------------------------------

check "B: A is connected" wait_peer "$WORK/B" "$EP_A" state '^connected$'
check "B: A reports height $HEIGHT" wait_peer "$WORK/B" "$EP_A" reported_height "^$HEIGHT\$"
check "B: A is listed under its key" test "$(peer_field "$WORK/B" "$EP_A" peer_id)" = "$(key_of "$EP_A")"
if alys_ctl "$WORK/B" sync status --json >/dev/null 2>&1; then
  check "B syncs A's chain through the peer manager" alys_wait_synced "$WORK/B" "$HEIGHT"
else
  ok "B syncs A's chain # SKIP alysctl sync status is not built"
fi

check "B: C (another genesis) refused and banned" wait_peer "$WORK/B" "$EP_C" state '^banned$'
check "B: C's ban says why" wait_peer "$WORK/B" "$EP_C" ban_reason 'genesis'
check "C: B shows as refused (inbound, wrong genesis)" \
  wait_peer "$WORK/C" "$EP_B" ban_reason 'wrong genesis'
check "B: the proxy with wrong_genesis refused and banned" \
  wait_peer "$WORK/B" "$EP_P" ban_reason 'wrong genesis'
score=$(peer_field "$WORK/B" "$EP_A" score)
check "B: A not penalised (score $score)" awk -v s="$score" 'BEGIN {exit !(s != "" && s >= 0)}'

# ---- a peer is its key: the wrong key, or no CURVE, gets nowhere ------------------------

# D dials A's address with another node's key (C's): the CURVE handshake
# cannot complete. E runs without CURVE ([network] plaintext = true, for
# tests only) and dials A's right endpoint: A's CURVE server refuses it.
WRONG_A="alys://$(key_of "$EP_C")@${EP_A#*@}"
new_node D "$WORK/chain/genesis" "[\"$WRONG_A\"]"
new_node E "$WORK/chain/genesis" "[\"$EP_A\"]" 'plaintext=true'
check "node D (A's address, wrong key) starts" start_ready D
check "node E (plaintext) starts" start_ready E
# As long as B took to connect to A, and more (B connected within this).
T_LINK=$(($(alys_budget_s "$WORK/D" ready) + $(alys_budget_s "$WORK/D" request)))
# D's dial of A at the wrong key is never answered: D gives it up (and says
# so: it is a bootstrap peer); it is never connected meanwhile (2 stops the
# wait at once).
d_gave_up() {
  [ "$(peer_field "$WORK/D" "$WRONG_A" state)" = connected ] && return 2
  grep -qF "bootstrap peer $WRONG_A does not answer our handshake" "$WORK/D/node.log"
}
check "D: A at the wrong key is given up unanswered, never connected" \
  alys_eventually "$T_LINK" d_gave_up
check "D: ... and is not connected after it" not_connected "$WORK/D" "$WRONG_A"
check "E: a plaintext client never gets A connected" alys_holds 1 not_connected "$WORK/E" "$EP_A"
check "A still serves B (connected)" peer_matches "$WORK/B" "$EP_A" state '^connected$'
alys_node_stop "$WORK/D"
alys_node_stop "$WORK/E"

# ---- bans survive a restart of the peer manager ----------------------------------------

until_p=$(peer_field "$WORK/B" "$EP_P" ban_until)
until_c=$(peer_field "$WORK/B" "$EP_C" ban_until)
old=$(alys_actor_pid "$WORK/B" peer_manager)
# Bans are handed to StorageActor on the peer manager's next one-second
# tick, logged as "saving N peer bans": wait for both bans to have gone.
bans_sent() { grep -Eq 'saving ([2-9]|[1-9][0-9]+) peer bans' "$WORK/B/node.log"; }
alys_eventually "$(alys_budget_s "$WORK/B" request)" bans_sent || diag "B: no 'saving 2 peer bans' logged"
# pm_restarted: a new peer manager, answering.
pm_restarted() {
  new=$(alys_actor_pid "$WORK/B" peer_manager)
  [ -n "$new" ] && [ "$new" != "$old" ] && alys_ctl "$WORK/B" peers --json >/dev/null 2>&1
}
if [ -n "$old" ] && kill -9 "$old" 2>/dev/null; then
  new=""
  alys_eventually "$(alys_budget_s "$WORK/B" restart)" pm_restarted
  after_p=$(peer_field "$WORK/B" "$EP_P" ban_until)
  after_c=$(peer_field "$WORK/B" "$EP_C" ban_until)
  diag "ban_until of P: $until_p -> $after_p, of C: $until_c -> $after_c (peer_manager $old -> $new)"
  check "bans survive kill -9 of B's peer manager (same expiry, loaded from storage)" \
    test -n "$until_p" -a "$after_p" = "$until_p" -a "$until_p" != 0 -a "$after_c" = "$until_c"
else
  not_ok "bans survive kill -9 of B's peer manager (no peer_manager pid)"
fi

alys_node_stop "$WORK/B"
alys_node_stop "$WORK/A"
alys_node_stop "$WORK/C"

# Remote validators and links use CURVE certs made by `alysctl cert new`:
# the public file must carry the public key only, the _secret file both.
cert_pair_ok() {
  alys_ctl "$WORK/A" cert new "$WORK/cert/w1" > "$WORK/cert.log" 2>&1 &&
    grep -q 'public-key' "$WORK/cert/w1" && ! grep -q 'secret-key' "$WORK/cert/w1" &&
    grep -q 'secret-key' "$WORK/cert/w1_secret"
}
mkdir -p "$WORK/cert"
check "alysctl cert new writes a CURVE cert pair" cert_pair_ok
[ "$failures" -eq 0 ]

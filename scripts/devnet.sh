#!/usr/bin/env bash
# devnet.sh: the main job. A local network on this machine: P serving nodes
# that hold a generated chain and one fresh node that syncs it from them,
# with a live display of the fresh node's sync and a summary at the end.
#
#   scripts/devnet.sh [--keep] [--peers P] [--blocks N] [--txs K]
#                     [--fault KIND] [--strategy parallel|sequential]
#                     [--timeout S] [--live [--tps R] [--follow F]]
#   scripts/devnet.sh --stop        stop the nodes a --keep run left running
#
# Steps: install packages (scripts/deps.sh), build (meson + ninja) if needed,
# generate the chain once (alys-chaingen, deterministic; kept in
# devnet/chain-b<N>-t<K>/), import it once into a node with `alysctl import`
# and keep that data dir as the chain's seed database, copy it to each serving
# node, start the servers (each its own supervisor, data dir, ports;
# validation_workers 1), then start the fresh node (validation_workers 2,
# bootstrap_peers = the servers) and show its sync: state, height/target,
# blocks/s, peers, ETA and a progress bar (one redrawn line on a terminal,
# a plain line every 2 s otherwise). At the end: time, blocks/s, tx/s,
# head and state root checked against chaingen's, retries, peers banned,
# and when block production became allowed.
#
# --fault KIND[=ARG] puts the first server behind alys-faultproxy: delay,
# drop, stall, truncate, lie_height, lie_height_near, disconnect,
# wrong_genesis, corrupt:<invalid-block kind> (e.g. corrupt:bad_nonce); ARG
# is the kind's --fault-arg (delay=200: 200 ms). --strategy sequential runs
# the fresh node with the old one-peer behaviour (the baseline).
#
# --live: the chain grows while the fresh node syncs. Each of the first
# min(P, 5) servers runs alys-producer with one of the chain's 5 authority
# keys (chaingen's keys file; the other authorities' slots stay empty), the
# servers know each other (bootstrap_peers; min_sync_peers = 0, they are the
# network), and alys-loadgen submits R valid transfers per second (default
# 20) to server1, which gossips them to the other producers. After the
# fresh node is Synced it must follow the growing chain by gossip until F
# more blocks (default 5) were produced, with its head equal to server1's.
# The summary counts blocks and txs produced and blocks the fresh node got
# pushed.
#
# Everything lives in devnet/ (nodes/<name>/node.toml, node.log, data/);
# ipc sockets under /tmp/alys-devnet-<uid>/. Every process is stopped on exit
# (also on Ctrl-C and on failure) unless --keep; on failure the log paths
# are printed. ALYS_BUILD=DIR uses another build directory (default build/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVNET=$ROOT/devnet
RUNBASE=/tmp/alys-devnet-$(id -u)

keep=0 peers=3 blocks=20000 txs=10 fault="" strategy=parallel timeout=600 stop=0
live=0 tps=20 follow=5
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}
need() { if [ $# -lt 2 ] || [ -z "$2" ]; then echo "devnet: $1 needs a value" >&2; exit 2; fi; }
posint() {
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "${3:-1}" ]; then
    echo "devnet: $1 $2: not an integer >= ${3:-1}" >&2; exit 2
  fi
}
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1 ;;
    --stop) stop=1 ;;
    --peers) need "$@"; posint "$1" "$2"; peers=$2; shift ;;
    --blocks) need "$@"; posint "$1" "$2"; blocks=$2; shift ;;
    --txs) need "$@"; posint "$1" "$2" 0; txs=$2; shift ;;
    --fault) need "$@"; fault=$2; shift ;;
    --strategy) need "$@"; strategy=$2; shift ;;
    --timeout) need "$@"; posint "$1" "$2"; timeout=$2; shift ;;
    --live) live=1 ;;
    --tps) need "$@"; posint "$1" "$2" 0; tps=$2; shift ;;
    --follow) need "$@"; posint "$1" "$2"; follow=$2; shift ;;
    -h|--help) usage 0 ;;
    *) echo "devnet: unknown option $1" >&2; usage 2 ;;
  esac
  shift
done
case $strategy in parallel|sequential) ;; *) echo "devnet: --strategy parallel|sequential" >&2; exit 2 ;; esac
[ "$peers" -le 16 ] || { echo "devnet: at most 16 peers" >&2; exit 2; }

export ALYS_ROOT=$ROOT
export ALYS_BUILD=${ALYS_BUILD:-$ROOT/build}
# shellcheck source=SCRIPTDIR/../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"

# Nodes whose supervisor is still running (the pid is checked to still be an
# alys-supervisor: a stale pid file must not make us signal a stranger).
running_nodes() {
  local f pid
  for f in "$DEVNET"/nodes/*/supervisor.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q alys-supervisor; then
      dirname "$f"
    else
      rm -f "$f"
    fi
  done
  return 0
}

if [ "$stop" = 1 ]; then
  n=0
  for node in $(running_nodes); do
    echo "stopping $(basename "$node") (pid $(alys_node_pid "$node"))"
    alys_node_stop "$node"
    n=$((n + 1))
  done
  for f in "$DEVNET"/nodes/*/faultproxy.pid "$DEVNET"/nodes/loadgen.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'alys-(faultproxy|loadgen)' &&
      alys_stop_pid "$pid" 3
    rm -f "$f"
  done
  echo "stopped $n node(s)"
  exit 0
fi

if [ -n "$(running_nodes)" ]; then
  echo "devnet: nodes of an earlier --keep run are still running; stop them first:" >&2
  echo "  scripts/devnet.sh --stop" >&2
  exit 1
fi

# ---- set-up: packages, build -----------------------------------------------------
t_setup=$(alys_now_ms)
bash "$ROOT/scripts/deps.sh"
if [ ! -f "$ALYS_BUILD/build.ninja" ]; then
  echo "devnet: configuring the build (meson setup $ALYS_BUILD)"
  meson setup "$ALYS_BUILD" "$ROOT" >/dev/null ||
    { echo "devnet: meson setup failed" >&2; exit 1; }
fi
echo "devnet: building (ninja -C $ALYS_BUILD)"
mkdir -p "$DEVNET"
if ! ninja -C "$ALYS_BUILD" > "$DEVNET/build.log" 2>&1; then
  tail -n 30 "$DEVNET/build.log" >&2
  echo "devnet: the build failed (whole output in $DEVNET/build.log)" >&2
  exit 1
fi
for b in supervisor alysctl chaingen; do
  [ -x "$(alys_bin $b)" ] || { echo "devnet: $(alys_bin $b) was not built" >&2; exit 1; }
done
if [ "$live" = 1 ]; then
  for b in producer/alys-producer loadgen/alys-loadgen; do
    [ -x "$(alys_bin $b)" ] || { echo "devnet: --live needs $(alys_bin $b), which was not built" >&2; exit 1; }
  done
fi
if [ -n "$fault" ] && [ ! -x "$(alys_bin faultproxy)" ]; then
  echo "devnet: --fault needs alys-faultproxy, which is not built" >&2
  exit 1
fi

# ---- clean-up on every exit --------------------------------------------------------
failed=1
on_exit() {
  local rc=$?
  if [ "$keep" = 1 ] && [ "$failed" = 0 ]; then
    return
  fi
  [ -t 1 ] && printf '\n'
  [ -n "${LOADGEN_PID:-}" ] && alys_stop_pid "$LOADGEN_PID" 3
  alys_cleanup
  rm -f "$DEVNET"/nodes/*/supervisor.pid "$DEVNET"/nodes/*/faultproxy.pid "$DEVNET"/nodes/loadgen.pid
  if [ "$failed" = 1 ]; then
    if [ "$rc" = 130 ]; then
      echo "devnet: interrupted; every node was stopped. Logs:" >&2
    else
      echo "devnet: FAILED (exit $rc). Logs:" >&2
    fi
    for l in "$DEVNET"/nodes/*/node.log "$DEVNET"/nodes/*/faultproxy.log; do
      [ -f "$l" ] && echo "  $l" >&2
    done
    if [ -f "$DEVNET/nodes/fresh/node.log" ]; then
      echo "last lines of the fresh node's log:" >&2
      tail -n 15 "$DEVNET/nodes/fresh/node.log" >&2
    fi
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

mkdir -p "$DEVNET/nodes" "$RUNBASE"

# ---- the chain, generated once -----------------------------------------------------
chain=$DEVNET/chain-b$blocks-t$txs
if [ ! -s "$chain/result.txt" ]; then
  echo "devnet: generating the chain: $blocks blocks x $txs txs (alys-chaingen, once)"
  t=$(alys_now_ms)
  alys_chain "$chain" "$blocks" "$txs" devnet --no-verify
  echo "devnet:   done in $(( ($(alys_now_ms) - t) / 1000 )) s -> $chain"
fi
want_hash=$(alys_chain_value "$chain" head_hash)
want_root=$(alys_chain_value "$chain" state_root)

# ---- the seed database: the chain imported once ------------------------------------
if [ ! -f "$chain/db.done" ]; then
  echo "devnet: importing the chain into a serving node's database (alysctl import, once)"
  node=$DEVNET/nodes/import
  rm -rf "$node" "$RUNBASE/import" "$chain/db"
  alys_node_config "$node" "$RUNBASE/import" "$chain/genesis" \
    'name="import"' 'validation_workers=2' 'log_level="warn"' \
    "metrics_port=$(alys_free_port)" 'wal_sync=false'
  alys_node_start "$node"
  alys_node_wait_ready "$node" 60 || { echo "devnet: the import node did not start" >&2; exit 1; }
  alys_ctl "$node" import "$chain/chain.export" > "$node/import.out" 2>&1 ||
    { cat "$node/import.out" >&2; exit 1; }
  grep '^imported' "$node/import.out" | sed 's/^/devnet:   /'
  got=$(awk '$1 == "head_hash" {print $2}' "$node/import.out")
  [ "$got" = "$want_hash" ] || { echo "devnet: imported head $got != chaingen's $want_hash" >&2; exit 1; }
  alys_node_stop "$node"
  mv "$node/data" "$chain/db"
  touch "$chain/db.done"
  rm -rf "$node" "$RUNBASE/import"
fi

# ---- serving nodes ------------------------------------------------------------------
echo "devnet: starting $peers serving node(s) with the chain ($blocks blocks)"
server_eps=()
server_cfg=()
proxy_ep=""
for i in $(seq 1 "$peers"); do
  node=$DEVNET/nodes/server$i
  rm -rf "$node" "$RUNBASE/server$i"
  mkdir -p "$node"
  cp -a "$chain/db" "$node/data"
  rm -f "$node/data/node.key" # a key of its own: a peer is its key
  port=$(alys_free_port)
  # Every peer of a devnet dials from 127.0.0.1: allow as many clients
  # from that one address as there are inbound slots (the default 8 would
  # refuse the ninth peer, and a restarted one holds its old slot for 30 s).
  server_cfg[i]="name=\"server$i\"|validation_workers=1|log_level=\"info\"|listen=\"tcp://127.0.0.1:$port\"|metrics_port=$(alys_free_port)|max_inbound_per_address=64"
  IFS='|' read -ra kv <<< "${server_cfg[i]}"
  alys_node_config "$node" "$RUNBASE/server$i" "$chain/genesis" "${kv[@]}"
  # Its alys://KEY@HOST:PORT (the key is made now, before its first start).
  server_eps+=("$(alys_node_endpoint "$node")") || { echo "devnet: no key for server$i" >&2; exit 1; }
done
# --live: each server knows the others and the first five produce, each
# with one authority key of the chain.
for i in $(seq 1 "$peers"); do
  node=$DEVNET/nodes/server$i
  if [ "$live" = 1 ]; then
    others=()
    for j in $(seq 1 "$peers"); do [ "$j" = "$i" ] || others+=("${server_eps[j - 1]}"); done
    list=$(printf '"%s", ' "${others[@]}")
    [ "${#others[@]}" -gt 0 ] && list="[${list%, }]" || list="[]"
    live_kv=("bootstrap_peers=$list" 'min_sync_peers=0')
    if [ "$i" -le 5 ]; then
      (umask 077 && sed -n "${i}p" "$chain/keys" > "$node/authority.key")
      live_kv+=('enabled=true' "key_file=\"$node/authority.key\"")
    fi
    IFS='|' read -ra kv <<< "${server_cfg[i]}"
    alys_node_config "$node" "$RUNBASE/server$i" "$chain/genesis" "${kv[@]}" "${live_kv[@]}"
  fi
  alys_node_start "$node"
done
if [ -n "$fault" ]; then
  pport=$(alys_free_port)
  node=$DEVNET/nodes/server1
  fault_args=(--fault "${fault%%=*}")
  [[ $fault == *=* ]] && fault_args+=(--fault-arg "${fault#*=}")
  # corrupt:<kind> re-signs what it changes: it needs the chain's keys. The
  # proxy is a peer with a key of its own (CURVE on both sides).
  alys_proxy_start "$pport" "${server_eps[0]}" "$node/faultproxy.log" \
    "${fault_args[@]}" --genesis "$chain/genesis" --seed devnet ||
    { echo "devnet: cannot start alys-faultproxy" >&2; exit 1; }
  echo "$ALYS_PROXY_PID" > "$node/faultproxy.pid"
  proxy_ep=$ALYS_PROXY_EP
  echo "devnet:   server1 is behind alys-faultproxy ($fault) at $proxy_ep"
fi
for i in $(seq 1 "$peers"); do
  alys_node_wait_ready "$DEVNET/nodes/server$i" 60 ||
    { echo "devnet: server$i did not start" >&2; exit 1; }
done
LOADGEN_PID=""
if [ "$live" = 1 ] && [ "$tps" -gt 0 ]; then
  # Transfers between the chain's generated accounts, each account's nonce
  # and balance taken from the chain's export, to server1 as a peer would.
  "$(alys_bin loadgen/alys-loadgen)" --seed devnet --accounts 1000 --genesis "$chain/genesis" \
    --chain "$chain/chain.export" --rate "$tps" --submit "${server_eps[0]}" \
    > /dev/null 2> "$DEVNET/nodes/loadgen.log" &
  LOADGEN_PID=$!
  echo "$LOADGEN_PID" > "$DEVNET/nodes/loadgen.pid" # for --stop after a --keep run
  echo "devnet:   alys-loadgen submits $tps tx/s to server1 (log: $DEVNET/nodes/loadgen.log)"
fi
[ "$live" = 1 ] && echo "devnet:   live: servers 1..$((peers < 5 ? peers : 5)) produce in their Aura slots (the chain has 5 authorities)"

# ---- the fresh node ------------------------------------------------------------------
boot=("${server_eps[@]}")
[ -n "$proxy_ep" ] && boot[0]=$proxy_ep
list=$(printf '"%s", ' "${boot[@]}")
list="[${list%, }]"
node=$DEVNET/nodes/fresh
rm -rf "$node" "$RUNBASE/fresh"
mkdir -p "$node"
alys_node_config "$node" "$RUNBASE/fresh" "$chain/genesis" \
  'name="fresh"' 'validation_workers=2' 'log_level="info"' "strategy=\"$strategy\"" \
  "bootstrap_peers=$list" "listen=\"tcp://127.0.0.1:$(alys_free_port)\"" \
  "metrics_port=$(alys_free_port)" 'max_inbound_per_address=64'
echo "devnet: starting the fresh node (strategy $strategy, peers: ${boot[*]})"
t0=$(alys_now_ms)
alys_node_start "$node"
fresh=$node

# ---- live display -------------------------------------------------------------------
tty=0
[ -t 1 ] && tty=1
bar() {   # bar CUR TARGET WIDTH
  local w=$3 f=0
  [ "$2" -gt 0 ] && f=$(( $1 * w / $2 ))
  [ "$f" -gt "$w" ] && f=$w
  printf '%*s' "$f" '' | tr ' ' '#'
  printf '%*s' $((w - f)) '' | tr ' ' '-'
}
fmt_eta() {   # fmt_eta SECONDS TARGET
  awk -v s="$1" -v t="${2:-0}" 'BEGIN { if (s == "" || s < 0 || t == 0) { print "?"; exit }
                         if (s >= 60) printf "%dm%02ds\n", s / 60, s % 60; else printf "%ds\n", s + 0.5 }'
}
fields=(state current_height target_height blocks_per_second eta_seconds active_peers total_peers can_produce_blocks paused)
last_plain=0
state="" cur=0 target=0
while :; do
  now=$(alys_now_ms)
  el=$(( (now - t0) / 1000 ))
  if ! kill -0 "$(alys_node_pid "$fresh")" 2>/dev/null; then
    echo "devnet: the fresh node's supervisor exited" >&2
    exit 1
  fi
  js=$(alys_sync_json "$fresh") || js=""
  if [ -n "$js" ]; then
    IFS=$'\t' read -r state cur target bps eta ap tp canp paused < <(alys_jfields "${fields[@]}" <<< "$js")
    cur=${cur:-0}; target=${target:-0}
    pct=$(awk -v c="$cur" -v t="$target" 'BEGIN {printf "%5.1f", (t > 0 ? 100 * c / t : 0)}')
    line=$(printf '%-18s %6s/%-6s [%s] %s%%  %6.0f blk/s  ETA %-6s peers %s/%s  produce: %s' \
           "$state$([ "$paused" = true ] && echo ' (paused)')" "$cur" "$target" "$(bar "$cur" "$target" 30)" "$pct" "${bps:-0}" \
           "$(fmt_eta "$eta" "$target")" "$ap" "$tp" "$([ "$canp" = true ] && echo yes || echo no)")
  else
    line="waiting for the fresh node's SyncActor..."
  fi
  if [ "$tty" = 1 ]; then
    printf '\r\033[K%4ds %s' "$el" "$line"
  elif [ $((now - last_plain)) -ge 2000 ]; then
    printf '%4ds %s\n' "$el" "$line"
    last_plain=$now
  fi
  if [ "$state" = Synced ] && [ "$cur" -ge "$blocks" ]; then
    break
  fi
  if [ "$el" -ge "$timeout" ]; then
    [ "$tty" = 1 ] && echo
    echo "devnet: no full sync after ${timeout}s (state $state, height $cur/$blocks)" >&2
    exit 1
  fi
  sleep 0.25
done
t1=$(alys_now_ms)
[ "$tty" = 1 ] && echo

# ---- --live: follow the growing chain ----------------------------------------------------
# sum_metric NAME: the counter summed over the servers.
sum_metric() {
  local i t=0 v
  for i in $(seq 1 "$peers"); do
    v=$(alys_metric "$DEVNET/nodes/server$i" "$1")
    t=$(awk -v a="$t" -v b="${v:-0}" 'BEGIN {printf "%.0f", a + b}')
  done
  echo "$t"
}
if [ "$live" = 1 ]; then
  h_start=$(alys_head "$DEVNET/nodes/server1" head_height)
  h_start=${h_start:-$blocks}
  echo "devnet: synced; following the live chain for $follow more blocks (server1 at height $h_start)"
  while :; do
    now=$(alys_now_ms)
    el=$(( (now - t0) / 1000 ))
    kill -0 "$(alys_node_pid "$fresh")" 2>/dev/null || { echo "devnet: the fresh node's supervisor exited" >&2; exit 1; }
    hs=$(alys_head "$DEVNET/nodes/server1" head_height) hf=$(alys_head "$fresh" head_height)
    xs=$(alys_head "$DEVNET/nodes/server1" head_hash) xf=$(alys_head "$fresh" head_hash)
    line=$(printf 'following: fresh %s / server1 %s  produced %s blocks, %s txs  pushed to fresh %s' \
           "${hf:-?}" "${hs:-?}" "$(sum_metric alys_producer_blocks_total)" \
           "$(sum_metric alys_producer_block_txs_total)" \
           "$(alys_metric "$fresh" alys_gossip_blocks_received_total)")
    if [ "$tty" = 1 ]; then
      printf '\r\033[K%4ds %s' "$el" "$line"
    elif [ $((now - last_plain)) -ge 2000 ]; then
      printf '%4ds %s\n' "$el" "$line"
      last_plain=$now
    fi
    if [ -n "$hs" ] && [ "$hs" -ge $((h_start + follow)) ] && [ -n "$xs" ] && [ "$xs" = "$xf" ]; then
      break
    fi
    if [ "$el" -ge "$timeout" ]; then
      [ "$tty" = 1 ] && echo
      echo "devnet: the fresh node does not follow the live chain after ${timeout}s" \
        "(fresh ${hf:-?} ${xf:0:16}, server1 ${hs:-?} ${xs:0:16})" >&2
      exit 1
    fi
    sleep 0.25
  done
  [ "$tty" = 1 ] && echo
fi

# ---- summary ---------------------------------------------------------------------------
fresh_matches_server1() {
  local a b
  a=$(alys_head "$fresh" head_hash) b=$(alys_head "$DEVNET/nodes/server1" head_hash)
  [ -n "$a" ] && [ "$a" = "$b" ]
}
sleep 1.2                  # the actors publish their metrics every second
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}')
js=$(alys_sync_json "$fresh") || js=""
IFS=$'\t' read -r retries allowed_at < <(alys_jfields retries production_allowed_at <<< "$js") || true
got_hash=$(alys_head "$fresh" head_hash)
got_root=$(alys_head "$fresh" state_root)
banned="n/a"
if pj=$(alys_ctl "$fresh" peers --json 2>/dev/null); then
  banned=$(grep -c '"state": "banned"' <<< "$pj" || true)
fi
prod=$(grep -m1 'block production allowed at height' "$fresh/node.log" | sed 's/.*at height \([0-9]*\).*/\1/' || true)
prod_s=$(awk -v a="${allowed_at:-0}" -v t="$t0" 'BEGIN {if (a > 0) printf "%.1f", (a - t) / 1000; else print "?"}')
reassign=$(alys_metric "$fresh" alys_sync_reassignments_total)
requested=$(alys_metric "$fresh" alys_sync_blocks_requested_total)

echo
echo "== devnet summary"
echo "chain:        $blocks blocks x $txs txs ($chain)"
echo "sync:         $blocks blocks from $peers peer(s) in ${secs} s (strategy $strategy${fault:+, fault $fault on server1})"
awk -v n="$blocks" -v k="$txs" -v s="$secs" 'BEGIN {printf "throughput:   %.0f blocks/s, %.0f tx/s\n", n / s, n * k / s}'
rereq=$(awk -v r="${requested:-0}" -v n="$blocks" 'BEGIN {printf "%.0f", (r > n ? r - n : 0)}')
echo "retries:      ${retries:-?} failed range attempt(s) retried, ${reassign:-?} stall reassignment(s);"
echo "              ${requested:-?} blocks requested for $blocks ($rereq re-requested)"
echo "peers banned: $banned"
echo "production:   allowed at height ${prod:-?}, ${prod_s} s after the fresh node started"
if [ "$live" = 1 ]; then
  # The chain went on growing since the follow loop saw both heads equal:
  # one reading of each may straddle a new block (server1 has it, the
  # fresh node's copy is a few ms away). Equal within one request's
  # budget is the fact; a fresh node that cannot follow still fails.
  alys_eventually "$(alys_budget_s "$fresh" request)" fresh_matches_server1 || true
  got_hash=$(alys_head "$fresh" head_hash)
  srv_hash=$(alys_head "$DEVNET/nodes/server1" head_hash)
  echo "live:         chain grew from $blocks to $(alys_head "$fresh" head_height) blocks; servers produced" \
    "$(sum_metric alys_producer_blocks_total) blocks with $(sum_metric alys_producer_block_txs_total) txs;"
  echo "              the fresh node got $(alys_metric "$fresh" alys_gossip_blocks_received_total) blocks pushed (gossip)"
  [ -n "$LOADGEN_PID" ] && echo "              alys-loadgen: $tps tx/s to server1"
  if [ "$got_hash" = "$srv_hash" ]; then
    echo "head:         $got_hash: equal to server1's"
  else
    echo "head:         $got_hash DIFFERS from server1's $srv_hash" >&2
    exit 1
  fi
elif [ "$got_hash" = "$want_hash" ] && [ "$got_root" = "$want_root" ]; then
  echo "head:         $got_hash, state root $got_root: equal to chaingen's"
else
  echo "head:         $got_hash / state root $got_root DIFFER from chaingen's $want_hash / $want_root" >&2
  exit 1
fi
awk -v a="$t_setup" -v b="$t0" 'BEGIN {printf "set-up took %.1f s (packages, build, chain, servers)\n", (b - a) / 1000}'
failed=0

if [ "$keep" = 1 ]; then
  echo
  echo "the nodes keep running (--keep). Inspect them with:"
  echo "  $(alys_bin alysctl) --config $fresh/node.toml status"
  echo "  $(alys_bin alysctl) --config $fresh/node.toml sync status"
  echo "  $(alys_bin alysctl) --config $fresh/node.toml peers"
  echo "  $(alys_bin alysctl) --config $fresh/node.toml monitor"
  echo "  curl -s 127.0.0.1:$(sed -n 's/^metrics_port = \([0-9]*\).*/\1/p' "$fresh/node.toml")/metrics | grep alys_sync"
  echo "  (servers: the same with devnet/nodes/server1..$peers/node.toml; logs: devnet/nodes/*/node.log)"
  echo "stop them with:"
  echo "  scripts/devnet.sh --stop"
fi

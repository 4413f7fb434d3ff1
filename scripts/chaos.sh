#!/usr/bin/env bash
# chaos.sh: a seeded, replayable random schedule of kill -9 and
# SIGSTOP/SIGCONT against every actor of a syncing node and of its serving
# peers, then checks that the node got through it.
#
#   scripts/chaos.sh [--seed S] [--duration SECS] [--blocks N] [--servers K]
#                    [--gap MS] [--no-supervisor-stop] [--keep]
#
# K serving nodes (default 3) hold a generated chain of N blocks (default
# 100000; made and imported once, cached with test_sync.sh's chains under
# build/tests/integration/sync-cache). A fresh node syncs it from them.
# While it syncs, for SECS seconds (default 60), faults are injected at
# random moments (a gap of 0..2 x MS between two, default 1000 ms):
#   kill -9 of an actor, or SIGSTOP of it for 100 ms .. 2 x
#   heartbeat_timeout_ms then SIGCONT (both sides of the supervisor's hung
#   threshold), against storage, peer_manager, block_processor, sync and
#   every validator of the syncing node and of each server; and SIGSTOP of
#   each node's supervisor itself (unless --no-supervisor-stop).
# The whole schedule is drawn from the seed before the run (its own PRNG,
# nothing else consumes it) and written to WORK/schedule.txt: the same seed
# gives the same schedule. What the processes do in between is not
# deterministic, so a replay repeats the faults, not every interleaving.
#
# After the last fault (and its SIGCONT), the checks:
#   - no stand-still: until the node is Synced at N, its committed head
#     (alysctl sync head) advances at least every STALL seconds, STALL =
#     1.5 x (heartbeat_timeout_ms + restart_backoff_max_ms +
#     request_timeout_ms) of its config (a dead actor is noticed, restarted
#     and its requests re-sent within that): 7 s with the settings below;
#   - the right chain: head height, hash and state root equal chaingen's
#     and every server's (alysctl sync head), and the node's export is byte
#     for byte the chain file (no block lost or changed);
#   - no block lost on the way: the committed head sampled every 0.25 s
#     through the run never went down;
#   - the supervisors did not give up: every supervisor still runs, no
#     "giving up on" in any log, every actor ready again.
# It prints the seed and the one command that replays it, first and last.
# Exit 0 if every check passed. Nodes live in /tmp/alys-chaos-XXXXXX, kept
# on failure or with --keep.
#
# The nodes run with the supervisor timing tightened (heartbeat every
# 200 ms, hung after 1.5 s, backoff 50..1000 ms, requests 2 s) so that a
# fault is noticed and recovered from within a few seconds, and
# max_restarts set to the most faults the schedule aims at any one actor
# (so that giving up would be the supervisor's fault, not the schedule's).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ALYS_ROOT=${ALYS_SOURCE_DIR:-$ROOT}
export ALYS_BUILD=${ALYS_BUILD_DIR:-$ALYS_ROOT/build}
# shellcheck source=SCRIPTDIR/../tests/integration/lib.sh
source "$ALYS_ROOT/tests/integration/lib.sh"

seed="" duration=60 blocks=100000 nservers=3 gap=1000 sup_stop=1 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --seed) seed=$2; shift ;;
    --duration) duration=$2; shift ;;
    --blocks) blocks=$2; shift ;;
    --servers) nservers=$2; shift ;;
    --gap) gap=$2; shift ;;
    --no-supervisor-stop) sup_stop=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "chaos.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
for v in duration blocks nservers gap; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "chaos.sh: --$v must be a positive integer" >&2; exit 2; }
done
if [ -z "$seed" ]; then
  seed=$(( $(date +%s%N) % 2147483647 ))
fi
[[ $seed =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed must be a number" >&2; exit 2; }
replay="scripts/chaos.sh --seed $seed --duration $duration --blocks $blocks --servers $nservers --gap $gap"
[ "$sup_stop" = 1 ] || replay+=" --no-supervisor-stop"

for b in supervisor alysctl chaingen; do
  [ -x "$(alys_bin "$b")" ] || { echo "chaos.sh: $(alys_bin "$b") is not built" >&2; exit 2; }
done

echo "chaos: seed $seed"
echo "chaos: replay with: $replay"

WORK=$(mktemp -d /tmp/alys-chaos-XXXXXX)
CACHE=$ALYS_BUILD/tests/integration/sync-cache
failures=()
STOPPED=()             # pids we SIGSTOPped and may not have SIGCONTed yet

fail() { failures+=("$*"); echo "chaos: FAIL: $*"; }

finish() {
  local p
  for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
  alys_cleanup
  if [ ${#failures[@]} -gt 0 ] || [ "$keep" = 1 ]; then
    echo "chaos: nodes, logs and schedule kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---- the schedule ------------------------------------------------------------------

# A 64-bit LCG (Knuth's MMIX constants) of our own: bash's $RANDOM is also
# drawn by lib.sh (free ports), which would shift the schedule.
RNG=$seed
rnd() {   # rnd N: sets R to a number in 0..N-1
  RNG=$(( (RNG * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff ))
  R=$(( (RNG >> 20) % $1 ))
}

# Node timing (both the syncing node and the servers).
HB_TIMEOUT=1500 BACKOFF_MAX=1000 REQ_TIMEOUT=2000
NODE_ACTORS=(storage peer_manager block_processor sync validator-1 validator-2)
SERVER_ACTORS=(storage peer_manager block_processor sync validator-1)

# Lines "T_MS ID ACTION NODE ACTOR [STOP_ID]": ACTION kill | stop | cont;
# NODE 0 is the syncing node, 1..K the servers; a cont names its stop.
make_schedule() {
  local t=0 id=0 end=$((duration * 1000)) node actor action dur
  local -a actors
  while :; do
    rnd $((2 * gap + 1)); t=$((t + R))
    ((t < end)) || break
    rnd 2
    if [ "$R" = 0 ]; then node=0; actors=("${NODE_ACTORS[@]}"); else rnd "$nservers"; node=$((R + 1)); actors=("${SERVER_ACTORS[@]}"); fi
    [ "$sup_stop" = 1 ] && actors+=(supervisor)
    rnd ${#actors[@]}; actor=${actors[$R]}
    rnd 2
    if [ "$R" = 0 ] && [ "$actor" != supervisor ]; then action="kill"; else action="stop"; fi
    id=$((id + 1))
    echo "$t $id $action $node $actor"
    if [ "$action" = stop ]; then
      rnd $((2 * HB_TIMEOUT - 100)); dur=$((100 + R))
      echo "$((t + dur)) $((id + 100000)) cont $node $actor $id"
    fi
  done | sort -n -k1,1 -k2,2
}

make_schedule > "$WORK/schedule.txt"
nfaults=$(awk '$3 != "cont"' "$WORK/schedule.txt" | wc -l)
# Every fault against an actor may cost it one restart (a kill, or a stop
# longer than the heartbeat timeout); a stopped supervisor costs none (it
# must not count the time it was stopped itself). The intensity limit is set
# to exactly that, over the whole run (an upper bound of any window).
most=$(awk '$3 != "cont" && $5 != "supervisor" {n[$4 " " $5]++}
            END {m = 1; for (k in n) if (n[k] > m) m = n[k]; print m}' "$WORK/schedule.txt")
MAX_RESTARTS=$most
echo "chaos: $nfaults faults over ${duration} s ($(grep -c ' kill ' "$WORK/schedule.txt") kill -9," \
  "$(grep -c ' stop ' "$WORK/schedule.txt") SIGSTOP, $(grep -c ' stop [0-9]* supervisor' "$WORK/schedule.txt") of them" \
  "of a supervisor); at most $most on one actor; schedule in $WORK/schedule.txt"

TIMING=("heartbeat_interval_ms=200" "heartbeat_timeout_ms=$HB_TIMEOUT" "restart_backoff_min_ms=50"
        "restart_backoff_max_ms=$BACKOFF_MAX" "request_timeout_ms=$REQ_TIMEOUT"
        "max_restarts=$MAX_RESTARTS" "restart_window_secs=60")
STALL_S=$(( (3 * (HB_TIMEOUT + BACKOFF_MAX + REQ_TIMEOUT) / 2 + 999) / 1000 ))

# ---- the nodes -----------------------------------------------------------------------

chain=$(alys_chain_db "$CACHE" "b$blocks" "$blocks" 10 "$WORK") || { fail "chain and database"; exit 1; }
HEAD_HASH=$(alys_chain_value "$chain" head_hash)
STATE_ROOT=$(alys_chain_value "$chain" state_root)
alys_start_servers "$WORK" srv "$chain" "$nservers" "${TIMING[@]}" || { fail "servers start"; exit 1; }
alys_start_fresh "$WORK" fresh "$chain/genesis" "${ALYS_SERVER_EPS[*]}" "${TIMING[@]}" ||
  { fail "fresh node config"; exit 1; }
NODES=("$ALYS_FRESH" "${ALYS_SERVERS[@]}")
NODE=$ALYS_FRESH

height() { alys_head "$NODE" head_height; }
syncing() { local h; h=$(height); [ -n "$h" ] && [ "$h" -gt 0 ]; }
alys_node_wait_ready "$NODE" || { fail "the fresh node did not start"; exit 1; }
alys_eventually "$(alys_budget_s "$NODE" sync 0)" syncing || { fail "the node did not start syncing"; exit 1; }
echo "chaos: node syncing (head $(height) of $blocks); faults start"

# The committed head, sampled all along ("MS HEIGHT" lines).
(
  trap 'exit 0' TERM
  while :; do
    h=$(height)
    [ -n "$h" ] && echo "$(alys_now_ms) $h"
    sleep 0.25
  done
) > "$WORK/heads.log" 2>/dev/null &
ALYS_PIDS+=($!)

# pid_of NODE_INDEX ACTOR: the pid of that process now ("" if none).
pid_of() {
  local dir=${NODES[$1]}
  if [ "$2" = supervisor ]; then
    alys_node_pid "$dir"
  else
    pgrep -f -- "--config $dir/node\\.toml --name $2( |\$)" | head -n1
  fi
}

# ---- the faults ------------------------------------------------------------------------

declare -A stopped_pid
t0=$(alys_now_ms)
while read -r t id action node actor ref; do
  wait_ms=$((t0 + t - $(alys_now_ms)))
  if ((wait_ms > 0)); then sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"; fi
  name=$(basename "${NODES[$node]}")
  case $action in
    kill|stop)
      pid=$(pid_of "$node" "$actor")
      if [ -z "$pid" ]; then
        echo "$t $name $actor $action: not running" >> "$WORK/faults.log"
        continue
      fi
      if [ "$action" = kill ]; then
        kill -KILL "$pid" 2>/dev/null
      else
        kill -STOP "$pid" 2>/dev/null && STOPPED+=("$pid")
        stopped_pid[$id]=$pid
      fi
      echo "$t $name $actor $action pid $pid" >> "$WORK/faults.log" ;;
    cont)
      pid=${stopped_pid[$ref]:-}
      [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
      echo "$t $name $actor cont pid ${pid:-none}" >> "$WORK/faults.log" ;;
  esac
done < "$WORK/schedule.txt"
for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
STOPPED=()
faults_end=$(alys_now_ms)
echo "chaos: faults over after $(( (faults_end - t0) / 1000 )) s: head $(height) of $blocks"

# ---- after the faults: progress without stand-still ----------------------------------

budget=$(alys_budget_s "$NODE" sync "$blocks")
last_h=-1 last_change=$faults_end worst=0 synced=0
while (($(alys_now_ms) - faults_end < budget * 1000)); do
  alys_synced_at "$NODE" "$blocks" 2>/dev/null
  case $? in
    0) synced=1; break ;;
    2) echo "chaos: the node's supervisor has exited: no use waiting"; break ;;
  esac
  h=$(height)
  now=$(alys_now_ms)
  if [ -n "$h" ] && [ "$h" != "$last_h" ]; then
    last_h=$h
    last_change=$now
  fi
  ((now - last_change > worst)) && worst=$((now - last_change))
  if ((now - last_change > STALL_S * 1000)); then
    fail "stand-still: the head stayed at ${last_h/#-1/(unreadable)} for more than ${STALL_S} s after the faults stopped" \
      "(sync: $(alys_sync_json "$NODE" | jq -c '{state, current_height, active_peers}' 2>/dev/null))"
    break
  fi
  sleep 0.2
done
if [ "$synced" = 1 ]; then
  echo "chaos: Synced at $blocks $(( ($(alys_now_ms) - faults_end) / 1000 )) s after the faults;" \
    "longest stand-still after them $((worst / 1000)).$((worst % 1000 / 100)) s (limit ${STALL_S} s)"
else
  fail "not Synced at $blocks after the faults (head $(height))"
fi

# ---- the right chain, nothing lost -------------------------------------------------------

for dir in "${NODES[@]}"; do
  alys_node_wait_ready "$dir" || fail "$(basename "$dir"): not every actor ready again"
done
for dir in "${NODES[@]}"; do
  h=$(alys_head "$dir" head_height) hh=$(alys_head "$dir" head_hash) sr=$(alys_head "$dir" state_root)
  if [ "$h" != "$blocks" ] || [ "$hh" != "$HEAD_HASH" ] || [ "$sr" != "$STATE_ROOT" ]; then
    fail "$(basename "$dir"): head $h $hh root $sr, the chain's is $blocks $HEAD_HASH $STATE_ROOT"
  fi
done
if [ "$synced" = 1 ]; then
  if ! alys_ctl "$NODE" export "$WORK/node.export" > "$WORK/export.log" 2>&1; then
    fail "alysctl export failed: $(tail -n 2 "$WORK/export.log")"
  elif ! cmp -s "$WORK/node.export" "$chain/chain.export"; then
    fail "the node's export differs from the chain file (a block lost or changed)"
  fi
fi
# For the record (no check: faults may stop the head for good reasons):
# the longest time the head stood still while the faults went on.
echo "chaos: longest stand-still during the faults: $(awk -v a="$t0" -v b="$faults_end" '
    $1 >= a && $1 <= b { if ($2 != h) { h = $2; since = $1 } else if ($1 - since > m) m = $1 - since }
    END { printf "%.1f s", m / 1000 }' "$WORK/heads.log")"
down=$(awk 'NR > 1 && $2 < prev {print prev " -> " $2 " at " $1; exit} {prev = $2}' "$WORK/heads.log")
[ -z "$down" ] || fail "the committed head went down: $down"

# ---- the supervisors ----------------------------------------------------------------------

for dir in "${NODES[@]}"; do
  pid=$(alys_node_pid "$dir")
  if [ -z "$pid" ] || alys_pid_gone "$pid"; then
    fail "$(basename "$dir"): the supervisor exited ($(grep -m1 'giving up on' "$dir/node.log"))"
  elif grep -q 'giving up on' "$dir/node.log"; then
    fail "$(basename "$dir"): $(grep -m1 'giving up on' "$dir/node.log")"
  fi
done

# What happened, for the record (counts from the node's log).
echo "chaos: node log: $(grep -c 'exited: signal 9' "$NODE/node.log") actor deaths by signal 9," \
  "$(grep -c 'no Pong for' "$NODE/node.log") hung verdicts"
if [ ${#failures[@]} -eq 0 ]; then
  echo "chaos: PASS seed $seed ($nfaults faults)"
else
  echo "chaos: FAILED seed $seed: ${#failures[@]} check(s) failed"
fi
echo "chaos: replay with: $replay"
[ ${#failures[@]} -eq 0 ]

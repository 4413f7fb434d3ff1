# lib.sh: bash helpers to run whole alys-sync nodes on loopback, shared by
# tests/integration/test_sync.sh, scripts/devnet.sh and scripts/bench_sync.sh.
# Source it; it defines functions and a few variables, nothing runs.
#
# Set before sourcing (or defaults apply):
#   ALYS_ROOT    the source tree (default: two levels above this file)
#   ALYS_BUILD   the build dir with the binaries (default: $ALYS_ROOT/build)
#
# A node is a directory NODE holding node.toml (a copy of
# deploy/alys-sync.toml with its own data_dir, run_dir, ports and the
# caller's overrides), node.log (the supervisor's and actors' output) and
# supervisor.pid. run_dir lives under /tmp (ipc socket paths are limited to
# 107 bytes): pass it to alys_node_config.
#
# Every process started here is recorded in ALYS_PIDS (supervisors,
# fault proxies); alys_cleanup stops them all (SIGTERM, then SIGKILL after
# a grace period). Callers install it in their EXIT trap.
#
# JSON: `alysctl ... --json` output is pretty-printed (one key per line);
# alys_jget reads a top-level scalar from it with jq when installed, else
# with sed (good enough for the flat keys used here).

ALYS_ROOT=${ALYS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ALYS_BUILD=${ALYS_BUILD:-$ALYS_ROOT/build}
ALYS_PIDS=()

alys_bin() {
  case $1 in
    supervisor) echo "$ALYS_BUILD/actors/supervisor/alys-supervisor" ;;
    alysctl) echo "$ALYS_BUILD/actors/alysctl/alysctl" ;;
    chaingen) echo "$ALYS_BUILD/actors/chaingen/alys-chaingen" ;;
    faultproxy)
      local p
      for p in "$ALYS_BUILD"/actors/*/alys-faultproxy; do
        [ -x "$p" ] && { echo "$p"; return; }
      done
      echo "$ALYS_BUILD/actors/peer_manager/alys-faultproxy" ;;
    *) echo "$ALYS_BUILD/actors/$1" ;;
  esac
}

alys_now_ms() { date +%s%3N; }

# A TCP port nobody listens on (and not handed out before in this shell).
ALYS_PORTS_GIVEN=" "
# Below the kernel's ephemeral range (32768+ here), where outgoing
# connections would take ports that look free to a connect probe.
alys_free_port() {
  local p=$((12000 + RANDOM % 20000))
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || [[ $ALYS_PORTS_GIVEN == *" $p "* ]]; do
    p=$((p + 1))
  done
  ALYS_PORTS_GIVEN+="$p "
  echo "$p"
}

# ---- chains ------------------------------------------------------------------

# alys_chain DIR BLOCKS TXS SEED [more chaingen args]: generate once into DIR
# (deterministic); DIR/result.txt holds chaingen's head_height, head_hash,
# state_root and genesis_hash lines.
alys_chain() {
  local dir=$1 blocks=$2 txs=$3 seed=$4
  shift 4
  if [ ! -s "$dir/result.txt" ]; then
    mkdir -p "$dir"
    "$(alys_bin chaingen)" --blocks "$blocks" --txs-per-block "$txs" --accounts 1000 \
      --authorities 5 --seed "$seed" --out "$dir" "$@" > "$dir/result.tmp" || return 1
    mv "$dir/result.tmp" "$dir/result.txt"
  fi
}

# alys_chain_value DIR KEY: head_height | head_hash | state_root | genesis_hash
alys_chain_value() { awk -v k="$2" '$1 == k {print $2}' "$1/result.txt"; }

# ---- nodes ---------------------------------------------------------------------

# alys_node_config NODE RUN_DIR GENESIS [key=value ...]: NODE/node.toml from
# the deploy template. Each override replaces the line of that key (which
# must exist in the template); values are TOML (quote strings yourself).
alys_node_config() {
  local node=$1 run=$2 genesis=$3
  shift 3
  mkdir -p "$node/data" "$run"
  local args=(-e "s|^data_dir = .*|data_dir = \"$node/data\"|"
              -e "s|^run_dir = .*|run_dir = \"$run\"|"
              -e "s|^genesis_file = .*|genesis_file = \"$genesis\"|")
  local kv key val
  for kv in "$@"; do
    key=${kv%%=*}
    val=${kv#*=}
    if ! grep -q "^$key = " "$ALYS_ROOT/deploy/alys-sync.toml"; then
      echo "alys_node_config: no key '$key' in deploy/alys-sync.toml" >&2
      return 1
    fi
    args+=(-e "s|^$key = .*|$key = $val|")
  done
  sed "${args[@]}" "$ALYS_ROOT/deploy/alys-sync.toml" > "$node/node.toml"
}

alys_ctl() { local node=$1; shift; "$(alys_bin alysctl)" --config "$node/node.toml" "$@"; }

# alys_node_start NODE: the node's supervisor in the background.
alys_node_start() {
  local node=$1
  "$(alys_bin supervisor)" --config "$node/node.toml" >> "$node/node.log" 2>&1 &
  echo $! > "$node/supervisor.pid"
  ALYS_PIDS+=($!)
}

alys_node_pid() { cat "$1/supervisor.pid" 2>/dev/null; }

# alys_stop_pid PID [GRACE_S] [noterm]: SIGTERM (unless "noterm": already
# sent), then SIGKILL after the grace period.
alys_stop_pid() {
  local pid=$1 grace=${2:-10} i
  [ -n "$pid" ] || return 0
  if [ "${3:-}" != noterm ]; then
    kill -TERM "$pid" 2>/dev/null || return 0
  fi
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

alys_node_stop() {
  alys_stop_pid "$(alys_node_pid "$1")" "${2:-10}"
  rm -f "$1/supervisor.pid"
}

alys_cleanup() {
  local p
  for p in "${ALYS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${ALYS_PIDS[@]}"; do alys_stop_pid "$p" 5 noterm; done
  ALYS_PIDS=()
}

# alys_jget KEY: a top-level scalar of the JSON on stdin ("" if absent).
alys_jget() {
  if command -v jq >/dev/null 2>&1; then
    jq -r --arg k "$1" 'if type == "object" and has($k) then .[$k] | tostring else "" end' 2>/dev/null
  else
    sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -n1
  fi
}

# alys_jfields KEY...: those top-level scalars of the JSON on stdin, one
# tab-separated line ("" for absent keys).
alys_jfields() {
  if command -v jq >/dev/null 2>&1; then
    jq -r '[$ARGS.positional[] as $k | (if has($k) then .[$k] | tostring else "" end)] | @tsv' \
      --args "$@" 2>/dev/null
  else
    local js k out=()
    js=$(cat)
    for k in "$@"; do out+=("$(alys_jget "$k" <<< "$js")"); done
    (IFS=$'\t'; echo "${out[*]}")
  fi
}

# alys_actor_pid NODE NAME: pid of an actor from `alysctl status --json`.
alys_actor_pid() {
  alys_ctl "$1" status --json 2>/dev/null |
    awk -v n="$2" '/"name":/ {cur = ($2 == "\"" n "\",")} cur && /"pid":/ {gsub(/[^0-9]/, "", $2); print $2; exit}'
}

# alys_node_wait_ready NODE TIMEOUT_S: every actor ready.
alys_node_wait_ready() {
  local node=$1 deadline=$((SECONDS + $2)) st
  while ((SECONDS < deadline)); do
    st=$(alys_ctl "$node" status --json 2>/dev/null) || st=""
    if [ -n "$st" ] && ! grep -q '"state": "\(starting\|restarting\|stopped\)"' <<< "$st" \
       && grep -q '"state": "ready"' <<< "$st"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

alys_sync_json() { alys_ctl "$1" sync status --json 2>/dev/null; }

# alys_head NODE KEY: head_height | head_hash | state_root from StorageActor.
alys_head() { { alys_ctl "$1" sync head 2>/dev/null || true; } | awk -v k="$2" '$1 == k {print $2}'; }

# alys_wait_synced NODE HEIGHT TIMEOUT_S: state Synced at >= HEIGHT.
alys_wait_synced() {
  local node=$1 height=$2 deadline=$((SECONDS + $3)) js st cur pid
  while ((SECONDS < deadline)); do
    pid=$(alys_node_pid "$node")
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "alys_wait_synced: the supervisor of $node exited" >&2
      return 1
    fi
    js=$(alys_sync_json "$node") || js=""
    st=$(alys_jget state <<< "$js")
    cur=$(alys_jget current_height <<< "$js")
    if [ "$st" = Synced ] && [ -n "$cur" ] && [ "$cur" -ge "$height" ]; then
      return 0
    fi
    sleep 0.3
  done
  return 1
}

# alys_metric NODE NAME [LABEL_MATCH]: value of one series on /metrics
# (the first whose line contains LABEL_MATCH), "" if absent.
alys_metric() {
  local port
  port=$(sed -n 's/^metrics_port = \([0-9]*\).*/\1/p' "$1/node.toml")
  { curl -s --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null || true; } |
    awk -v n="$2" -v m="${3:-}" '$1 ~ "^" n "([{]|$)" && index($0, m) {print $NF; exit}'
}

# alys_served_blocks NODE...: blocks these serving nodes have served so far
# (the sum of their alys_peer_served_items_total{kind="blocks"}).
alys_served_blocks() {
  local n total=0 v
  for n in "$@"; do
    v=$(alys_metric "$n" alys_peer_served_items_total 'kind="blocks"')
    total=$(awk -v a="$total" -v b="${v:-0}" 'BEGIN {printf "%.0f", a + b}')
  done
  echo "$total"
}

# Peak RSS of a process in KiB (VmHWM).
alys_hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

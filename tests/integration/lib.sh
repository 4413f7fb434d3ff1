# shellcheck shell=bash
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
# JSON: `alysctl ... --json` output is read with jq (scripts/deps.sh
# installs it); alys_jget and alys_jfields read top-level scalars.
#
# Time: every wait here is "eventually within T": a fact is polled every
# ALYS_POLL_S seconds until it holds or T has passed, and nothing asserts
# that something happened *fast*. T is never a constant of the test: it is
# the node's own configured timeout for that kind of step (alys_budget_s,
# read from NODE/node.toml) times ALYS_TIME_FACTOR (default 3: a loaded
# machine, two cores shared with other work or a sanitizer build, may need
# several times what the config allows a healthy node; a correct node never
# needs more than that, so a failure past it is a real one).

ALYS_ROOT=${ALYS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ALYS_BUILD=${ALYS_BUILD:-$ALYS_ROOT/build}
ALYS_PIDS=()

alys_bin() {
  case $1 in
    supervisor) echo "$ALYS_BUILD/actors/supervisor/alys-supervisor" ;;
    alysctl) echo "$ALYS_BUILD/actors/alysctl/alysctl" ;;
    chaingen) echo "$ALYS_BUILD/actors/chaingen/alys-chaingen" ;;
    faultproxy) echo "$ALYS_BUILD/actors/faultproxy/alys-faultproxy" ;;
    *) echo "$ALYS_BUILD/actors/$1" ;;
  esac
}

alys_now_ms() { date +%s%3N; }

# ---- time: eventually within T -------------------------------------------------

ALYS_TIME_FACTOR=${ALYS_TIME_FACTOR:-3}
ALYS_POLL_S=${ALYS_POLL_S:-0.1}

# alys_cfg NODE KEY: the value of KEY in NODE/node.toml (the first line
# "KEY = VALUE", comment and quotes stripped); "" if absent.
alys_cfg() {
  awk -v k="$2" '$1 == k && $2 == "=" {
      v = $0; sub(/^[^=]*= */, "", v); sub(/ *#.*$/, "", v); gsub(/"/, "", v); print v; exit }' \
    "$1/node.toml"
}

# alys_budget_s NODE KIND [N]: T in seconds (rounded up) for one kind of
# step, from NODE's config, times ALYS_TIME_FACTOR:
#   ready     the supervisor starts its actors one after the other, each
#             within start_timeout_ms: (4 + validation_workers) of them
#   restart   an actor dead or hung is noticed within heartbeat_timeout_ms,
#             restarted after at most restart_backoff_max_ms and ready
#             within start_timeout_ms
#   request   one request to a peer: request_timeout_ms
#   sync N    N blocks: a download window of download_window blocks costs
#             at most one request timeout per range, twice (a range that
#             timed out is re-asked of another peer); plus the start
alys_budget_s() {
  local node=$1 kind=$2 n=${3:-0} ms
  local st hb bo rq win vw
  st=$(alys_cfg "$node" start_timeout_ms)
  hb=$(alys_cfg "$node" heartbeat_timeout_ms)
  bo=$(alys_cfg "$node" restart_backoff_max_ms)
  rq=$(alys_cfg "$node" request_timeout_ms)
  win=$(alys_cfg "$node" download_window)
  vw=$(alys_cfg "$node" validation_workers)
  case $kind in
    ready) ms=$((st * (4 + vw))) ;;
    restart) ms=$((hb + bo + st)) ;;
    request) ms=$rq ;;
    sync) ms=$(((n / win + 1) * 2 * rq + st * (4 + vw))) ;;
    *) echo "alys_budget_s: unknown kind $kind" >&2; return 1 ;;
  esac
  echo $(((ms * ALYS_TIME_FACTOR + 999) / 1000))
}

# alys_eventually T_S CMD...: run CMD every ALYS_POLL_S until it succeeds
# (0) or T_S seconds have passed (1). CMD returning 2 stops the wait at once
# (it saw that the fact can no longer come: a process it needs has exited).
alys_eventually() {
  local t=$1 rc
  shift
  local deadline=$(($(alys_now_ms) + t * 1000))
  while :; do
    "$@"
    rc=$?
    [ "$rc" -eq 0 ] && return 0
    [ "$rc" -eq 2 ] && return 1
    (($(alys_now_ms) >= deadline)) && return 1
    sleep "$ALYS_POLL_S"
  done
}

# alys_holds T_S CMD...: CMD keeps succeeding, polled every ALYS_POLL_S,
# for T_S seconds (a fact that must not change, such as a paused head: the
# only kind of check that has to watch for a while). 1 at the first failure.
alys_holds() {
  local t=$1
  shift
  local deadline=$(($(alys_now_ms) + t * 1000))
  while (($(alys_now_ms) < deadline)); do
    "$@" || return 1
    sleep "$ALYS_POLL_S"
  done
  "$@"
}

# Ports: each caller takes them in turn from one block of ALYS_PORT_SPAN
# ports, ALYS_IT_PORT_BASE.. (meson gives every integration test a block of
# its own, so two tests running side by side never pick the same port; run
# by hand, a block is drawn at random). The block sits below the kernel's
# ephemeral range (32768+ here), where outgoing connections could take a
# port between our check and the node's bind. The last port handed out is
# kept in a file: callers run alys_free_port in a $(...) subshell, where a
# variable set would not survive.
ALYS_PORT_SPAN=1000
ALYS_PORT_BASE=${ALYS_IT_PORT_BASE:-$((12000 + RANDOM % 20 * ALYS_PORT_SPAN))}
ALYS_PORTS_FILE=${ALYS_PORTS_FILE:-/tmp/alys-ports-$$}

# alys_free_port: a TCP port nobody listens on, the next one of this shell's
# block (after ALYS_PORT_SPAN of them it comes round to the first again).
alys_free_port() {
  local last i p
  last=$(cat "$ALYS_PORTS_FILE" 2>/dev/null || true)
  [[ $last =~ ^[0-9]+$ ]] || last=$((ALYS_PORT_BASE - 1))
  for ((i = 1; i <= ALYS_PORT_SPAN; i++)); do
    p=$((ALYS_PORT_BASE + (last - ALYS_PORT_BASE + i) % ALYS_PORT_SPAN))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p" > "$ALYS_PORTS_FILE"
      echo "$p"
      return 0
    fi
  done
  echo "alys_free_port: every port of $ALYS_PORT_BASE+$ALYS_PORT_SPAN is taken" >&2
  return 1
}

# ---- chains ------------------------------------------------------------------

# alys_chain DIR BLOCKS TXS SEED [more chaingen args]: generate once into DIR
# (deterministic); DIR/result.txt holds chaingen's head_height, head_hash,
# state_root and genesis_hash lines.
alys_chain() {
  local dir=$1 blocks=$2 txs=$3 seed=$4 lock rc=0
  shift 4
  mkdir -p "$dir"
  alys_lock "$dir.lock" lock || return 1
  if [ ! -s "$dir/result.txt" ]; then
    if "$(alys_bin chaingen)" --blocks "$blocks" --txs-per-block "$txs" --accounts 1000 \
      --authorities 5 --seed "$seed" --out "$dir" "$@" > "$dir/result.tmp"; then
      mv "$dir/result.tmp" "$dir/result.txt"
    else
      rc=1
    fi
  fi
  exec {lock}>&-
  return "$rc"
}

# alys_lock FILE VAR: wait for the lock of FILE (flock), its fd in VAR; drop
# it with exec {VAR}>&-. Caches (chains, imported databases) are shared by
# tests that may run at the same time: one makes them, the other waits.
alys_lock() {
  local fd
  exec {fd}>"$1" || return 1
  if ! flock "$fd"; then
    exec {fd}>&-
    return 1
  fi
  printf -v "$2" '%s' "$fd"
}

# alys_chain_value DIR KEY: head_height | head_hash | state_root | genesis_hash
alys_chain_value() { awk -v k="$2" '$1 == k {print $2}' "$1/result.txt"; }

# alys_chain_db CACHE NAME BLOCKS TXS WORK [chaingen args]: chain CACHE/NAME
# (chaingen seed "it-NAME") and its database imported by a node under WORK,
# CACHE/NAME/db, each made once; echoes the chain dir. Shared by
# test_sync.sh and scripts/chaos.sh (same CACHE, same chains).
alys_chain_db() {
  local cache=$1 name=$2 blocks=$3 txs=$4 work=$5
  shift 5
  local dir=$cache/$name lock rc=0
  mkdir -p "$cache"
  alys_chain "$dir" "$blocks" "$txs" "it-$name" --no-verify "$@" >&2 || return 1
  alys_lock "$dir.db.lock" lock || return 1
  if [ ! -f "$dir/db.done" ]; then
    alys_chain_import "$dir" "$work/import-$name" "$work/r/imp-$name" || rc=1
  fi
  # The import node's key is not the chain's: every copy of the database
  # gets a node key of its own (a peer is its key).
  rm -f "$dir/db/node.key"
  exec {lock}>&-
  [ "$rc" = 0 ] && echo "$dir"
  return "$rc"
}

# alys_chain_import DIR NODE RUN_DIR: DIR/db, DIR's chain imported by a node
# made at NODE (the caller holds DIR's db lock).
alys_chain_import() {
  local dir=$1 node=$2 run=$3
  rm -rf "$dir/db"
  alys_node_config "$node" "$run" "$dir/genesis" 'name="import"' \
    'validation_workers=2' 'log_level="warn"' 'wal_sync=false' "metrics_port=$(alys_free_port)" || return 1
  alys_node_start "$node"
  alys_node_wait_ready "$node" || { echo "alys_chain_db: import node did not start" >&2; return 1; }
  alys_ctl "$node" import "$dir/chain.export" > "$node/import.out" 2>&1 ||
    { echo "alys_chain_db: import failed: $(tail -n 3 "$node/import.out")" >&2; return 1; }
  alys_node_stop "$node"
  mv "$node/data" "$dir/db" && touch "$dir/db.done"
}

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

# alys_node_endpoint NODE: the node's alys://KEY@HOST:PORT for its listen
# (its key is made now if it has none yet, as the node would at start).
alys_node_endpoint() { alys_ctl "$1" key show --endpoint; }

# alys_key_new FILE: a fresh node key file (a fault proxy's); echoes the key.
alys_key_new() {
  "$(alys_bin alysctl)" --config "$ALYS_ROOT/deploy/alys-sync.toml" key new "$1"
}

# alys_proxy_start LISTEN_PORT UPSTREAM_EP LOG ARGS...: alys-faultproxy with
# a key of its own in front of UPSTREAM_EP (alys://); sets ALYS_PROXY_EP to
# its alys:// endpoint and ALYS_PROXY_PID.
ALYS_PROXY_EP="" ALYS_PROXY_PID=""
alys_proxy_start() {
  local port=$1 up=$2 log=$3 key
  shift 3
  rm -f "$log.key"
  key=$(alys_key_new "$log.key") || return 1
  "$(alys_bin faultproxy)" --listen "tcp://127.0.0.1:$port" --upstream "$up" --key "$log.key" \
    "$@" > "$log" 2>&1 &
  ALYS_PROXY_PID=$!
  ALYS_PIDS+=("$ALYS_PROXY_PID")
  # shellcheck disable=SC2034  # for the caller
  ALYS_PROXY_EP="alys://$key@127.0.0.1:$port"
}

# alys_node_start NODE: the node's supervisor in the background.
alys_node_start() {
  local node=$1
  "$(alys_bin supervisor)" --config "$node/node.toml" >> "$node/node.log" 2>&1 &
  echo $! > "$node/supervisor.pid"
  ALYS_PIDS+=($!)
}

alys_node_pid() { cat "$1/supervisor.pid" 2>/dev/null; }

# alys_pid_gone PID: no such process (or a zombie nobody reaped yet).
alys_pid_gone() {
  ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# alys_stop_pid PID [GRACE_S] [noterm]: SIGTERM (unless "noterm": already
# sent), then SIGKILL after the grace period.
alys_stop_pid() {
  local pid=$1 grace=${2:-10}
  [ -n "$pid" ] || return 0
  if [ "${3:-}" != noterm ]; then
    kill -TERM "$pid" 2>/dev/null || return 0
  fi
  alys_eventually "$grace" alys_pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
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
  rm -f "$ALYS_PORTS_FILE"
}

# alys_jget KEY: a top-level scalar of the JSON on stdin ("" if absent).
alys_jget() {
  jq -r --arg k "$1" 'if type == "object" and has($k) then .[$k] | tostring else "" end' 2>/dev/null
}

# alys_jfields KEY...: those top-level scalars of the JSON on stdin, one
# tab-separated line ("" for absent keys).
alys_jfields() {
  jq -r '[$ARGS.positional[] as $k | (if has($k) then .[$k] | tostring else "" end)] | @tsv' \
    --args "$@" 2>/dev/null
}

# alys_actor_pid NODE NAME: pid of an actor from `alysctl status --json`.
alys_actor_pid() {
  alys_ctl "$1" status --json 2>/dev/null |
    jq -r --arg n "$2" '.actors[]? | select(.name == $n) | .pid' 2>/dev/null | head -n1
}

# alys_all_ready NODE: every actor of the node's supervisor is ready (or a
# hand-started "external" one).
alys_all_ready() {
  alys_ctl "$1" status --json 2>/dev/null |
    jq -e '(.actors | length) > 0 and all(.actors[]; .state == "ready" or .state == "external")' \
      >/dev/null 2>&1
}

# alys_node_wait_ready NODE [TIMEOUT_S]: every actor ready (default T:
# alys_budget_s NODE ready).
alys_node_wait_ready() {
  alys_eventually "${2:-$(alys_budget_s "$1" ready)}" alys_all_ready "$1"
}

# alys_start_servers WORK PREFIX CHAIN N [key=value ...]: N serving nodes
# WORK/PREFIX1.. holding CHAIN's database (a copy each), listening on free
# loopback ports, every actor ready, each with a key of its own. Sets
# ALYS_SERVERS (node dirs) and ALYS_SERVER_EPS (their alys:// endpoints).
ALYS_SERVERS=() ALYS_SERVER_EPS=()
alys_start_servers() {
  local work=$1 prefix=$2 chain=$3 n=$4 i node port
  shift 4
  ALYS_SERVERS=() ALYS_SERVER_EPS=()
  for i in $(seq 1 "$n"); do
    node=$work/$prefix$i
    mkdir -p "$node"
    cp -a "$chain/db" "$node/data"
    rm -f "$node/data/node.key"
    port=$(alys_free_port)
    alys_node_config "$node" "$work/r/$prefix$i" "$chain/genesis" "name=\"$prefix$i\"" \
      'validation_workers=1' 'log_level="info"' "listen=\"tcp://127.0.0.1:$port\"" \
      "metrics_port=$(alys_free_port)" "$@" || return 1
    ALYS_SERVER_EPS+=("$(alys_node_endpoint "$node")") || return 1
    alys_node_start "$node"
    ALYS_SERVERS+=("$node")
  done
  for node in "${ALYS_SERVERS[@]}"; do
    alys_node_wait_ready "$node" || { echo "alys_start_servers: $node did not start" >&2; return 1; }
  done
}

# alys_start_fresh WORK NAME GENESIS "EP EP..." [key=value ...]: a fresh
# node WORK/NAME with those bootstrap peers, started (not waited for).
# Sets ALYS_FRESH to its dir. ALYS_IT_LOG sets its log_level (info).
ALYS_FRESH=""
alys_start_fresh() {
  local work=$1 name=$2 genesis=$3 eps=$4
  local node=$work/$name list="" e
  shift 4
  for e in $eps; do list+="\"$e\", "; done
  list="[${list%, }]"
  rm -rf "$node"
  mkdir -p "$node"
  alys_node_config "$node" "$work/r/$name" "$genesis" "name=\"$name\"" 'validation_workers=2' \
    "log_level=\"${ALYS_IT_LOG:-info}\"" "bootstrap_peers=$list" "metrics_port=$(alys_free_port)" "$@" ||
    return 1
  alys_node_start "$node"
  # shellcheck disable=SC2034  # for the caller
  ALYS_FRESH=$node
}

alys_sync_json() { alys_ctl "$1" sync status --json 2>/dev/null; }

# alys_head NODE KEY: head_height | head_hash | state_root from StorageActor.
alys_head() { { alys_ctl "$1" sync head 2>/dev/null || true; } | awk -v k="$2" '$1 == k {print $2}'; }

# alys_synced_at NODE HEIGHT: state Synced at >= HEIGHT now; 2 (stop
# waiting) if the node's supervisor has exited.
alys_synced_at() {
  local node=$1 height=$2 js st cur pid
  pid=$(alys_node_pid "$node")
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    echo "alys_synced_at: the supervisor of $node exited" >&2
    return 2
  fi
  js=$(alys_sync_json "$node") || js=""
  IFS=$'\t' read -r st cur < <(alys_jfields state current_height <<< "$js") || true
  [ "$st" = Synced ] && [ -n "$cur" ] && [ "$cur" -ge "$height" ]
}

# alys_wait_synced NODE HEIGHT [TIMEOUT_S]: state Synced at >= HEIGHT
# (default T: alys_budget_s NODE sync HEIGHT).
alys_wait_synced() {
  alys_eventually "${3:-$(alys_budget_s "$1" sync "$2")}" alys_synced_at "$1" "$2"
}

# alys_metric NODE NAME [LABEL_MATCH]: value of one series on /metrics
# (the first whose line contains LABEL_MATCH), "" if absent.
alys_metric() {
  local port
  port=$(alys_cfg "$1" metrics_port)
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

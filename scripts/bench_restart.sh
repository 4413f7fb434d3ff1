#!/usr/bin/env bash
# bench_restart.sh: restart latency of every actor under alys-supervisor.
#
# For each actor, KILLS times: SIGKILL its process and time until the
# supervisor has its replacement's Ready (the "ready" lifecycle event's
# time_us field, wall clock, against the time taken here just before kill).
# Prints median and p99 per actor. Figures, not assertions (exit 0 unless the
# node cannot be run at all).
#
# Two passes in one run: with [supervisor] warm_standby on (the default: a
# restart activates an idle, already loaded process) and off (fork + exec),
# printed side by side with their ratio.
#
# Every kill is a restart "after a healthy run" (immediate, no backoff): the
# node runs with restart_window_secs = 1 and each actor is killed at most once
# per 1.1 s, killing the actors in turn, 150 ms apart (each restart alone:
# not beside the standby the previous one's supervisor is spawning). So 100 kills take about 2 minutes per pass.
#
# usage: scripts/bench_restart.sh [BUILD_DIR]     (default: build)
# env:   KILLS=N (default 100; 5 with BENCH_QUICK=1), ALYS_BIN_DIR as for
#        alys-supervisor, BENCH_FIGURES (see figure below).
set -euo pipefail

# figure KEY VALUE [WHY]: one figure for scripts/bench.sh --json, appended to
# $BENCH_FIGURES when set. VALUE is a number, or null with WHY.
figure() { if [ -n "${BENCH_FIGURES:-}" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$BENCH_FIGURES"; fi; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" 2>/dev/null && pwd)" || { echo "bench_restart: no build dir ${1:-$ROOT/build}" >&2; exit 2; }
KILLS="${KILLS:-$([ "${BENCH_QUICK:-0}" = 1 ] && echo 5 || echo 100)}"
SUP="$BUILD/actors/supervisor/alys-supervisor"
CTL="$BUILD/actors/alysctl/alysctl"
GEN="$BUILD/actors/chaingen/alys-chaingen"
for b in "$SUP" "$CTL" "$GEN"; do
    [[ -x "$b" ]] || { echo "bench_restart: $b is not built" >&2; exit 2; }
done
ACTORS=(storage peer_manager block_processor sync validator-1 producer)

DIR="$(mktemp -d /tmp/alys-bench-XXXXXX)"    # short: ipc paths are <= 107 bytes
SUP_PID=""
MON_PID=""
cleanup() {
    if [[ -n "$MON_PID" ]]; then kill "$MON_PID" 2>/dev/null || true; fi
    if [[ -n "$SUP_PID" ]]; then
        kill -TERM "$SUP_PID" 2>/dev/null || true
        wait "$SUP_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() {
    # A port nobody listens on: try from a random start with bash's /dev/tcp.
    local p=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

"$GEN" --blocks 1 --txs-per-block 1 --accounts 4 --authorities 1 --seed 1 --out "$DIR/chain" >/dev/null
sed -e "s|^data_dir = .*|data_dir = \"$DIR/data\"|" \
    -e "s|^run_dir = .*|run_dir = \"$DIR/run\"|" \
    -e "s|^genesis_file = .*|genesis_file = \"$DIR/chain/genesis\"|" \
    -e "s|^metrics_port = .*|metrics_port = $(free_port)|" \
    -e "s|^validation_workers = .*|validation_workers = 1|" \
    -e "s|^log_level = .*|log_level = \"warn\"|" \
    -e "s|^restart_window_secs = .*|restart_window_secs = 1|" \
    "$ROOT/deploy/alys-sync.toml" >"$DIR/node.toml"
# The producer too (the one authority's key from chaingen): a stateless
# actor like the others, restarted the same way.
head -n 1 "$DIR/chain/keys" >"$DIR/authority.key"
chmod 600 "$DIR/authority.key"
sed -i -e '/^\[producer\]/,/^\[/ s|^enabled = .*|enabled = true|' \
    -e "/^\[producer\]/,/^\[/ s|^key_file = .*|key_file = \"$DIR/authority.key\"|" "$DIR/node.toml"

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }

# Kill actor $1 and print the microseconds until its replacement is ready.
kill_and_time() {
    local actor=$1 old=${PID[$1]} t0 line pid ready_us
    t0=$(now_us)
    kill -9 "$old"
    while IFS= read -r -t 10 -u 3 line; do
        [[ "$line" == *" lifecycle $actor ready "* ]] || continue
        pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
        [[ "$pid" != "$old" ]] || continue
        ready_us=$(sed -n 's/.* time_us=\([0-9]*\).*/\1/p' <<<"$line")
        PID[$actor]=$pid
        echo $((ready_us - t0))
        return 0
    done
    echo "bench_restart: no ready event for $actor after killing $old" >&2
    return 1
}

stop_node() {
    if [[ -n "$MON_PID" ]]; then kill "$MON_PID" 2>/dev/null || true; MON_PID=""; fi
    exec 3<&-
    if [[ -n "$SUP_PID" ]]; then
        kill -TERM "$SUP_PID" 2>/dev/null || true
        wait "$SUP_PID" 2>/dev/null || true
        SUP_PID=""
    fi
}

# One pass: start a node with warm_standby on ("warm") or off ("cold"), kill
# every actor KILLS times, leave the latencies in $DIR/<mode>/lat.<actor>.
declare -A PID
run_pass() {
    local mode=$1 standby=false
    [ "$mode" = warm ] && standby=true
    sed -i "s|^warm_standby = .*|warm_standby = $standby|" "$DIR/node.toml"
    rm -rf "$DIR/data" "$DIR/run"
    mkdir -p "$DIR/$mode"
    "$SUP" --config "$DIR/node.toml" 2>"$DIR/supervisor.$mode.log" &
    SUP_PID=$!
    # Wait for every actor to be ready; remember their pids.
    for _ in $(seq 200); do
        if "$CTL" --config "$DIR/node.toml" status >"$DIR/status" 2>/dev/null &&
           [[ $(awk 'NR > 2 && $3 == "ready"' "$DIR/status" | wc -l) -eq ${#ACTORS[@]} ]]; then
            break
        fi
        sleep 0.05
    done
    for a in "${ACTORS[@]}"; do
        PID[$a]=$(awk -v n="$a" 'NR > 2 && $1 == n && $3 == "ready" { print $2 }' "$DIR/status")
        [[ -n "${PID[$a]}" ]] || { echo "bench_restart: $a never became ready" >&2; cat "$DIR/supervisor.$mode.log" >&2; exit 1; }
    done
    # Lifecycle events as lines on fd 3.
    exec 3< <(exec "$CTL" --config "$DIR/node.toml" monitor --fields)
    MON_PID=$!
    sleep 0.5    # the SUB connects asynchronously; standbys get spawned
    echo "restart latency, $mode (warm_standby = $standby): $KILLS SIGKILLs per actor, SIGKILL -> replacement Ready ($(nproc) cores)" >&2
    for i in $(seq "$KILLS"); do
        round_start=$(now_us)
        for a in "${ACTORS[@]}"; do
            kill_and_time "$a" >>"$DIR/$mode/lat.$a"
            # Once a replacement is ready the supervisor spawns its next
            # standby (fork, exec, ~35 libraries linked: milliseconds of
            # CPU). Killing the next actor at once would time its restart
            # against that spawn on a 2-core machine; a crash in production
            # comes alone. So the next kill waits for the spawn to be over.
            sleep 0.15
        done
        # Keep each actor's kills > restart_window (1 s) apart: healthy runs
        # only (and time for the replacement's own standby to be spawned).
        left=$(( 1100000 - ($(now_us) - round_start) ))
        if (( left > 0 )); then sleep "$(printf '%d.%06d' $((left / 1000000)) $((left % 1000000)))"; fi
        (( i % 10 == 0 )) && echo "  $i/$KILLS" >&2
    done
    stop_node
}

# "n median p99 min max" in ms of one latency file.
stats() {
    sort -n "$1" 2>/dev/null | awk '
        { v[NR] = $1 }
        END {
            n = NR; if (n == 0) { print 0, "null", "null", "null", "null"; exit }
            med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            r = int(0.99 * n + 0.999999); if (r < 1) r = 1; if (r > n) r = n
            printf "%d %.2f %.2f %.2f %.2f\n", n, med / 1000, v[r] / 1000, v[1] / 1000, v[n] / 1000
        }'
}

run_pass warm
run_pass cold

printf '%-16s %6s %10s %10s %10s %10s %12s %10s\n' actor kills median_ms p99_ms min_ms max_ms cold_median cold/warm
for a in "${ACTORS[@]}"; do
    read -r n med p99 min max < <(stats "$DIR/warm/lat.$a")
    read -r _ cmed cp99 _ _ < <(stats "$DIR/cold/lat.$a")
    ratio=null
    if [[ "$med" != null && "$cmed" != null ]]; then ratio=$(awk -v c="$cmed" -v w="$med" 'BEGIN { printf "%.2f", (w > 0 ? c / w : 0) }'); fi
    printf '%-16s %6d %10s %10s %10s %10s %12s %10s\n' "$a" "$n" "$med" "$p99" "$min" "$max" "$cmed" "$ratio"
    why=""
    [ "$n" = 0 ] && why="no restart of $a was timed"
    figure "restart_kills.$a" "$n"
    figure "restart_median_ms.$a" "$med" "$why"
    figure "restart_p99_ms.$a" "$p99" "$why"
    figure "restart_min_ms.$a" "$min" "$why"
    figure "restart_max_ms.$a" "$max" "$why"
    figure "restart_cold_median_ms.$a" "$cmed" "$why"
    figure "restart_cold_p99_ms.$a" "$cp99" "$why"
    figure "restart_cold_over_warm.$a" "$ratio" "$why"
done

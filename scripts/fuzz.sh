#!/usr/bin/env bash
# Coverage-guided fuzzing (clang libFuzzer, ASan + UBSan) of every decoder that
# takes bytes from outside, plus the config parser (targets: tests/fuzz/).
# Does its own set-up: packages (scripts/deps.sh, plus clang), a clang build
# dir, seed corpora generated from a fresh alys-chaingen chain.
#
#   scripts/fuzz.sh                  every target, FUZZ_SECONDS (60) each
#   scripts/fuzz.sh block wire       only these targets
#   FUZZ_SECONDS=15 scripts/fuzz.sh  shorter (CI)
#   FUZZ_JOBS=1 scripts/fuzz.sh      targets one after another (default:
#                                    one per CPU at a time)
#
# Per target it prints runs, cov (from libFuzzer's final line), features and
# corpus size; a crash, leak, UB report, timeout or violated invariant fails
# the target and prints the input file that reproduces it:
#     build-fuzz/tests/fuzz/fuzz_NAME CRASH_FILE
# Exits non-zero if any target failed. The corpora grow across runs in
# build-fuzz/fuzz/corpus/ (delete the folder to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
builddir=build-fuzz
all_targets=(block header genesis envelope wire export config)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
  case " ${all_targets[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target $t (have: ${all_targets[*]})" >&2; exit 2 ;; esac
done
jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] || jobs=1

# Inputs longer than this are not generated: enough for every seed, small
# enough to keep thousands of runs per second.
max_len() {
  case "$1" in
    header) echo 1024 ;;
    genesis|envelope) echo 8192 ;;
    export) echo 32768 ;;
    *) echo 16384 ;;   # block, wire, config
  esac
}

# ---- packages: the project's, and clang with its runtimes (libFuzzer, ASan,
# UBSan live in libclang-rt-dev, only a Recommends of clang).
bash scripts/deps.sh clang libclang-rt-dev

# ---- build: only the fuzz targets, the seed writer and the chain generator.
work=$builddir/fuzz
mkdir -p "$work/logs"
if [ ! -f "$builddir/build.ninja" ]; then
  if ! CC=clang meson setup "$builddir" -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false >"$work/logs/setup.log" 2>&1; then
    cat "$work/logs/setup.log" >&2
    exit 1
  fi
elif ! grep -q 'tests/fuzz/fuzz_block' "$builddir/build.ninja"; then
  # An existing build-fuzz configured without the targets.
  meson configure "$builddir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
if ! ninja -C "$builddir" fuzz actors/chaingen/alys-chaingen >"$work/logs/build.log" 2>&1; then
  cat "$work/logs/build.log" >&2
  exit 1
fi

# ---- seed corpora, generated afresh (nothing binary is committed). The
# chain's seed and authority count must match tests/fuzz/fuzz_util.h.
rm -rf "$work/chain" "$work/seeds"
"$builddir/actors/chaingen/alys-chaingen" --blocks 12 --txs-per-block 3 --accounts 8 \
  --authorities 3 --seed 1 --out "$work/chain" >"$work/logs/chaingen.log"
"$builddir/tests/fuzz/gen_seeds" "$work/chain" "$work/seeds" >"$work/logs/seeds.log"
mkdir -p "$work/seeds/config"
cp deploy/alys-sync.toml "$work/seeds/config/alys-sync.toml"
# A dictionary for the config parser: the file's tables and keys, and TOML
# tokens, so mutations spend their time on known keys and value shapes.
{
  sed -n 's/^\[\([a-z_]*\)\].*/"[\1]"/p' deploy/alys-sync.toml
  sed -n 's/^#\{0,1\} *\([a-z_][a-z_]*\) *= .*/"\1 = "/p' deploy/alys-sync.toml
  printf '%s\n' '"true"' '"false"' '"\x0a"' '"\x0d\x0a"' '" = "' '"\x22"' '"\x5c"' '"\x5cu00e9"' \
    '"#"' '"[]"' '", "' '"1e3"' '"-1"' '"+0.5"' '"inf"' '"nan"' '"0x10"' '"1_000"' '"../"' \
    '"tcp://"' '"ipc://"' '"127.0.0.1:30303"' '"4294967296"' '"9223372036854775808"'
} | sort -u >"$work/seeds/config.dict"
printf '[node]\nnode_name = "n1"\n\n[sync]\nmin_batch_size = 8  # c\n\n[network]\nbootstrap_peers = ["alys://1111111111111111111111111111111111111111111111111111111111111111@10.0.0.1:30303", "alys://2222222222222222222222222222222222222222222222222222222222222222@10.0.0.2:30303"]\n' \
  >"$work/seeds/config/small.toml"

# ---- run
# UB is an error, not a warning; leaks are checked after every input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

run_target() {
  local t=$1 corpus=$work/corpus/$1 art=$work/artifacts/$1 rc dict=""
  if [ -f "$work/seeds/$1.dict" ]; then dict=$work/seeds/$1.dict; fi
  mkdir -p "$corpus" "$art"
  if "$builddir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
       ${dict:+-dict="$dict"} "$corpus" "$work/seeds/$t" >"$work/logs/$t.log" 2>&1; then rc=0; else rc=$?; fi
  echo "$rc" >"$work/logs/$t.rc"
}

echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time (logs: $work/logs/)"
running=0
for t in "${targets[@]}"; do
  rm -f "$work/logs/$t.rc"
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
wait

# ---- report: libFuzzer's last status line "#RUNS DONE cov: C ft: F corp: N/..."
failed=0
for t in "${targets[@]}"; do
  log=$work/logs/$t.log
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
  rc=$(cat "$work/logs/$t.rc" 2>/dev/null || echo "?")
  status=ok
  if [ "$rc" != 0 ] || ! grep -q 'DONE' <<<"$last"; then status=FAILED; fi
  printf '%-14s %-6s runs %-9s cov %-5s ft %-6s corpus %s\n' "fuzz_$t" "$status" \
    "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [ "$status" != ok ]; then
    failed=$((failed + 1))
    grep -E 'SUMMARY:|fuzz invariant violated|runtime error:' "$log" | head -n3 | sed 's/^/    /' || true
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    echo "    exit $rc; log $log"
    if [ -n "$crash" ]; then
      echo "    crash file: $crash"
      echo "    reproduce:  $builddir/tests/fuzz/fuzz_$t $crash"
    fi
  fi
done
echo "fuzz: ${#targets[@]} targets, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# The simulator's own tests: a seed replays bit for bit (same trace hash
# twice), a deliberately broken storage model is caught, and the command
# line answers --help and usage errors as documented.
# Usage: test_sim_self.sh PATH/TO/alys-sim
set -u
sim=$1
fail=0
check() {
    if [ "$1" -ne 0 ]; then
        echo "FAIL: $2"
        fail=1
    else
        echo "ok: $2"
    fi
}

trace() {
    "$sim" "$@" | sed -n 's/.* trace \([0-9a-f]*\) .*/\1/p'
}
a=$(trace --seed 7)
b=$(trace --seed 7)
[ -n "$a" ] && [ "$a" = "$b" ]
check $? "seed 7 replays with the same trace hash ($a, $b)"

a=$(trace --seed 3 --case disconnect)
b=$(trace --seed 3 --case disconnect)
[ -n "$a" ] && [ "$a" = "$b" ]
check $? "a named case replays with the same trace hash ($a, $b)"

c=$(trace --seed 8)
[ -n "$c" ] && [ "$a" != "$c" ]
check $? "another seed gives another trace ($c)"

out=$("$sim" --seed 1 --case bad_chain:state_root_mismatch --peers 1 --inject-bug)
rc=$?
[ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q "no invalid block committed" \
    && printf '%s\n' "$out" | grep -q "replay: .*--inject-bug" \
    && [ "$(printf '%s\n' "$out" | tail -n 1)" = "0 passed, 1 failed" ]
check $? "--inject-bug (storage accepts an invalid block) is caught"

"$sim" --help | grep -q "usage: alys-sim"
check $? "--help on stdout, exit 0"

"$sim" --seeds 5..1 >/dev/null 2>&1
[ $? -eq 2 ]
check $? "a bad --seeds range exits 2"

msg=$("$sim" --peers 99 --seed 1 2>&1 >/dev/null)
[ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] && printf '%s\n' "$msg" | grep -q -- "--peers"
check $? "a usage error is one line naming the option"

exit $fail

#!/usr/bin/env bash
# check_format.sh: list the C files that clang-format (with the repository's
# .clang-format) would change.
#
# usage: scripts/check_format.sh [PATH...]
#   PATH: files or directories to check (default: the whole repository).
#   Only *.c and *.h files tracked by git are checked, so build directories
#   and generated protobuf code never are (outside a git checkout: every
#   *.c/*.h under PATH except build*/ directories).
# Prints one line per unformatted file, "FILE: N lines", then a summary on
# stderr. Exit 0 when every file is formatted, 1 when some are not, 2 when
# clang-format is missing. Fix a file with: clang-format -i FILE
# env: CLANG_FORMAT=binary (default: clang-format-14, else clang-format).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CF="${CLANG_FORMAT:-}"
if [[ -z "$CF" ]]; then
    for c in clang-format-14 clang-format; do
        if command -v "$c" >/dev/null 2>&1; then
            CF="$c"
            break
        fi
    done
fi
if [[ -z "$CF" ]]; then
    echo "check_format: clang-format not found (apt-get install clang-format)" >&2
    exit 2
fi

# Paths as given, made absolute before leaving the caller's directory.
paths=()
for p in "$@"; do
    [[ -e "$p" ]] || { echo "check_format: no such file or directory: $p" >&2; exit 2; }
    paths+=("$(realpath -- "$p")")
done
[[ ${#paths[@]} -gt 0 ]] || paths=("$ROOT")
cd "$ROOT"

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- "${paths[@]}" | grep -E '\.[ch]$' || true)
else
    mapfile -t files < <(find "${paths[@]}" -name 'build*' -prune -o -type f -name '*.[ch]' -print)
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

bad=0
lines=0
for f in "${files[@]}"; do
    if ! "$CF" --style=file -- "$f" >"$tmp"; then
        echo "check_format: $CF failed on $f" >&2
        exit 2
    fi
    cmp -s -- "$f" "$tmp" && continue
    # Lines of the file the formatter would change (at least 1: a change
    # may only add lines).
    n=$(diff -- "$f" "$tmp" | grep -c '^<' || true)
    [[ "$n" -gt 0 ]] || n=1
    echo "$f: $n lines"
    bad=$((bad + 1))
    lines=$((lines + n))
done

if [[ $bad -gt 0 ]]; then
    echo "check_format: $bad of ${#files[@]} files not formatted ($lines lines would change)" >&2
    exit 1
fi
echo "check_format: ${#files[@]} files formatted" >&2

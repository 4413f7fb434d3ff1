#!/usr/bin/env bash
# check_shell.sh: shellcheck over every shell script of the tree (scripts/,
# tests/, .ci/: every *.sh and every file whose first line names bash or
# sh). Sourced files are followed (-x). Prints shellcheck's findings and
# exits non-zero naming the scripts that have any, 0 when all are clean.
# Installs shellcheck through scripts/deps.sh when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v shellcheck >/dev/null 2>&1 || bash scripts/deps.sh shellcheck

scripts=()
while IFS= read -r -d '' f; do
  case $f in
    *.sh) scripts+=("$f") ;;
    *) head -n1 "$f" | grep -qE '^#!.*\b(ba)?sh\b' && scripts+=("$f") ;;
  esac
done < <(find scripts tests .ci -type f \( -name '*.sh' -o -perm -u+x \) -print0 2>/dev/null | sort -z)

if [ ${#scripts[@]} -eq 0 ]; then
  echo "check_shell: no shell script found" >&2
  exit 1
fi

bad=()
for f in "${scripts[@]}"; do
  shellcheck -x "$f" || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_shell: shellcheck findings in ${#bad[@]} of ${#scripts[@]} scripts: ${bad[*]}" >&2
  exit 1
fi
echo "check_shell: ${#scripts[@]} scripts clean"

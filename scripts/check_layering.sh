#!/usr/bin/env bash
# The layering rule (docs/ARCHITECTURE.md): an actor uses only its own folder
# and common/ (plus the generated proto/ headers). It fails (exit 1) naming
# file and line when, under actors/X:
#   - a C file includes (#include "...", the form the project uses for its
#     own headers) a file of actors/Y: a relative path ("../Y/foo.h")
#     that lands there, or a bare name ("foo.h") that is neither in the
#     including file's folder, nor in actors/X, nor in common/, but is in
#     actors/Y (it can only resolve through Y's include directory);
#   - a meson.build uses a variable that actors/Y/meson.build defines and
#     actors/X/meson.build does not (peer_logic_dep, chaingen_dep, ...), by
#     name or through get_variable('name'), or names a path into actors/Y
#     (files('../Y/x.c'), include_directories('../Y')).
# Tests and tools outside actors/ may link actor libraries; they are not
# checked. Exit status: 0 clean, 1 violations (listed), 2 usage error.
#
#   scripts/check_layering.sh [ROOT]    ROOT defaults to this checkout
set -euo pipefail

root=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
cd "$root" || exit 2
if [ ! -d actors ] || [ ! -d common ]; then
  echo "check_layering: $root has no actors/ and common/" >&2
  exit 2
fi

violations=0
report() {
  printf '%s\n' "$1"
  violations=$((violations + 1))
}

# The actor that owns a repository-relative path (actors/<name>/...), or "".
owner_of() {
  case "$1" in
    actors/*/*) local rest=${1#actors/}; printf '%s' "${rest%%/*}" ;;
    *) printf '' ;;
  esac
}

# Normalise a path relative to the repository (resolves . and .. lexically;
# the file need not exist). Prints "" for a path outside the repository.
normalise() {
  local path=$1 part out=()
  local IFS=/
  for part in $path; do
    case "$part" in
      ''|.) ;;
      ..) if [ ${#out[@]} -eq 0 ]; then printf ''; return; fi
          unset 'out[${#out[@]}-1]' ;;
      *) out+=("$part") ;;
    esac
  done
  printf '%s' "${out[*]}"
}

# ---- includes

# check_include FILE LINE_NO INCLUDED_PATH
check_include() {
  local file=$1 line=$2 inc=$3
  local dir actor target other
  dir=$(dirname "$file")
  actor=$(owner_of "$file")
  case "$inc" in
    ../*|*/../*|./*)
      target=$(normalise "$dir/$inc")
      other=$(owner_of "$target")
      if [ -n "$other" ] && [ "$other" != "$actor" ]; then
        report "$file:$line: #include \"$inc\" is actors/$other's file ($target): an actor includes only its own files and common/"
      fi
      return ;;
  esac
  if [ -e "$dir/$inc" ] || [ -e "actors/$actor/$inc" ] || [ -e "common/$inc" ]; then
    return
  fi
  for other_dir in actors/*/; do
    other=$(basename "$other_dir")
    if [ "$other" != "$actor" ] && [ -e "actors/$other/$inc" ]; then
      report "$file:$line: #include \"$inc\" resolves into actors/$other/$inc: an actor includes only its own files and common/"
      return
    fi
  done
}

check_includes() {
  local file no text inc
  while IFS= read -r -d '' file; do
    while IFS=: read -r no text; do
      inc=${text#*\"}
      inc=${inc%%\"*}
      check_include "$file" "$no" "$inc"
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$file" || true)
  done < <(find actors -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
}

# ---- meson

# A meson.build without comments: '#' outside single-quoted strings ends the line.
strip_comments() {
  awk '{
    out = ""; q = 0
    for (i = 1; i <= length($0); i++) {
      c = substr($0, i, 1)
      if (c == "\047") q = !q
      if (c == "#" && !q) break
      out = out c
    }
    print out
  }' "$1"
}

# Names assigned at the start of a line (name = ..., name += ...).
assigned_names() {
  strip_comments "$1" | sed -n -E 's/^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\+?=[^=].*/\1/p' | sort -u
}

check_meson() {
  local mb actor other name no text strings s target owner
  declare -A defined_in=()
  for mb in actors/*/meson.build; do
    actor=$(owner_of "$mb")
    while read -r name; do
      defined_in[$name]="${defined_in[$name]:-} $actor"
    done < <(assigned_names "$mb")
  done
  for mb in actors/*/meson.build; do
    actor=$(owner_of "$mb")
    declare -A own=()
    while read -r name; do own[$name]=1; done < <(assigned_names "$mb")
    while IFS=: read -r no text; do
      # names used outside strings, and names fetched with get_variable('...')
      local code names fetched
      code=$(printf '%s' "$text" | sed -E "s/'[^']*'/''/g")
      names=$(printf '%s\n' "$code" | grep -oE '[A-Za-z_][A-Za-z0-9_]*' || true)
      # get_variable reaches across folders even for a name this file also
      # assigns (two folders appending to one list are coupled both ways)
      fetched=$(printf '%s\n' "$text" | sed -n -E "s/.*get_variable\([[:space:]]*'([A-Za-z0-9_]+)'.*/\1/p")
      while read -r name; do
        if [ -z "$name" ] || [ -z "${defined_in[$name]:-}" ]; then
          continue
        fi
        if [ -n "${own[$name]:-}" ] && ! grep -qx "$name" <<< "$fetched"; then
          continue
        fi
        for other in ${defined_in[$name]}; do
          if [ "$other" != "$actor" ]; then
            report "$mb:$no: uses $name, defined in actors/$other/meson.build: an actor links only its own libraries and common/"
            break
          fi
        done
      done < <(printf '%s\n%s\n' "$names" "$fetched" | sort -u)
      # paths into another actor's folder
      strings=$(printf '%s\n' "$text" | grep -oE "'[^']*\.\./[^']*'" || true)
      while read -r s; do
        [ -n "$s" ] || continue
        s=${s//\'/}
        target=$(normalise "actors/$actor/$s")
        owner=$(owner_of "$target/")
        if [ -n "$owner" ] && [ "$owner" != "$actor" ]; then
          report "$mb:$no: names '$s' in actors/$owner: an actor builds only its own files and common/"
        fi
      done <<< "$strings"
    done < <(strip_comments "$mb" | grep -n '')
    unset own
  done
}

check_includes
check_meson
if [ "$violations" -gt 0 ]; then
  echo "check_layering: $violations violation(s)"
  exit 1
fi
echo "check_layering: ok (no actor includes or links another actor's files)"

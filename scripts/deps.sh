#!/usr/bin/env bash
# Install, with apt-get, exactly the Debian 12 packages alys-sync needs to
# build, test, run the devnet and benchmark. Idempotent and quiet when all is
# present: it asks dpkg first and only calls apt-get for what is missing.
# Extra package names as arguments are installed the same way (scripts/fuzz.sh
# adds clang).
set -euo pipefail

PACKAGES=(
  build-essential pkg-config meson ninja-build
  libzmq3-dev libczmq-dev
  libprotobuf-c-dev protobuf-c-compiler
  librocksdb-dev rocksdb-tools
  libsecp256k1-dev libssl-dev
  libmicrohttpd-dev libjansson-dev
  libcriterion-dev
  iproute2 procps curl jq
  shellcheck clang-format
  prometheus systemd  # promtool test rules, systemd-analyze verify/security (meson suite deploy)
  "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs the Debian packages okrd needs to build, test and run — only those
# that are missing, so a second run does nothing and prints nothing.
#   tools/install-deps.sh          to build and run okrd
#   tools/install-deps.sh --test   also what tools/test.sh needs beyond that:
#                                  clang and its libFuzzer runtime (the fuzz
#                                  targets), wrk and curl (the soak test)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev rocksdb-tools
  capnproto libcapnp-dev
  libcpp-httplib-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libssl-dev libcli11-dev
)
if [ "${1:-}" = "--test" ]; then
  packages+=(clang-14 libclang-rt-14-dev wrk curl)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

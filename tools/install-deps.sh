#!/usr/bin/env bash
# Installs the Debian packages okrd needs to build, test and run — only those
# that are missing, so a second run does nothing and prints nothing.
#   tools/install-deps.sh          to build and run okrd
#   tools/install-deps.sh --test   also what tools/test.sh needs beyond that:
#                                  ccache (the sanitizer build reuses the
#                                  release build's test objects through it),
#                                  clang and its libFuzzer runtime (the fuzz
#                                  targets), wrk and curl (the soak test),
#                                  Chromium, Node.js and npm (the dashboard's
#                                  browser test), clang-format and clang-tidy
#                                  (tools/check_style.sh and the test of its
#                                  function-length reader), lintian and
#                                  systemd-analyze (the Debian package's test)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev rocksdb-tools
  capnproto libcapnp-dev
  libcpp-httplib-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev rapidjson-dev libssl-dev libcli11-dev
  libsystemd-dev  # okrd's readiness and watchdog under systemd
  help2man        # the man pages of the Debian package
  openssl  # checkpoint_test checks signatures with it; operators make keys with it
)
if [ "${1:-}" = "--test" ]; then
  packages+=(ccache clang-14 libclang-rt-14-dev wrk curl chromium clang-format clang-tidy lintian systemd)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js may come from elsewhere than Debian's packages, with npm inside it:
# the commands count, not the package names.
if [ "${1:-}" = "--test" ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# apt prints progress and debconf notes even when quiet: keep them, and show
# them only when the install fails.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
     >"$log" 2>&1 </dev/null; then
  cat "$log" >&2
  echo "install-deps: apt-get failed installing: ${missing[*]}" >&2
  exit 1
fi

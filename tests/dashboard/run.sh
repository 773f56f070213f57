#!/usr/bin/env bash
# The dashboard's browser test: Debian's Chromium, driven by playwright-core,
# against a real okrd started with the demo company.
#   tests/dashboard/run.sh OKRD_BINARY OUTPUT_DIR
# Installs what is missing first: Debian's chromium (and Node.js with npm if
# there is none), then `npm ci` here when node_modules is missing.
# Screenshots of every view land in OUTPUT_DIR/dashboard-screenshots/.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 OKRD_BINARY OUTPUT_DIR" >&2
  exit 2
fi
okrd="$(realpath "$1")"
out="$(realpath -m "$2")"
here="$(cd "$(dirname "$0")" && pwd)"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null </dev/null
fi

cd "$here"
# npm ci when node_modules is missing or holds another version than the lock.
wanted="$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
have="$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$have" != "$wanted" ]; then
  npm ci --no-audit --no-fund --loglevel=error </dev/null
fi

mkdir -p "$out"
export OKRD_BINARY="$okrd" DASHBOARD_OUT="$out"
exec node --test --test-concurrency=1 dashboard.test.mjs </dev/null

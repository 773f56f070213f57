#!/usr/bin/env bash
# The dashboard's browser test: Debian's Chromium, driven by playwright-core,
# against a real okrd started with the demo company.
#   tests/dashboard/run.sh OKRD_BINARY OUTPUT_DIR
# Installs what is missing first (tools/install-deps.sh --test: Debian's
# chromium, Node.js and npm), then `npm ci` here when node_modules is missing.
# Screenshots of every view land in OUTPUT_DIR/dashboard-screenshots/.
# The run at size needs okrctl beside okrd in the build (or OKRCTL_BINARY)
# to import its generated organisation (big_org.sh).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 OKRD_BINARY OUTPUT_DIR" >&2
  exit 2
fi
okrd="$(realpath "$1")"
out="$(realpath -m "$2")"
here="$(cd "$(dirname "$0")" && pwd)"

bash "$here/../../tools/install-deps.sh" --test

cd "$here"
# npm ci when node_modules is missing or holds another version than the lock.
wanted="$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
have="$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$have" != "$wanted" ]; then
  npm ci --no-audit --no-fund --loglevel=error </dev/null
fi

mkdir -p "$out"
export OKRD_BINARY="$okrd" DASHBOARD_OUT="$out"
# DASHBOARD_PART: "browser" or "at size" (dashboard.test.mjs says which tests
# each is; default: all). DASHBOARD_TESTS: a pattern of the test names to run.
exec node --test --test-concurrency=1 ${DASHBOARD_TESTS:+--test-name-pattern="$DASHBOARD_TESTS"} \
  dashboard.test.mjs </dev/null

#!/usr/bin/env bash
# Lints docs/openapi.json with Redocly CLI (the description okrd embeds and
# serves at /v1/openapi.json). Installs the pinned @redocly/cli from the npm
# registry into BUILD_DIR/npm the first time; later runs reuse it and touch
# no network. Exits non-zero on any lint error (warnings are printed, and
# also fail the test: the description is meant to lint clean).
#   tests/openapi_lint.sh [BUILD_DIR]   (BUILD_DIR relative to the project root;
#                                        default build)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build_dir="${1:-build}"
mkdir -p "$build_dir"
build_dir="$(cd "$build_dir" && pwd)"

REDOCLY_VERSION="2.77.0"   # needs Node.js >= 20.19 (the machine has 20.20)
prefix="$build_dir/npm"
redocly="$prefix/node_modules/.bin/redocly"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "openapi_lint: node and npm are needed to install @redocly/cli" >&2
  exit 1
fi

installed_version() {
  node -p "require('$prefix/node_modules/@redocly/cli/package.json').version" 2>/dev/null || true
}

if [ ! -x "$redocly" ] || [ "$(installed_version)" != "$REDOCLY_VERSION" ]; then
  mkdir -p "$prefix"
  # A private package.json keeps npm from walking up into another project.
  [ -f "$prefix/package.json" ] || echo '{"name":"okrd-doc-tools","private":true}' > "$prefix/package.json"
  log="$prefix/install.log"
  if ! npm install --prefix "$prefix" --no-audit --no-fund --no-update-notifier \
         --loglevel=error --save-exact "@redocly/cli@$REDOCLY_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    echo "openapi_lint: npm install @redocly/cli@$REDOCLY_VERSION failed" >&2
    exit 1
  fi
fi

# No usage data sent, no update check (see also docs/redocly.yaml).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

# The file is embedded in a C++ raw string (api/embed_openapi.cmake).
if grep -qF ')okrd_openapi"' docs/openapi.json; then
  echo "openapi_lint: docs/openapi.json contains the raw-string delimiter )okrd_openapi\"" >&2
  exit 1
fi

# Human-readable problems first, then the totals from the JSON report:
# errors fail the test, and so do warnings (the description lints clean).
"$redocly" lint --config docs/redocly.yaml --format=stylish docs/openapi.json 2>&1 || true
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
"$redocly" lint --config docs/redocly.yaml --format=json docs/openapi.json >"$report" 2>/dev/null || true
totals="$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(r.totals.errors + " " + r.totals.warnings);' "$report" 2>/dev/null)" || {
  echo "openapi_lint: redocly produced no report" >&2
  exit 1
}
read -r errors warnings <<<"$totals"
if [ "$errors" != 0 ] || [ "$warnings" != 0 ]; then
  echo "openapi_lint: redocly lint: $errors errors, $warnings warnings" >&2
  exit 1
fi
echo "openapi_lint: docs/openapi.json lints clean (redocly $REDOCLY_VERSION)"

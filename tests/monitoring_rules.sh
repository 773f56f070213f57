#!/usr/bin/env bash
# Checks tools/monitoring/okrd-alerts.json with Prometheus's own promtool:
# the rules load (every expression parses, every template compiles), and
# their unit tests (okrd-alerts.test.json) fire and keep quiet the alerts
# they name. promtool comes from Debian's prometheus package, unpacked into
# BUILD_DIR/promtool the first time (apt-get download: nothing installed,
# no Prometheus server started); later runs reuse it.
#   tests/monitoring_rules.sh [BUILD_DIR]   (default: build, from where it runs)
set -euo pipefail

monitoring="$(cd "$(dirname "$0")/../tools/monitoring" && pwd)"
prefix="$(realpath -m "${1:-build}")/promtool"
promtool="$prefix/usr/bin/promtool"

if [ ! -x "$promtool" ]; then
  mkdir -p "$prefix"
  log="$prefix/download.log"
  # The package lists may be missing on a machine that had nothing to
  # install: read them once, then try again.
  if ! (cd "$prefix" && apt-get download prometheus) >"$log" 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if ! { $sudo apt-get update -qq && (cd "$prefix" && apt-get download prometheus); } >>"$log" 2>&1; then
      cat "$log" >&2
      echo "monitoring_rules: apt-get download prometheus failed" >&2
      exit 1
    fi
  fi
  dpkg-deb -x "$prefix"/prometheus_*.deb "$prefix"
  rm -f "$prefix"/prometheus_*.deb
fi

"$promtool" check rules "$monitoring/okrd-alerts.json"
(cd "$monitoring" && "$promtool" test rules okrd-alerts.test.json)

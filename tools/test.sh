#!/usr/bin/env bash
# Builds okrd and runs every test. Installs missing Debian packages first.
#   tools/test.sh            build into build/ and run the whole suite
# Environment: BUILD_DIR (default build), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-2}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" --timeout 600

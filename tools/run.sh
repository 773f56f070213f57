#!/usr/bin/env bash
# Builds okrd and okrctl (Release) and starts okrd with the demo company on
# http://127.0.0.1:8080. Installs missing Debian packages first. Builds
# only what it runs: the tests and benchmarks are tools/test.sh's.
# Environment: BUILD_DIR (default build), DATA_DIR (default data), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "run.sh: $*" >&2; }

say "checking the Debian packages okrd needs (installing what is missing)"
bash tools/install-deps.sh

build_dir="${BUILD_DIR:-build}"
data_dir="${DATA_DIR:-data}"
say "configuring a Release build in $build_dir/"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
say "building okrd and okrctl with ${JOBS:-2} jobs (a few minutes the first time)"
cmake --build "$build_dir" -j "${JOBS:-2}" --target okrd okrctl
say "starting okrd on http://127.0.0.1:8080 with the demo company in $data_dir/"
exec "$build_dir/api/okrd" --data "$data_dir" --listen 127.0.0.1:8080 --demo "$@"

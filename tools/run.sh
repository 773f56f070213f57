#!/usr/bin/env bash
# Builds okrd (Release) and starts it with the demo company on
# http://127.0.0.1:8080. Installs missing Debian packages first.
# Environment: BUILD_DIR (default build), DATA_DIR (default data), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

build_dir="${BUILD_DIR:-build}"
data_dir="${DATA_DIR:-data}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"

if [ ! -x "$build_dir/api/okrd" ]; then
  echo "Built the event store and okrctl into $build_dir/."
  echo "The okrd server is not part of this version yet; try:"
  echo "  $build_dir/tools/okrctl --help"
  exit 0
fi
exec "$build_dir/api/okrd" --data "$data_dir" --listen 127.0.0.1:8080 --demo "$@"

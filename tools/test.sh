#!/usr/bin/env bash
# Builds okrd and runs every test. Installs missing Debian packages first.
#   tools/test.sh              every stage below, in this order (what CI runs)
#   tools/test.sh STAGE...     only these stages, e.g. `tools/test.sh release`
# Stages:
#   release    build into BUILD_DIR (Release) and run the whole suite
#   sanitize   build into build-asan/ with AddressSanitizer,
#              UndefinedBehaviorSanitizer and every assert compiled in, and
#              run the whole suite again
#              (the docs checks, which run no compiled code, run once, above,
#              and so do the dashboard's run at size and the Debian package's
#              test, which ships the Release build: tests/CMakeLists.txt)
#   fuzz       build the libFuzzer targets with clang into build-fuzz/ and
#              run each for OKR_FUZZ_SECONDS (default 60) from its corpus
#              in tests/fuzz/
# Environment: BUILD_DIR (default build), JOBS (default 2), OKR_FUZZ_SECONDS.
# docs/RELIABILITY.md says what each stage proves and how long it takes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh --test

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-2}"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(release sanitize fuzz)
[ "${stages[*]}" = "all" ] && stages=(release sanitize fuzz)

stage() { echo; echo "=== tools/test.sh: $1 ($(date -u +%H:%M:%S))"; }
# The tests' own code compiles alike in the release and the sanitizer builds
# (tests/CMakeLists.txt), so through ccache the sanitizer build takes those
# objects from the release build instead of compiling them again. Its base
# directory makes the paths inside the checkout relative, which is what
# lets two build trees' commands match; its cache sits beside them.
export CCACHE_BASEDIR="$PWD"
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build-ccache}"
cache=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Each stage's ctest output is also kept, to add the stages' counts up at
# the end; a failing stage stops the script (pipefail) with ctest's status.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run_ctest() { ctest "$@" 2>&1 | tee -a "$results"; }

for s in "${stages[@]}"; do
  case "$s" in
    release)
      stage "release build and suite"
      cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${cache[@]}" >/dev/null
      cmake --build "$build_dir" -j "$jobs"
      run_ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" --timeout 900
      ;;
    sanitize)
      stage "AddressSanitizer + UndefinedBehaviorSanitizer build and suite"
      cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DOKR_SANITIZE=ON "${cache[@]}" >/dev/null
      cmake --build build-asan -j "$jobs"
      # Every finding fails: ASan and UBSan stop the process, LeakSanitizer
      # fails it at exit (okrd's too: the tests require a clean exit).
      ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        run_ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 1800 -LE "docs|size|package"
      ;;
    fuzz)
      stage "fuzz targets (libFuzzer, ${OKR_FUZZ_SECONDS:-60} s each)"
      cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DOKR_FUZZ=ON \
        -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "${cache[@]}" >/dev/null
      cmake --build build-fuzz -j "$jobs"
      run_ctest --test-dir build-fuzz --output-on-failure -j "$jobs" -L fuzz
      ;;
    *)
      echo "tools/test.sh: unknown stage '$s' (release, sanitize, fuzz)" >&2
      exit 2
      ;;
  esac
done
echo
awk '/tests passed, [0-9]+ tests failed out of/ { failed += $4; total += $NF }
     END { printf "total: %d passed, %d failed\n", total - failed, failed }' "$results"

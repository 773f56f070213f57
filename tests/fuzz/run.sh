#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time:
#   run.sh FUZZER SEEDS WORK
# Every input of the checked-in corpus SEEDS (regression cases included)
# runs first, then libFuzzer mutates for OKR_FUZZ_SECONDS (default 60)
# seconds. New inputs go to WORK/corpus, never into the source tree. A
# crash or a broken property fails the run and leaves its input in
# WORK/artifacts/; once fixed, copy it into SEEDS as a regression case.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3
seconds="${OKR_FUZZ_SECONDS:-60}"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/fuzz.log"
if "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
     -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$log" 2>&1; then
  runs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "$(basename "$fuzzer"): ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?}, seeds $(ls "$seeds" | wc -l), no crash"
else
  tail -n 60 "$log"
  echo "$(basename "$fuzzer"): FAILED; inputs kept in $work/artifacts/:" >&2
  ls -l "$work/artifacts/" >&2
  exit 1
fi

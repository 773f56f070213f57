#!/usr/bin/env bash
# Soak test: okrd with the demo company under sustained load on loopback
# (wrk, tools/soak.lua), with requests, errors, p50/p99 latency and okrd's
# resident memory recorded every interval. Two phases:
#   mixed       the first 80%: 90% reads over every read route, 10% writes
#   reads only  the last 20% (at least 20 s): the log stands still
# It stops by itself and fails when any request failed (5xx or a socket
# error), when resident memory grew beyond what the log's growth explains
# (mixed phase, after its warm-up) or at all beyond a small tolerance
# (reads-only phase, after its first sample), when the chain does not verify,
# or when okrd does not stop cleanly. docs/RELIABILITY.md has the figures.
#   tools/soak.sh [SECONDS]     default 600 (10 minutes)
# Environment:
#   SOAK_CONNECTIONS   64       concurrent connections (wrk -t2)
#   SOAK_INTERVAL      10       seconds per sample
#   SOAK_WARMUP        60 s, or a fifth of a shorter run
#   SOAK_RSS_TOLERANCE_MB  16   mixed phase: allowed growth after the warm-up
#                               beyond SOAK_BYTES_PER_EVENT per appended event
#   SOAK_BYTES_PER_EVENT 2048   resident bytes each appended event may add
#                               (the projection keeps every version of history)
#   SOAK_READ_TOLERANCE_MB 8    reads-only phase: allowed growth
#   SOAK_RSS_CHECK     on; off in a sanitizer build, whose allocator keeps
#                      freed memory on purpose (it checks leaks at exit instead)
#   OKRD               path to an okrd binary (default: build it in BUILD_DIR, default build)
#   SOAK_OKRD_ARGS     extra okrd flags
#   SOAK_OUT           also write the samples there (TSV)
#   SOAK_KEEP          keep the scratch directory (data, okrd's log)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
connections="${SOAK_CONNECTIONS:-64}"
interval="${SOAK_INTERVAL:-10}"
warmup="${SOAK_WARMUP:-$(( seconds >= 300 ? 60 : seconds / 5 ))}"
tolerance_mb="${SOAK_RSS_TOLERANCE_MB:-16}"
bytes_per_event="${SOAK_BYTES_PER_EVENT:-2048}"
read_tolerance_mb="${SOAK_READ_TOLERANCE_MB:-8}"
reads_only=$(( seconds / 5 > 20 ? seconds / 5 : 20 ))
mixed=$(( seconds - reads_only ))

for tool in wrk curl; do
  if ! command -v "$tool" >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
  fi
done
okrd="${OKRD:-}"
if [ -z "$okrd" ]; then
  build_dir="${BUILD_DIR:-build}"
  bash tools/install-deps.sh
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j 2 --target okrd >/dev/null
  okrd="$build_dir/api/okrd"
fi

work=$(mktemp -d)
okrd_pid=""
cleanup() {
  [ -n "$okrd_pid" ] && kill -KILL "$okrd_pid" 2>/dev/null && wait "$okrd_pid" 2>/dev/null
  if [ -n "${SOAK_KEEP:-}" ]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# shellcheck disable=SC2086  # SOAK_OKRD_ARGS: extra okrd flags, split on spaces
"$okrd" --data "$work/data" --listen 127.0.0.1:0 --demo --dashboard '' ${SOAK_OKRD_ARGS:-} \
  >"$work/okrd.out" 2>"$work/okrd.err" &
okrd_pid=$!
port=""
for _ in $(seq 600); do
  port=$(grep -oE 'listening on http://127.0.0.1:[0-9]+' "$work/okrd.out" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  kill -0 "$okrd_pid" 2>/dev/null || { echo "okrd exited:" >&2; cat "$work/okrd.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "okrd did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"
cred() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$work/data/demo-credentials.json"; }
export OKR_ADMIN OKR_AUDITOR
OKR_ADMIN=$(cred admin)
OKR_AUDITOR=$(cred auditor)

# The ids the load works on, from the demo's own answers.
ids="$work/ids"
current=$(grep -oE 'cascade\?cycle=[0-9a-z.-]+' "$work/okrd.out" | head -1 | cut -d= -f2)
previous=$(grep -oE 'cycles/[0-9a-z.-]+/review' "$work/okrd.out" | head -1 | cut -d/ -f2)
{
  echo "cycle-current $current"
  echo "cycle-previous $previous"
  curl -sf "$base/v1/units?limit=1000" | grep -oE '"id":"[a-z0-9._-]+"' | cut -d'"' -f4 | sed 's/^/unit /'
  curl -sf "$base/v1/objectives?cycle=$current&limit=1000" | grep -oE '"id":"[a-z0-9._-]+"' | cut -d'"' -f4 |
    awk '/^kr-/ {print "key-result " $0; next} /^ci-/ {next} {print "objective " $0}'
} >"$ids"
for kr in $(awk '$1=="key-result" {print $2}' "$ids" | head -6); do
  curl -sf "$base/v1/key-results/$kr/check-ins?limit=1000" | grep -oE '"id":"[a-z0-9._-]+"' | cut -d'"' -f4 |
    sed "s|^|check-in $kr/|" >>"$ids"
done
# The sandbox the growing writes go to: a cycle, 20 objectives, 2 key results each.
post() {  # path body
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $OKR_ADMIN" -H 'Content-Type: application/json' \
    "$base$1" -d "$2" || { echo "soak: set-up write $1 failed" >&2; exit 1; }
}
post /v1/cycles "{\"id\":\"soak\",\"name\":\"Soak\",\"starts\":\"$(date -u -d '-30 days' +%F)\",\"ends\":\"$(date -u -d '+60 days' +%F)\"}"
owners=($(awk '$1=="unit" {print $2}' "$ids" | head -8))
for n in $(seq 20); do
  post /v1/objectives "{\"id\":\"soak-o-$n\",\"cycle\":\"soak\",\"owner\":\"${owners[$((n % ${#owners[@]}))]}\",\"title\":\"Sandbox $n\"}"
  echo "sandbox-objective soak-o-$n" >>"$ids"
  for k in 1 2; do
    post /v1/key-results "{\"id\":\"soak-kr-$n-$k\",\"objective\":\"soak-o-$n\",\"title\":\"Sandbox $n.$k\",\"target\":100}"
    echo "sandbox-key-result soak-kr-$n-$k" >>"$ids"
  done
done
for kind in unit objective key-result check-in; do
  grep -q "^$kind " "$ids" || { echo "soak: found no $kind in the demo" >&2; exit 1; }
done
export OKR_IDS="$ids"
export OKR_HEAD
OKR_HEAD=$(curl -sf "$base/healthz" | grep -oE '"head_seq":[0-9]+' | cut -d: -f2)

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$okrd_pid/status"; }
head_seq() { curl -sf "$base/healthz" | grep -oE '"head_seq":[0-9]+' | cut -d: -f2; }

echo "soak: demo head seq $OKR_HEAD; $connections connections; ${mixed} s mixed (warm-up ${warmup} s)," \
     "then ${reads_only} s reads only; ${interval} s samples; $(nproc) cores"
printf '%6s %-6s %9s %8s %7s %5s %5s %9s %9s %7s %8s\n' t phase requests req/s writes 5xx sock p50_ms p99_ms rss_mb head
[ -n "${SOAK_OUT:-}" ] &&
  printf 't\tphase\trequests\treq_s\twrites\terrors_5xx\tsocket_errors\tp50_ms\tp99_ms\trss_kb\thead_seq\n' >"$SOAK_OUT"
slice=0 failed=0 total=0 total_errors=0
mixed_rss=() mixed_heads=() read_rss=()
warm_rss="" warm_head=""
start=$SECONDS
while [ $((SECONDS - start)) -lt "$seconds" ]; do
  slice=$((slice + 1))
  if [ $((SECONDS - start)) -lt "$mixed" ]; then phase=mixed write_percent=10; else phase=reads write_percent=0; fi
  out=$(OKR_SLICE=$slice OKR_WRITE_PERCENT=$write_percent \
        wrk -t2 -c"$connections" -d"${interval}s" --timeout 10s -s tools/soak.lua "$base" 2>&1) || true
  line=$(echo "$out" | grep '^SOAK ' || true)
  if [ -z "$line" ]; then echo "$out" >&2; echo "soak: wrk gave no summary" >&2; exit 1; fi
  val() { echo "$line" | grep -oE "$1=[0-9.]+" | cut -d= -f2; }
  requests=$(val requests) writes=$(val writes) e5=$(val errors_5xx) es=$(val socket_errors)
  p50=$(val p50_ms) p99=$(val p99_ms)
  kill -0 "$okrd_pid" 2>/dev/null || { echo "soak: okrd died" >&2; tail -20 "$work/okrd.err" >&2; exit 1; }
  rss=$(rss_kb) head=$(head_seq) t=$((SECONDS - start))
  total=$((total + requests)) total_errors=$((total_errors + e5 + es))
  printf '%6s %-6s %9s %8s %7s %5s %5s %9s %9s %7s %8s\n' "$t" "$phase" "$requests" "$((requests / interval))" \
    "$writes" "$e5" "$es" "$p50" "$p99" "$((rss / 1024))" "$head"
  [ -n "${SOAK_OUT:-}" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$phase" "$requests" \
    "$((requests / interval))" "$writes" "$e5" "$es" "$p50" "$p99" "$rss" "$head" >>"$SOAK_OUT"
  if [ "$phase" = mixed ]; then
    # The first sample after the warm-up is the baseline; growth is judged
    # on the samples after it.
    if [ -z "$warm_rss" ]; then
      if [ "$t" -ge "$warmup" ]; then warm_rss=$rss warm_head=$head; fi
    else
      mixed_rss+=("$rss") mixed_heads+=("$head")
    fi
  else
    read_rss+=("$rss")
  fi
done

echo "soak: $total requests, $total_errors failed (5xx or socket errors)"
if [ "$total_errors" -ne 0 ]; then
  echo "soak: FAILED: requests failed"
  grep -E ' (error|critical) |status=5[0-9][0-9]' "$work/okrd.err" | tail -5 || true
  failed=1
fi
# Growth is judged on the smallest of the last samples, so that a sample
# taken while a snapshot is being written (a transient peak) does not count.
min() { printf '%s\n' "$@" | sort -n | head -1; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }
min_of_last() {  # n values...
  local n=$1; shift
  # shellcheck disable=SC2046  # numbers, one a line
  min $(printf '%s\n' "$@" | tail -n "$n")
}
check() {  # label grown_kb allowed_kb
  if [ "${SOAK_RSS_CHECK:-on}" = off ]; then
    echo "soak: $1: resident memory not checked (SOAK_RSS_CHECK=off)"
  elif [ "$2" -gt "$3" ]; then
    echo "soak: FAILED: $1: resident memory grew ${2} kB, more than the ${3} kB allowed"; failed=1
  fi
}
if [ ${#mixed_rss[@]} -ge 1 ]; then
  end_rss=$(min_of_last 3 "${mixed_rss[@]}")
  events=$(( ${mixed_heads[-1]} - warm_head ))
  allowed_kb=$((tolerance_mb * 1024 + events * bytes_per_event / 1024))
  grown_kb=$((end_rss - warm_rss))
  echo "soak: mixed: resident memory ${warm_rss} kB after the warm-up, ${end_rss} kB at the end, peak" \
       "$(max "${mixed_rss[@]}") kB; the log grew by ${events} events;" \
       "allowed ${allowed_kb} kB (${tolerance_mb} MiB + ${bytes_per_event} B per event)"
  check mixed "$grown_kb" "$allowed_kb"
else
  echo "soak: mixed: too short to judge memory"
fi
if [ ${#read_rss[@]} -ge 2 ]; then
  # The baseline too is the smaller of two samples when there are enough.
  base_n=$(( ${#read_rss[@]} >= 4 ? 2 : 1 ))
  base_rss=$(min "${read_rss[@]:0:base_n}")
  end_rss=$(min_of_last 2 "${read_rss[@]:base_n}")
  grown_kb=$((end_rss - base_rss))
  echo "soak: reads only: resident memory ${base_rss} kB at its start, ${end_rss} kB at the end;" \
       "allowed growth $((read_tolerance_mb * 1024)) kB"
  check "reads only" "$grown_kb" $((read_tolerance_mb * 1024))
else
  echo "soak: reads only: too short to judge memory"
fi
verify=$(curl -sf -H "Authorization: Bearer $OKR_AUDITOR" "$base/v1/audit/verify")
echo "soak: audit verify: $verify"
echo "$verify" | grep -q '"ok":true' || { echo "soak: FAILED: the chain does not verify"; failed=1; }
# A clean stop: SIGTERM, exit status 0 (a sanitizer build reports leaks here).
kill -TERM "$okrd_pid"
status=0
wait "$okrd_pid" || status=$?
okrd_pid=""
if [ "$status" -ne 0 ]; then
  echo "soak: FAILED: okrd exited with status $status on SIGTERM"; tail -30 "$work/okrd.err"; failed=1
fi
[ "$failed" -eq 0 ] && echo "soak: passed"
exit "$failed"

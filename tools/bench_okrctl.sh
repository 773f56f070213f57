#!/usr/bin/env bash
# okrctl figures for docs/BENCHMARKS.md ("okrctl: import and verify"):
#   1. import of a 100 000-row CSV into a data directory holding the sample
#      frame (tools/samples/hr-org.json): validation, then the writes;
#   2. a 444 440-row CSV imported the same way, which makes a log of
#      1 000 003 events;
#   3. verify of that log: offline (okrctl verify --data) and through okrd
#      from the stored bytes it serves (okrctl verify --server, which reads
#      GET /v1/events/raw), each as seconds and events/s.
# Run it on a terminal to see the progress bars. Everything happens in a
# fresh directory under $TMPDIR (or /tmp) that is removed afterwards.
#   tools/bench_okrctl.sh [BUILD_DIR]        (default build)
#   ROWS=1000 BIG_ROWS=4444 tools/bench_okrctl.sh   (a quick smoke run)
#   ROWS=1000 BIG_ROWS=44444 tools/bench_okrctl.sh  (verify on a 100 003-event log)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
okrctl="$build/tools/okrctl"
okrd="$build/api/okrd"
rows="${ROWS:-100000}"
big_rows="${BIG_ROWS:-444440}"
for binary in "$okrctl" "$okrd"; do
  [ -x "$binary" ] || { echo "bench_okrctl: $binary is missing; build it first" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/okrctl-bench-XXXXXX")"
okrd_pid=""
cleanup() {
  [ -n "$okrd_pid" ] && kill "$okrd_pid" 2>/dev/null && wait "$okrd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One row per key result, four per objective, a check-in on each.
generate() { bash "$root/tools/bench_rows.sh" "$@"; }

seconds() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p'; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

generate "$rows" "$work/rows.csv"
"$okrctl" import "$root/tools/samples/hr-org.json" --data "$work/a" > /dev/null
result="$("$okrctl" import "$work/rows.csv" --data "$work/a" --json)"
echo "import of $rows rows ($(wc -c < "$work/rows.csv") bytes): $(echo "$result" | seconds) s, $(echo "$result" | sed -n 's/.*"written":\([0-9]*\).*/\1/p') commands"

generate "$big_rows" "$work/big.csv"
"$okrctl" import "$root/tools/samples/hr-org.json" --data "$work/b" > /dev/null
result="$("$okrctl" import "$work/big.csv" --data "$work/b" --json)"
events="$(echo "$result" | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')"
echo "import of $big_rows rows: $(echo "$result" | seconds) s, head seq $events"
rate() { awk -v n="$events" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

start=$(date +%s.%N)
"$okrctl" verify --data "$work/b"
took="$(since "$start")"
echo "verify --data: $took s wall, $(rate "$took") events/s"

token="bench-auditor-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
printf '[{"actor":"auditor","role":"auditor","units":[],"token_sha256":"%s"}]\n' "$hash" > "$work/tokens.json"
chmod 600 "$work/tokens.json"
"$okrd" --data "$work/b" --listen 127.0.0.1:0 --tokens "$work/tokens.json" > "$work/okrd.out" 2> "$work/okrd.log" &
okrd_pid=$!
for _ in $(seq 1 300); do
  grep -q "listening on" "$work/okrd.out" 2>/dev/null && break
  sleep 0.2
done
url="$(grep -o 'http://[0-9.:]*' "$work/okrd.out")"
start=$(date +%s.%N)
OKR_TOKEN="$token" "$okrctl" verify --server "$url"
took="$(since "$start")"
echo "verify --server: $took s wall, $(rate "$took") events/s"

#!/usr/bin/env bash
# okrd's live feeds at size (docs/BENCHMARKS.md, "Live feeds"). For each
# log size, in one run, beside the raw ceilings:
#   - one SSE client reading /v1/events/stream from the start to the head:
#     events/s, against RocksDB alone reading and decoding every event
#     (bench_streams scan, on the same data before okrd opens it);
#   - the time from a check-in's acknowledgement to its arrival at an
#     events-stream and at a changes-stream client (p50/p99, 200 writes/s),
#     beside the POST's own latency;
#   - a webhook to a receiver in bench_streams: each check-in's time from
#     acknowledgement to arrival (200 writes/s), then the events/s it
#     delivers from a burst, beside a bare client posting to the receiver;
#   - durable POST check-ins at 32 connections with 100 change streams open
#     (and read) beside none, and beside a bare cpp-httplib handler doing
#     one synced RocksDB Put per request.
#   tools/bench_streams.sh [BUILD_DIR]                 (default build)
#   SIZES="10000 100000" SECONDS_EACH=5 tools/bench_streams.sh
#   DATA_DIRS="d10k d100k d1m" tools/bench_streams.sh  copies of these data
#     directories (logs of tools/bench_scale.sh's shape) instead of importing
# Installs wrk (Debian) when missing. Everything happens in a fresh
# directory under $TMPDIR (or /tmp), removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
sizes="${SIZES:-10000 100000 1000000}"
seconds="${SECONDS_EACH:-10}"
okrctl="$build/tools/okrctl"
okrd="$build/api/okrd"
bare="$build/tools/bench_http_bare"
streams="$build/tools/bench_streams"
source "$root/tools/bench_lib.sh"
bench_setup streams "$okrctl" "$okrd" "$bare" "$streams"
write_post_lua "$work/post.lua"
json_field() { sed -n "s/.*\"$2\":\[\{0,1\}\([-0-9.]*\).*/\1/p" <<<"$1"; }
json_pair() { sed -n "s/.*\"$2\":\[\([-0-9.]*\),\([-0-9.]*\)\].*/\1 \/ \2/p" <<<"$1"; }

read -r -a dirs <<<"${DATA_DIRS:-}"
[ ${#dirs[@]} -gt 0 ] && sizes="${dirs[*]}"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); ${seconds} s per wrk run, 32 connections"
results=()
for size in $sizes; do
  data="$work/data"
  if [ ${#dirs[@]} -gt 0 ]; then
    cp -a "$size" "$data"
    if [ -f "$size.signing.key" ]; then cp -a "$size.signing.key" "$data.signing.key"; fi
  else
    generate "$size" "$work/rows.csv"
    "$okrctl" import "$root/tools/samples/hr-org.json" --data "$data" > /dev/null
    "$okrctl" import "$work/rows.csv" --data "$data" > /dev/null
  fi
  read -r admin auditor <<<"$(tokens "$work/tokens.json")"
  "$streams" scan --data "$data" > /dev/null  # the page cache, as okrd will find it
  scan=$("$streams" scan --data "$data")
  head=$(json_field "$scan" events)
  krs=$(( (head - 13) * 4 / 9 ))

  read -r okrd_pid okrd_port <<<"$(start_server okrd "$okrd" --data "$data" --listen 127.0.0.1:0 \
    --tokens "$work/tokens.json" --dashboard '' --log-format json)"
  pids+=("$okrd_pid")
  drain1=$("$streams" drain --port "$okrd_port" --token "$auditor")
  drain2=$("$streams" drain --port "$okrd_port" --token "$auditor")
  latency=$("$streams" latency --port "$okrd_port" --token "$admin" --kr kr-000001 \
    --rate 200 --seconds "$seconds")
  hook=$("$streams" hook --port "$okrd_port" --token "$admin" --kr kr-000001 \
    --rate 200 --seconds "$seconds")

  read -r bare_pid bare_port <<<"$(start_server bare "$bare" --threads 16 --durable "$work/bare-db")"
  pids+=("$bare_pid")
  post() { KRS="$krs" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "$1"; }
  bare1=$(post "http://127.0.0.1:$bare_port")
  none=$(post "http://127.0.0.1:$okrd_port")
  mkfifo "$work/hold.in"
  "$streams" hold --port "$okrd_port" --streams 100 < "$work/hold.in" > "$work/hold.out" &
  hold_pid=$!
  exec 9> "$work/hold.in"
  until grep -q holding "$work/hold.out"; do sleep 0.1; done
  with=$(post "http://127.0.0.1:$okrd_port")
  exec 9>&-
  wait "$hold_pid"
  held=$(tail -1 "$work/hold.out")
  bare2=$(post "http://127.0.0.1:$bare_port")
  stop_server "$bare_pid" "$okrd_pid"
  rm -rf "$data" "$data.signing.key" "$work/bare-db" "$work/hold.in"

  results+=("$head|$(json_field "$scan" events_per_s)|$(json_field "$drain1" events_per_s) $(json_field "$drain2" events_per_s)|$(json_pair "$latency" post_ms)|$(json_pair "$latency" events_ack_to_arrival_ms)|$(json_pair "$latency" changes_ack_to_arrival_ms)|$bare1|$bare2|$none|$with|$(json_field "$held" events_read)|$(json_pair "$hook" ack_to_receiver_ms)|$(json_field "$hook" delivered_per_s) $(json_field "$hook" bare_posts_per_s)")
done

table_header
line "RocksDB alone: read + decode, events/s (ceiling)" '{ print $2 }'
line "one SSE client from the start: events/s (two runs)" '{ print $3 }'
line "SSE client / ceiling" '{ split($3, a, " "); printf "%.2f", (a[1] + a[2]) / 2 / $2 }'
line "POST at 200/s: p50 / p99 ms" '{ print $4 }'
line "ack → events stream: p50 / p99 ms" '{ print $5 }'
line "ack → changes stream: p50 / p99 ms" '{ print $6 }'
line "ack → webhook receiver: p50 / p99 ms" '{ print $12 }'
line "one webhook delivers, events/s (bare client: POSTs/s)" '{ split($13, a, " "); printf "%s (%s)", a[1], a[2] }'
line "bare POST, one synced Put: req/s" '{ split($7, a, " "); split($8, b, " "); printf "%.0f", (a[1] + b[1]) / 2 }'
line "okrd POST, no stream open: req/s (p99 ms)" '{ split($9, a, " "); printf "%.0f (%.1f)", a[1], a[3] }'
line "okrd POST, 100 streams open: req/s (p99 ms)" '{ split($10, a, " "); printf "%.0f (%.1f)", a[1], a[3] }'
line "with 100 streams / with none" '{ split($9, a, " "); split($10, b, " "); printf "%.2f", b[1] / a[1] }'
line "events the 100 streams read meanwhile" '{ print $11 }'

#!/usr/bin/env bash
# okrd at the size of a large company (docs/BENCHMARKS.md, "At size").
# For each log size it imports a generated organisation from CSV (the shape
# of tools/bench_okrctl.sh: one cycle, four key results per objective, a
# check-in on each), starts okrd on it and measures, in one run:
#   - start-up: okrd started until it listens;
#   - durable POST check-ins at 32 connections (random key results) beside a
#     bare cpp-httplib POST handler doing one synced RocksDB Put per request
#     (tools/bench_http_bare.cc --durable), alternating, with both p99s;
#   - an objective as of a random seq (wrk, random objective and seq);
#   - the whole organisation's cascade: seconds per answer and okrd's
#     resident memory before it and at its peak during it;
#   - okrctl verify --server against verify --data.
#   tools/bench_scale.sh [BUILD_DIR]              (default build)
#   SIZES="10000 100000" SECONDS_EACH=5 tools/bench_scale.sh   (a shorter run)
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
source "$root/tools/bench_lib.sh"
bench_setup scale "$okrctl" "$okrd" "$bare"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

write_post_lua "$work/post.lua"
cat > "$work/as_of.lua" <<'LUA'
local objectives = tonumber(os.getenv("OBJECTIVES"))
local head = tonumber(os.getenv("HEAD"))
local frame = tonumber(os.getenv("FRAME"))
-- Objective o is created by the import's row 4o, after the frame's events
-- and 9 events per earlier objective: a seq from then on finds it.
request = function()
  local o = math.random(0, objectives - 1)
  return wrk.format("GET", string.format("/v1/objectives/obj-%06d?as_of=%d", o,
    math.random(math.min(frame + 9 * o + 1, head), head)))
end
LUA

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); ${seconds} s per wrk run, 32 connections"
results=()
for size in $sizes; do
  data="$work/data-$size"
  generate "$size" "$work/rows.csv"
  rows=$(( size * 4 / 9 ))
  start=$(now)
  "$okrctl" import "$root/tools/samples/hr-org.json" --data "$data" > /dev/null
  head=$("$okrctl" import "$work/rows.csv" --data "$data" --json | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
  import_s=$(since "$start")
  echo "log of $head events: imported in $import_s s" >&2
  read -r admin auditor <<<"$(tokens "$work/tokens.json")"

  start=$(now)
  read -r okrd_pid okrd_port <<<"$(start_server okrd "$okrd" --data "$data" --listen 127.0.0.1:0 \
    --tokens "$work/tokens.json" --dashboard '' --log-format json)"
  pids+=("$okrd_pid")
  startup_s=$(since "$start")
  url="http://127.0.0.1:$okrd_port"

  # The whole cascade, three times, with okrd's memory sampled meanwhile.
  rss_before=$(rss_kb "$okrd_pid")
  echo "$rss_before" > "$work/peak"
  ( peak=0; while :; do r=$(rss_kb "$okrd_pid" 2>/dev/null || echo 0); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$work/peak"; sleep 0.02; done ) &
  sampler=$!
  cascade_times=""
  for _ in 1 2 3; do
    t=$(curl -s -o "$work/cascade.json" -w '%{time_total}' "$url/v1/cascade?cycle=2026-q4")
    cascade_times="$cascade_times $t"
  done
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  cascade_mb=$(awk -v b="$(wc -c < "$work/cascade.json")" 'BEGIN { printf "%.1f", b / 1e6 }')
  rss_growth=$(( ($(cat "$work/peak") - rss_before) / 1024 ))

  as_of=$(OBJECTIVES=$(( rows / 4 )) HEAD="$head" FRAME="$(( head - rows * 9 / 4 ))" \
    wrk_run "$work/as_of.lua" "$url")

  # Durable writes: the bare synced-Put handler and okrd, alternating.
  read -r bare_pid bare_port <<<"$(start_server bare "$bare" --threads 16 --durable "$work/bare-db")"
  pids+=("$bare_pid")
  bare1=$(KRS="$rows" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "http://127.0.0.1:$bare_port")
  okrd1=$(KRS="$rows" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "$url")
  okrd2=$(KRS="$rows" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "$url")
  bare2=$(KRS="$rows" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "http://127.0.0.1:$bare_port")
  stop_server "$bare_pid"; rm -rf "$work/bare-db"

  start=$(now)
  OKR_TOKEN="$auditor" "$okrctl" verify --server "$url" > /dev/null
  verify_server_s=$(since "$start")
  stop_server "$okrd_pid"
  start=$(now)
  "$okrctl" verify --data "$data" > /dev/null
  verify_data_s=$(since "$start")
  rm -rf "$data"

  results+=("$head|$import_s|$startup_s|$bare1|$bare2|$okrd1|$okrd2|$as_of|$cascade_times|$cascade_mb|$rss_growth|$verify_server_s|$verify_data_s")
done

table_header
line "import from CSV, s" '{ print $2 }'
line "okrd start-up, s" '{ print $3 }'
line "bare POST, one synced Put: req/s, mean of two runs (p99 ms of each)" '{ split($4, a, " "); split($5, b, " "); printf "%.0f (%.1f, %.1f)", (a[1] + b[1]) / 2, a[3], b[3] }'
line "okrd durable POST check-ins: req/s, mean of two runs (p99 ms of each)" '{ split($6, a, " "); split($7, b, " "); printf "%.0f (%.1f, %.1f)", (a[1] + b[1]) / 2, a[3], b[3] }'
line "okrd / bare synced Put" '{ split($4, a, " "); split($5, b, " "); split($6, c, " "); split($7, d, " "); printf "%.2f", (c[1] + d[1]) / (a[1] + b[1]) }'
line "objective as of a random seq: p50 / p99 ms" '{ split($8, a, " "); printf "%.2f / %.2f", a[2], a[3] }'
line "whole cascade: s per answer" '{ print $9 }'
line "whole cascade: MB, okrd RSS growth MiB" '{ printf "%s, +%s", $10, $11 }'
line "verify --server: events/s" '{ printf "%.0f", $1 / $12 }'
line "verify --data: events/s (wall, opening included)" '{ printf "%.0f", $1 / $13 }'

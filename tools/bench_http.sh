#!/usr/bin/env bash
# HTTP benchmark of okrd on the demo data, each route beside a bare
# cpp-httplib handler in the same run (docs/BENCHMARKS.md); okrd's durable
# POST also beside a bare handler doing one synced RocksDB Put per request.
#   tools/bench_http.sh [SECONDS]      default 10 s per measurement
#   DATA=DIR KR=ID tools/bench_http.sh  on a copy of an existing data directory
#     (e.g. one made with okrctl import), posting check-ins to key result ID
#     (default kr-records-migrated, the demo's); okrd makes demo tokens there.
#   ONLY_POST=1 ...                    only the POST rows
#   OKRD=BINARY ...                    another okrd build (e.g. before a change)
# Installs wrk (Debian) when missing; builds okrd and bench_http_bare.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
build_dir="${BUILD_DIR:-build}"
connections=32

if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk >/dev/null
fi
bash tools/install-deps.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j 2 --target okrd bench_http_bare >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Waits for a server's "listening on" line and prints its port.
port_of() {  # name
  local port
  for _ in $(seq 3000); do
    port=$(grep -oE 'listening on (http://127.0.0.1:)?[0-9]+' "$work/$1.out" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && { echo "$port"; return; }
    sleep 0.1
  done
  echo "$1 did not start" >&2; cat "$work/$1.err" >&2; exit 1
}

if [ -n "${DATA:-}" ]; then cp -a "$DATA" "$work/data"; fi
kr="${KR:-kr-records-migrated}"
"${OKRD:-$build_dir/api/okrd}" --data "$work/data" --listen 127.0.0.1:0 --demo --log-format json \
  >"$work/okrd.out" 2>"$work/okrd.err" &
pids+=($!)
"$build_dir/tools/bench_http_bare" --threads 16 >"$work/bare.out" 2>"$work/bare.err" &
pids+=($!)
"$build_dir/tools/bench_http_bare" --threads 16 --durable "$work/synced" >"$work/synced.out" 2>"$work/synced.err" &
pids+=($!)
okrd_port=$(port_of okrd)
bare_port=$(port_of bare)
synced_port=$(port_of synced)
token=$(sed -n 's/.*"admin": *"\([^"]*\)".*/\1/p' "$work/data/demo-credentials.json")
head=$(curl -s "http://127.0.0.1:$okrd_port/healthz" | sed -n 's/.*"head_seq":\([0-9]*\).*/\1/p')
old_seq=$((head / 3))

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"value": 42, "note": "benchmark check-in"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("OKR_TOKEN")
LUA

# Prints "req/s p50 p99" for one wrk run.
run() {  # url [lua]
  local out
  if [ $# -gt 1 ]; then
    out=$(OKR_TOKEN="$token" wrk -t2 -c$connections -d"${seconds}s" --latency -s "$2" "$1")
  else
    out=$(wrk -t2 -c$connections -d"${seconds}s" --latency "$1")
  fi
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; fi
  # wrk leaves requests that time out (2 s) out of its latencies: say so.
  echo "$out" | grep "Socket errors" | sed "s|^ *|  $1: |" >&2 || true
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $p50 $p99"
}

echo "okrd ${DATA:-demo}: head seq $head; $connections connections, ${seconds}s each, wrk -t2; $(nproc) cores"
printf '%-52s %12s %10s %10s %8s\n' "route" "req/s" "p50" "p99" "ratio"
row() {  # label okrd-result bare-result
  read -r r1 a1 b1 <<<"$2"; read -r r2 _ _ <<<"$3"
  printf '%-52s %12s %10s %10s %8.2f\n' "$1" "$r1" "$a1" "$b1" "$(echo "$r1 / $r2" | bc -l)"
}
if [ -z "${ONLY_POST:-}" ]; then
  bare_get=$(run "http://127.0.0.1:$bare_port/v1/objectives/x")
  printf '%-52s %12s %10s %10s %8s\n' "bare cpp-httplib GET (ceiling)" $bare_get "1.00"
  row "GET /v1/objectives/hr-reduce-attrition" "$(run "http://127.0.0.1:$okrd_port/v1/objectives/hr-reduce-attrition")" "$bare_get"
  cycle=$(curl -s "http://127.0.0.1:$okrd_port/v1/cycles" | grep -oE '"id":"[0-9]{4}-q[1-4]"' | tail -1 | cut -d'"' -f4)
  row "GET /v1/cascade?cycle=$cycle" "$(run "http://127.0.0.1:$okrd_port/v1/cascade?cycle=$cycle")" "$bare_get"
  # A poller revalidating the unchanged cascade: its ETag as If-None-Match, 304 each time.
  tag=$(curl -si "http://127.0.0.1:$okrd_port/v1/cascade?cycle=$cycle" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
  printf 'wrk.headers["If-None-Match"] = %s\n' "'$tag'" >"$work/revalidate.lua"
  row "GET /v1/cascade?cycle=$cycle If-None-Match (304)" "$(run "http://127.0.0.1:$okrd_port/v1/cascade?cycle=$cycle" "$work/revalidate.lua")" "$bare_get"
  row "GET /v1/objectives/hr-hire-engineers?as_of=$old_seq" "$(run "http://127.0.0.1:$okrd_port/v1/objectives/hr-hire-engineers?as_of=$old_seq")" "$bare_get"
fi
bare_post=$(run "http://127.0.0.1:$bare_port/v1/key-results/x/check-ins" "$work/post.lua")
printf '%-52s %12s %10s %10s %8s\n' "bare cpp-httplib POST (ceiling)" $bare_post "1.00"
synced_post=$(run "http://127.0.0.1:$synced_port/v1/key-results/x/check-ins" "$work/post.lua")
row "bare POST, one synced RocksDB Put" "$synced_post" "$bare_post"
okrd_post=$(run "http://127.0.0.1:$okrd_port/v1/key-results/$kr/check-ins" "$work/post.lua")
row "POST check-ins (durable, group commit)" "$okrd_post" "$bare_post"
read -r r1 _ p1 <<<"$okrd_post"; read -r r2 _ p2 <<<"$synced_post"
printf 'okrd durable POST / synced Put: %.2f x the requests/s; p99 %s against %s\n' \
  "$(echo "$r1 / $r2" | bc -l)" "$p1" "$p2"
batches=$(curl -s "http://127.0.0.1:$okrd_port/metrics" | awk '/^okrd_append_batch_events_(sum|count)/ {print $2}' | paste -sd' ')
echo "append batches: events sum / batches = $batches"

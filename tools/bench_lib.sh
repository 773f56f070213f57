# Helpers the at-size benchmarks share (sourced by tools/bench_scale.sh and
# tools/bench_streams.sh, which set $root and call bench_setup first).

# Checks the binaries are built, installs wrk, and makes $work (a fresh
# directory, removed at exit with every server in $pids killed).
bench_setup() {  # name binary...
  local name="$1"; shift
  for binary in "$@"; do
    [ -x "$binary" ] || { echo "$name: $binary is missing; build it first" >&2; exit 2; }
  done
  need_wrk
  work="$(mktemp -d "${TMPDIR:-/tmp}/okrd-$name-XXXXXX")"
  pids=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Installs wrk (Debian) when missing.
need_wrk() {
  command -v wrk >/dev/null && return
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk >/dev/null
}

# Rows for a log of about $1 events: 9 events per 4 rows (an objective, four
# key results, four check-ins).
generate() { bash "$root/tools/bench_rows.sh" "$(( $1 * 4 / 9 ))" "$2"; }

# A tokens file with an admin and an auditor, and with a second argument
# a replica too; prints the tokens in that order.
tokens() {  # file [replica]
  local admin auditor replica entries
  admin="scale-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  auditor="scale-auditor-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  replica="scale-replica-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  entry() { printf '{"actor":"%s","role":"%s","units":[],"token_sha256":"%s"}' "$1" "$2" \
    "$(printf '%s' "$3" | sha256sum | cut -d' ' -f1)"; }
  entries="$(entry bench admin "$admin"),$(entry auditor auditor "$auditor")"
  [ -n "${2:-}" ] && entries="$entries,$(entry replica replica "$replica")"
  echo "[$entries]" > "$1"
  chmod 600 "$1"
  if [ -n "${2:-}" ]; then echo "$admin $auditor $replica"; else echo "$admin $auditor"; fi
}

# Starts a server writing to $work/NAME.out; prints its pid, then its port
# (the caller adds the pid to $pids: this runs in a subshell).
start_server() {  # name command...
  local name="$1"; shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$! port=""
  for _ in $(seq 1 30000); do
    port=$(grep -oE 'listening on (http://127.0.0.1:)?[0-9]+' "$work/$name.out" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    sleep 0.02
  done
  [ -n "$port" ] || { echo "$name did not start" >&2; cat "$work/$name.err" >&2; exit 1; }
  echo "$pid $port"
}

# Stops a server start_server started and waits until it has exited (it
# is not this shell's child, so `wait` cannot): okrd flushes its log and
# releases the data directory's lock as it stops.
stop_server() {  # pid...
  kill "$@" 2>/dev/null || true
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done
}

# "req/s p50 p99" of one wrk run (p50 and p99 in ms), $seconds long.
wrk_run() {  # lua url
  local out
  out=$(wrk -t2 -c32 -d"${seconds}s" --latency -s "$1" "$2")
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" | grep "Non-2xx" >&2; fi
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }'
}

# Posts a check-in to a random one of $KRS key results kr-000000… as $OKR_TOKEN.
write_post_lua() {  # file
  cat > "$1" <<'LUA'
local krs = tonumber(os.getenv("KRS"))
request = function()
  local path = string.format("/v1/key-results/kr-%06d/check-ins", math.random(0, krs - 1))
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("OKR_TOKEN")},
    '{"value": 42, "note": "benchmark check-in"}')
end
LUA
}

# The results table: a column per entry of $results ("EVENTS|field|…"),
# its header from table_header, then a row per `line LABEL AWK-PROGRAM`
# (the program reads an entry's fields as $1, $2 …).
table_header() {
  printf '\n| measurement |'; for r in "${results[@]}"; do printf ' %s events |' "${r%%|*}"; done
  printf '\n|---|'; for _ in "${results[@]}"; do printf -- '---:|'; done; echo
}
line() {  # label awk-program-on-fields
  printf '| %s |' "$1"
  for r in "${results[@]}"; do printf ' %s |' "$(echo "$r" | awk -F'|' "$2")"; done
  echo
}

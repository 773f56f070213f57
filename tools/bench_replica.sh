#!/usr/bin/env bash
# Read replicas at size (docs/BENCHMARKS.md, "Read replicas"). For each log
# size it imports a generated organisation from CSV (as tools/bench_scale.sh
# does), starts okrd on it as the primary and measures, in one run:
#   - catch-up: a new replica (okrd --replica-of, empty data directory)
#     started until its head is the primary's, and until it has folded it
#     too, beside okrctl verify --data of the primary's log (the offline
#     check of the same events: the ceiling of reading and hashing them);
#   - lag under writes, once the new replica has written the snapshot its
#     copy owed: durable POST check-ins at 32 connections on the
#     primary (wrk) while a probe, one write at a time, times from the
#     primary's answer to the replica's /healthz showing that seq;
#     p50 / p99 / max of the probe, and the write throughput beside it.
#   tools/bench_replica.sh [BUILD_DIR]              (default build)
#   SIZES="10000 100000" SECONDS_EACH=5 tools/bench_replica.sh   (a shorter run)
# Installs wrk (Debian) when missing. Everything happens in a fresh
# directory under $TMPDIR (or /tmp), removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
sizes="${SIZES:-10000 100000 1000000}"
seconds="${SECONDS_EACH:-10}"
okrctl="$build/tools/okrctl"
okrd="$build/api/okrd"
source "$root/tools/bench_lib.sh"
bench_setup replica "$okrctl" "$okrd"
write_post_lua "$work/post.lua"

health() { curl -s "$1/healthz"; }
json_u() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
# FIELD = field $2 of /healthz at http://127.0.0.1:$1 (empty when it does
# not answer), asked through bash's own /dev/tcp. The waits below ask
# hundreds of times a second; a curl started for each took 26 ms of CPU
# here, most of a core taken from the okrd being measured.
health_field() {  # port field
  local body
  FIELD=
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -d '' body <&3 || true
  exec 3<&-
  if [[ $body =~ \"$2\":([0-9]+) ]]; then FIELD=${BASH_REMATCH[1]}; fi
}
# A sleep that starts no process: a read that times out on a pipe nothing
# writes to (`sleep` took about 8 ms of CPU a call here).
exec {pause_fd}<> <(:)
pause() { read -r -t "$1" -u "$pause_fd" || true; }

# Seconds until the replica on port $1 reports $2 in field $3 of /healthz.
wait_for() {  # port seq field
  local start; start=$(now)
  until health_field "$1" "$3"; [ "$FIELD" = "$2" ]; do pause 0.01; done
  since "$start"
}

# Waits (at most 60 s) until okrd on port $1 has a snapshot, then 3 s
# more: the snapshot a fresh import or a replica's copy owes replays the
# log and encodes it (about 10 s of a core at 1M events). Measured beside
# the replica's, the primary's writes fell by up to 40 % at 1M; the lag
# measured is the steady state's.
settle() {  # port
  local start; start=$(now)
  until curl -s "http://127.0.0.1:$1/metrics" | grep -q '^okrd_snapshot_age_events [0-9]'; do
    awk -v a="$start" -v b="$(now)" 'BEGIN { exit !(b - a > 60) }' && break
    pause 0.2
  done
  pause 3
}

# One write on the primary at a time: ms from its answer to the replica's
# /healthz showing its seq, one line each, until $work/stop exists.
probe() {  # primary replica_port admin
  local i=0 seq t
  while [ ! -e "$work/stop" ]; do
    i=$((i + 1))
    seq=$(curl -s -X POST "$1/v1/units" -H "Authorization: Bearer $3" \
      -H 'Content-Type: application/json' \
      -d "{\"id\":\"probe-$i\",\"kind\":\"team\",\"name\":\"Probe\",\"parent\":\"people\"}" | json_u seq)
    t=$(now)
    until health_field "$2" head_seq; [ "${FIELD:-0}" -ge "$seq" ]; do pause 0.001; done
    awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
  done
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); ${seconds} s of writes, 32 connections"
results=()
for size in $sizes; do
  data="$work/data-$size"
  generate "$size" "$work/rows.csv"
  rows=$(( size * 4 / 9 ))
  "$okrctl" import "$root/tools/samples/hr-org.json" --data "$data" > /dev/null
  head=$("$okrctl" import "$work/rows.csv" --data "$data" --json | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
  echo "log of $head events" >&2
  read -r admin _ replica <<<"$(tokens "$work/tokens.json" replica)"
  printf '%s\n' "$replica" > "$work/replica.token"
  chmod 600 "$work/replica.token"

  start=$(now)
  "$okrctl" verify --data "$data" > /dev/null
  verify_s=$(since "$start")

  read -r primary_pid primary_port <<<"$(start_server primary "$okrd" --data "$data" \
    --listen 127.0.0.1:0 --tokens "$work/tokens.json" --dashboard '' --log-format json)"
  pids+=("$primary_pid")
  primary="http://127.0.0.1:$primary_port"
  # The primary's own start-up work first (the re-hash of its log in the
  # background, the snapshot a fresh import owes): the catch-up measured
  # is the replica's, not the two sharing the cores.
  until health "$primary" | grep -q '"state":"verified"'; do sleep 0.05; done
  settle "$primary_port"
  head=$(health "$primary" | json_u head_seq)

  start=$(now)
  read -r replica_pid replica_port <<<"$(start_server replica "$okrd" --data "$work/replica-$size" \
    --listen 127.0.0.1:0 --tokens "$work/tokens.json" --dashboard '' --log-format json \
    --replica-of "$primary" --replica-token "$work/replica.token")"
  pids+=("$replica_pid")
  copied_s=$(awk -v a="$(since "$start")" -v b="$(wait_for "$replica_port" "$head" head_seq)" 'BEGIN { printf "%.2f", a + b }')
  folded_s=$(awk -v a="$copied_s" -v b="$(wait_for "$replica_port" "$head" projected_seq)" 'BEGIN { printf "%.2f", a + b }')

  settle "$replica_port"
  rm -f "$work/stop"
  probe "$primary" "$replica_port" "$admin" > "$work/lag.txt" &
  prober=$!
  writes=$(KRS="$rows" OKR_TOKEN="$admin" wrk_run "$work/post.lua" "$primary")
  touch "$work/stop"
  wait "$prober"
  lag=$(sort -n "$work/lag.txt" | awk '{ v[NR] = $1 } END {
    p99 = int(NR * 0.99 + 0.5); if (p99 < 1) p99 = 1
    printf "%.0f %.0f %.0f %d", v[int((NR + 1) / 2)], v[p99], v[NR], NR }')
  stop_server "$replica_pid" "$primary_pid"
  rm -rf "$data" "$work/replica-$size"
  results+=("$head|$verify_s|$copied_s|$folded_s|$writes|$lag")
done

table_header
line "okrctl verify --data (offline): events/s" '{ printf "%.0f", $1 / $2 }'
line "new replica, copied: events/s (s)" '{ printf "%.0f (%.2f)", $1 / $3, $3 }'
line "new replica, copied and folded: events/s (s)" '{ printf "%.0f (%.2f)", $1 / $4, $4 }'
line "copy / offline verify" '{ printf "%.2f", $2 / $3 }'
line "writes on the primary meanwhile: req/s (p99 ms)" '{ split($5, a, " "); printf "%.0f (%.1f)", a[1], a[3] }'
line "lag, answer to replica: p50 / p99 / max ms (probes)" '{ split($6, a, " "); printf "%s / %s / %s (%s)", a[1], a[2], a[3], a[4] }'

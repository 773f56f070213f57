#!/usr/bin/env bash
# A large organisation for the dashboard's test at size, imported offline:
#   tests/dashboard/big_org.sh OKRCTL_BINARY DATA_DIR [OBJECTIVES]
# One company, 10 departments, 10 teams in each, 20 people in each team
# (2,111 units); OBJECTIVES (default 20,000) objectives in cycle "big",
# one in twenty owned by a team and the rest by people, one key result each,
# and a check-in on every third key result so the roll-ups differ.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OKRCTL_BINARY DATA_DIR [OBJECTIVES]" >&2
  exit 2
fi
okrctl="$1"
data="$2"
objectives="${3:-20000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/okrd-big-org-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The frame: units parent first, as the JSON import wants them.
awk 'BEGIN {
  print "{\"format\": \"okrd-okrs\", \"version\": 1, \"units\": ["
  print "{\"id\": \"co\", \"kind\": \"company\", \"name\": \"Big Co\"}"
  for (d = 0; d < 10; d++) {
    printf ",{\"id\": \"d%d\", \"kind\": \"department\", \"name\": \"Department %d\", \"parent\": \"co\"}\n", d, d
    for (t = 0; t < 10; t++) {
      printf ",{\"id\": \"d%d-t%d\", \"kind\": \"team\", \"name\": \"Team %d.%d\", \"parent\": \"d%d\"}\n", d, t, d, t, d
      for (p = 0; p < 20; p++)
        printf ",{\"id\": \"d%d-t%d-p%d\", \"kind\": \"person\", \"name\": \"Person %d.%d.%d\", \"parent\": \"d%d-t%d\"}\n", d, t, p, d, t, p, d, t
    }
  }
  print "], \"cycles\": [{\"id\": \"big\", \"name\": \"Big year\", \"starts\": \"2026-01-01\", \"ends\": \"2026-12-31\"}]}"
}' > "$work/frame.json"

# Objective o goes round the teams and people so every subtree has some.
awk -v n="$objectives" 'BEGIN {
  print "cycle,owner,objective_id,objective_title,kr_id,kr_title,start,target,current,checkin_date"
  for (o = 0; o < n; o++) {
    d = o % 10; t = int(o / 10) % 10; p = int(o / 100) % 20
    owner = (p == 19) ? sprintf("d%d-t%d", d, t) : sprintf("d%d-t%d-p%d", d, t, p)
    current = (o % 3 == 0) ? (o * 7) % 101 : ""
    date = (o % 3 == 0) ? "2026-06-01" : ""
    printf "big,%s,o%d,Objective %d,k%d,Key result %d,0,100,%s,%s\n", owner, o, o, o, o, current, date
  }
}' > "$work/rows.csv"

"$okrctl" import "$work/frame.json" --data "$data" > /dev/null
"$okrctl" import "$work/rows.csv" --data "$data" --json

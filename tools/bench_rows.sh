#!/usr/bin/env bash
# The CSV the okrctl and scale benchmarks import: ROWS rows, one per key
# result, four key results per objective, a check-in on each (9 events per
# 4 rows), the objectives spread over the sample frame's six units
# (tools/samples/hr-org.json), all in cycle 2026-q4.
#   tools/bench_rows.sh ROWS FILE
set -euo pipefail
awk -v rows="$1" 'BEGIN {
  split("people talent-acquisition people-operations learning-development total-rewards operations", owners, " ")
  print "cycle,owner,objective_id,objective_title,parents,kr_id,kr_title,metric,start,target,unit,current,checkin_date"
  for (r = 0; r < rows; r++) {
    o = int(r / 4)
    printf "2026-q4,%s,obj-%06d,Objective number %d,,kr-%06d,Key result %d,number,0,100,points,%d,2026-11-%02d\n",
           owners[o % 6 + 1], o, o, r, r, r % 100, r % 20 + 1
  }
}' > "$2"

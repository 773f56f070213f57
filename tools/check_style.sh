#!/usr/bin/env bash
# The house rules a reviewer should not have to check by eye (STYLE.md):
#   1. every C++ file is as .clang-format formats it;
#   2. no function of the libraries, okrd or okrctl is longer than
#      max_function_lines, counted as clang-tidy's readability-function-size
#      counts (tools/function_lines.pl: a reading of the formatted source,
#      seconds where clang-tidy took minutes of CI);
#   3. no source file outside tests/ and the benchmarks is longer than
#      max_file_lines.
#   tools/check_style.sh
# Prints every breach and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
max_function_lines=70
max_file_lines=600
failed=0

mapfile -t cxx < <(git ls-files '*.cc' '*.h')
# Everything that ships, without the tests and the benchmarks.
mapfile -t shipped < <(git ls-files 'eventstore/*' 'projections/*' 'api/*' 'schemas/*' 'tools/*' |
  grep -E '\.(cc|h|js)$' | grep -v -E '^tools/bench_')

unformatted="$(clang-format --style=file --dry-run "${cxx[@]}" 2>&1 | grep -E '^[^ ].*: (warning|error):' |
  cut -d: -f1 | sort -u || true)"
if [ -n "$unformatted" ]; then
  echo "not formatted as .clang-format says (clang-format -i --style=file FILE):"
  echo "$unformatted" | sed 's/^/  /'
  failed=1
fi

for f in "${shipped[@]}"; do
  n=$(wc -l <"$f")
  if [ "$n" -gt "$max_file_lines" ]; then
    echo "$f: $n lines (at most $max_file_lines outside tests and benchmarks)"
    failed=1
  fi
done

mapfile -t code < <(printf '%s\n' "${shipped[@]}" | grep -E '\.(cc|h)$')
status=0
long="$(perl tools/function_lines.pl "$max_function_lines" "${code[@]}")" || status=$?
if [ "$status" -gt 1 ]; then
  echo "tools/function_lines.pl could not read the sources (status $status)"
  failed=1
fi
if [ -n "$long" ]; then
  echo "functions over $max_function_lines lines (name the steps as functions):"
  echo "$long" | sed 's/^/  /'
  failed=1
fi

[ "$failed" -eq 0 ] && echo "check_style: formatted; no function over $max_function_lines lines; no file over $max_file_lines lines"
exit "$failed"

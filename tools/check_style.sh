#!/usr/bin/env bash
# The house rules a reviewer should not have to check by eye (STYLE.md):
#   1. every C++ file is as .clang-format formats it;
#   2. no function of the libraries, okrd or okrctl is longer than
#      kMaxFunctionLines (clang-tidy's readability-function-size);
#   3. no source file outside tests/ and the benchmarks is longer than
#      kMaxFileLines.
#   tools/check_style.sh BUILD_DIR     (BUILD_DIR holds compile_commands.json)
# Prints every breach and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:?usage: tools/check_style.sh BUILD_DIR}"
jobs="${JOBS:-2}"
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

mapfile -t units < <(printf '%s\n' "${shipped[@]}" | grep -E '\.cc$')
long="$(printf '%s\n' "${units[@]}" | xargs -P "$jobs" -n 4 clang-tidy -p "$build_dir" --quiet \
  -checks='-*,readability-function-size' \
  -config="{CheckOptions: [{key: readability-function-size.LineThreshold, value: $max_function_lines}]}" \
  -header-filter="^$(pwd)/(eventstore|projections|api|tools)/" 2>/dev/null |
  grep -E 'warning: function .* exceeds recommended size|note: [0-9]+ lines' | paste - - |
  sed -E 's/: warning: function (.*) exceeds.*note: ([0-9]+) lines.*/: \1, \2 lines/' | sort -u || true)"
if [ -n "$long" ]; then
  echo "functions over $max_function_lines lines (name the steps as functions):"
  echo "$long" | sed "s#^$(pwd)/#  #"
  failed=1
fi

[ "$failed" -eq 0 ] && echo "check_style: formatted; no function over $max_function_lines lines; no file over $max_file_lines lines"
exit "$failed"

#!/usr/bin/env bash
# tools/function_lines.pl, which tools/check_style.sh uses to hold functions
# to 70 lines, against clang-tidy's readability-function-size on a fixture of
# the shapes it must tell apart (tests/fixtures/function_lines.cc): both must
# report exactly the functions and line counts of function_lines.expected.
set -euo pipefail
cd "$(dirname "$0")/.."
fixture=tests/fixtures/function_lines.cc
expected=tests/fixtures/function_lines.expected
failed=0

# "LINE NAME COUNT" per function over 3 lines; a constructor by its class.
ours="$(perl tools/function_lines.pl 3 "$fixture" || [ $? -eq 1 ])"
ours="$(echo "$ours" | sed -E 's/^[^:]+:([0-9]+): (.*), ([0-9]+) lines$/\1 \2 \3/' |
  sed -E 's/^([0-9]+) constructor /\1 Counter /')"
tidy="$(clang-tidy --quiet -checks='-*,readability-function-size' \
  -config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 3}]}' \
  "$fixture" -- -std=c++20 2>/dev/null |
  grep -E 'warning: function .* exceeds|note: [0-9]+ lines' | paste - - |
  sed -E "s/^[^:]+:([0-9]+):[0-9]+: warning: function '([^']+)' exceeds.*note: ([0-9]+) lines.*/\1 \2 \3/")"

if ! diff <(cat "$expected") <(echo "$ours"); then
  echo "function_lines.pl differs from $expected (above: < expected, > found)"
  failed=1
fi
if ! diff <(cat "$expected") <(echo "$tidy"); then
  echo "clang-tidy differs from $expected (above: < expected, > found)"
  failed=1
fi
[ "$failed" -eq 0 ] && echo "function_lines: $(wc -l <"$expected") functions, as clang-tidy counts them"
exit "$failed"

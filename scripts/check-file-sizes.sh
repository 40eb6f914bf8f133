#!/usr/bin/env bash
# Fails when a source file of the repository passes 500 lines: a file that
# long holds more than one job, and is split by what it does (one
# resource, one concept per file). Source is what git tracks with a code
# ending (Rust, shell, JavaScript, HTML, Python) and the Dockerfiles;
# documents, lock files and data are not counted, nor the pinned
# third-party bundles a crate serves (its assets/, written by a refresh
# script, not by hand).
#
#   scripts/check-file-sizes.sh        # run by .ci/run
#   MAX_LINES=400 scripts/check-file-sizes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
max_lines="${MAX_LINES:-500}"
too_long=()
while IFS= read -r file; do
  lines=$(wc -l <"$file")
  if [ "$lines" -gt "$max_lines" ]; then
    too_long+=("$file: $lines lines")
  fi
done < <(git ls-files -- '*.rs' '*.sh' '*.mjs' '*.js' '*.html' '*.py' '*Dockerfile*' 'start.sh' 'stop.sh' 'test.sh' '.ci/run' ':!:crates/*/assets/*')
if [ "${#too_long[@]}" -gt 0 ]; then
  echo "source files over $max_lines lines (split them by what they do):" >&2
  printf '  %s\n' "${too_long[@]}" >&2
  exit 1
fi
echo "every source file is at most $max_lines lines"

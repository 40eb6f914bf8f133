#!/usr/bin/env bash
# The curl examples of the docs, so that a test can run each one: a command
# in the docs that does not work is a bug.
#
# An example is a line of a fenced code block of README.md or docs/*.md
# that starts with `curl` and names `localhost:<port>` (with or without
# `http://`); a line ending in `\` goes on on the next one. The README's
# quick start also opens URLs (`open http://localhost:<port>/…`): each of
# those is an example too, as `curl <url>`. Comments after a command (`#`
# outside quotes) are left out.
#
#   tests/docs/curl-examples.sh          # lists them: file:line<TAB>command
#   tests/docs/curl-examples.sh --run    # runs each against a stack on the
#                                        # default ports (./start.sh, dev)
#
# Sourced (tests/native/run.sh does), it defines:
#
#   doc_examples [FILE…]        lists them (default: README.md docs/*.md)
#   run_doc_examples [FROM=TO…] runs each with `curl -fsSL`, localhost:FROM
#                               rewritten to 127.0.0.1:TO; given a map, an
#                               example on a port outside it fails (it would
#                               reach another stack). Fails unless every
#                               example answered a 2xx.
#
# Run from the repository's root (the script goes there when run).

doc_examples() {
  local files=("$@")
  if [ "${#files[@]}" = 0 ]; then
    files=(README.md docs/*.md)
  fi
  awk '
    # The command without a trailing comment: a # that starts a word and is
    # outside quotes.
    function strip_comment(line,   i, c, quote, prev) {
      quote = ""
      prev = " "
      for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (quote != "") {
          if (c == quote) quote = ""
        } else if (c == "\047" || c == "\"") {
          quote = c
        } else if (c == "#" && prev ~ /[ \t]/) {
          line = substr(line, 1, i - 1)
          break
        }
        prev = c
      }
      sub(/[ \t]+$/, "", line)
      return line
    }
    FNR == 1 { fenced = 0; pending = "" }
    /^[ \t]*```/ { fenced = !fenced; pending = ""; next }
    !fenced { next }
    pending != "" {
      line = $0
      sub(/^[ \t]+/, "", line)
      command = command " " line
      if (command ~ /\\$/) { sub(/[ \t]*\\$/, "", command); next }
      print pending "\t" strip_comment(command)
      pending = ""
      next
    }
    /^[ \t]*curl[ \t]/ && /localhost:[0-9]/ {
      command = $0
      sub(/^[ \t]+/, "", command)
      if (command ~ /\\$/) {
        sub(/[ \t]*\\$/, "", command)
        pending = FILENAME ":" FNR
        next
      }
      print FILENAME ":" FNR "\t" strip_comment(command)
      next
    }
    FILENAME == "README.md" && /^[ \t]*open[ \t]+http:\/\/localhost:[0-9]/ {
      url = $2
      print FILENAME ":" FNR "\tcurl " url
    }
  ' "${files[@]}"
}

run_doc_examples() {
  local map=("$@") where command pair from to port code failed=0 count=0
  while IFS=$'\t' read -r where command; do
    count=$((count + 1))
    for pair in "${map[@]}"; do
      from="${pair%%=*}"
      to="${pair#*=}"
      command="${command//localhost:$from/127.0.0.1:$to}"
    done
    if [ "${#map[@]}" -gt 0 ] && [[ "$command" =~ localhost:([0-9]+) ]]; then
      port="${BASH_REMATCH[1]}"
      echo "FAILED: $where: port $port is not one of the stack's: $command" >&2
      failed=$((failed + 1))
      continue
    fi
    command="curl -fsSL --max-time 30 -o /dev/null -w '%{http_code}' ${command#curl }"
    if code="$(bash -c "$command")" && [[ "$code" =~ ^2[0-9][0-9]$ ]]; then
      echo "ok: $where ($code): $command"
    else
      echo "FAILED: $where (${code:-no answer}): $command" >&2
      failed=$((failed + 1))
    fi
  done < <(doc_examples)
  if [ "$count" = 0 ]; then
    echo "FAILED: no curl example found in the docs" >&2
    return 1
  fi
  [ "$failed" = 0 ] || {
    echo "FAILED: $failed of $count examples of the docs" >&2
    return 1
  }
  echo "ok: all $count examples of the docs answered a 2xx"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  case "${1:-}" in
    "") doc_examples ;;
    --run) run_doc_examples ;;
    *)
      echo "usage: $0 [--run]" >&2
      exit 2
      ;;
  esac
fi

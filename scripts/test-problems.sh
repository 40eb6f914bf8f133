#!/usr/bin/env bash
# Sourced by the shell tests (tests/shell/) that list every problem they find before they
# fail: `problem TEXT` prints one on stderr and counts it; `problems_end
# NAME WHAT` ends the test with status 1, saying how many, when there were
# any ("tests/shell/x.sh: 2 differences from stack.list").

problems=0
problem() {
  echo "$*" >&2
  problems=$((problems + 1))
}

problems_end() {
  if [ "$problems" -gt 0 ]; then
    echo "$1: $problems $2" >&2
    exit 1
  fi
}

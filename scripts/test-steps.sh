#!/usr/bin/env bash
# How the stack tests (tests/native/run.sh, tests/docker/run.sh) report:
# each step a heading with the seconds since the test began, each check
# passed an "ok:" line, and the first check failed a "FAILED:" line on
# stderr that ends the test with status 1. Sourced where the test begins.

started_at=$SECONDS
step() { printf '\n== %s (at %ds)\n' "$*" "$((SECONDS - started_at))"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }

# no_listener_on PORT...: fails when something still listens on one of the
# loopback PORTs.
no_listener_on() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      fail "something still listens on port $port"
    fi
  done
}

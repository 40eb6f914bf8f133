#!/usr/bin/env bash
# Waiting until a component just started is ready, in one place: start.sh,
# scripts/docker.sh, the benchmarks (bench/lib.sh, bench/eventstore.sh)
# and tests/api/schemathesis.sh source this file. The Rust harness has the
# same function, testkit::ready::wait_until, with the same checks and the
# same one-line errors (a test of testkit runs both and compares what they
# say); the end-to-end tests wait for a service with e2e::wait_ready.
#
#   await_ready NAME PID TIMEOUT LOG CHECK...
#
# is how every script waits: wait_until (below), and when NAME never gets
# ready, after wait_until's line, the last 20 lines of LOG (a file; "-":
# none), indented, all on stderr; it returns 1 and the caller decides to
# stop. When the time ran out while the process still runs, ready_hint (if
# set) goes before them: what sets the wait ("READY_TIMEOUT sets the wait").
#
#   wait_until NAME PID TIMEOUT CHECK...
#
# runs CHECK (a command, usually one of the checks below) until it succeeds,
# every ready_poll seconds (0.1). It returns 1 after one line on stderr as
# soon as it is clear that it never will:
#   NAME exited while starting      the process PID is gone
#   NAME not ready after TIMEOUTs   TIMEOUT seconds passed
# PID "-" watches no process (a check that covers several, or containers).
# With ready_dots=1, a dot goes to stdout for each second of waiting (at
# most one per check).
#
# Checks (each gives up within 2 s, and says nothing):
#   http_ready URL               answers 2xx
#   smtp_greets PORT             a server on 127.0.0.1:PORT sends a 220 greeting
#   redis_pings PORT             redis-server on 127.0.0.1:PORT answers PONG
#   postgres_accepts PORT [BIN]  PostgreSQL on 127.0.0.1:PORT accepts
#                                connections (BIN: its pg_isready)

# Set to 1 for a dot on stdout each second that wait_until waits.
ready_dots="${ready_dots:-0}"
# Seconds between two checks.
ready_poll="${ready_poll:-0.1}"
# Said before a log's last lines when the time ran out (see await_ready).
ready_hint="${ready_hint:-}"

# True while the process PID exists and has not exited (a zombie has
# exited; its parent has not reaped it yet).
pid_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$stat" ] || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

wait_until() {
  local name="$1" process="$2" timeout="$3" started="$SECONDS" shown="$SECONDS"
  shift 3
  until "$@" >/dev/null 2>&1; do
    if [ "$process" != - ] && { [ -z "$process" ] || ! pid_alive "$process"; }; then
      [ "$ready_dots" != 1 ] || echo
      echo "$name exited while starting" >&2
      return 1
    fi
    if [ $((SECONDS - started)) -ge "$timeout" ]; then
      [ "$ready_dots" != 1 ] || echo
      echo "$name not ready after ${timeout}s" >&2
      return 1
    fi
    if [ "$ready_dots" = 1 ] && [ "$SECONDS" -gt "$shown" ]; then
      shown="$SECONDS"
      printf .
    fi
    sleep "$ready_poll"
  done
}

await_ready() {
  local name="$1" process="$2" timeout="$3" log="$4"
  shift 4
  wait_until "$name" "$process" "$timeout" "$@" && return 0
  if [ "$log" != - ]; then
    {
      if [ -n "$ready_hint" ] && [ "$process" != - ] && pid_alive "$process"; then
        printf '%s; ' "$ready_hint"
      fi
      echo "the last 20 lines of $log:"
      tail -n 20 "$log" 2>/dev/null | sed 's/^/  /'
    } >&2
  fi
  return 1
}

http_ready() {
  curl -fs -o /dev/null --max-time 2 "$1"
}

smtp_greets() {
  local greeting=""
  # In a subshell: the connection closes with it.
  greeting="$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    printf '%s' "$line"
  )" || return 1
  [[ "$greeting" == 220[\ -]* ]]
}

redis_pings() {
  [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

postgres_accepts() {
  "${2:-pg_isready}" -q -h 127.0.0.1 -p "$1" -t 2
}

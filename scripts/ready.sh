#!/usr/bin/env bash
# Starting a component and waiting until it is ready, in one place: start.sh,
# the benchmarks (bench/lib.sh) and tests/api/schemathesis.sh source this
# file. The Rust harness has the same function, testkit::ready::wait_until,
# with the same checks and the same one-line errors (a test of testkit runs
# both and compares what they say).
#
#   wait_until NAME PID TIMEOUT CHECK...
#
# runs CHECK (a command, usually one of the checks below) until it succeeds,
# every 0.1 s. It returns 1 after one line on stderr as soon as it is clear
# that it never will:
#   NAME exited while starting      the process PID is gone
#   NAME not ready after TIMEOUTs   TIMEOUT seconds passed
# The caller adds what it knows (a log's last lines) and decides to stop.
# With ready_dots=1, a dot goes to stdout for each second of waiting.
#
# Checks (each gives up within 2 s, and says nothing):
#   http_ready URL               answers 2xx
#   smtp_greets PORT             a server on 127.0.0.1:PORT sends a 220 greeting
#   redis_pings PORT             redis-server on 127.0.0.1:PORT answers PONG
#   postgres_accepts PORT [BIN]  PostgreSQL on 127.0.0.1:PORT accepts
#                                connections (BIN: its pg_isready)

# Set to 1 for a dot on stdout each second that wait_until waits.
ready_dots="${ready_dots:-0}"

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
    if [ -z "$process" ] || ! pid_alive "$process"; then
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
    sleep 0.1
  done
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

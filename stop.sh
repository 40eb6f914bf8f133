#!/usr/bin/env bash
# Stops what ./start.sh started, and nothing else: the processes named by
# run/*.pid, each only while its command line is still the one start.sh ran.
# SIGTERM first (SIGINT for PostgreSQL: its fast shutdown); SIGKILL for what
# is still running 10 seconds later.
#
#   ./stop.sh                 stop the native stack
#   ./stop.sh stop-docker     remove the Docker stack (--volumes: its data too)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")"
source scripts/stack.sh

case "${1:-}" in
  "") ;;
  stop-docker)
    # The Docker stack (compose.yaml): containers and network; the data
    # volumes too with --volumes.
    shift
    exec scripts/docker.sh down "$@"
    ;;
  -h | --help)
    sed -n '2,8s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
  *)
    echo "unknown argument: $1" >&2
    sed -n '2,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac

stopped=()

# Sends each named component its stop signal, waits up to 10 s for them to
# exit, then sends SIGKILL to those still running.
stop_group() {
  local name pid names=() pids=() left i
  for name in "$@"; do
    pid="$(stack_pid "$name")"
    [ -f "$(stack_pidfile "$name")" ] || continue
    if [ -z "$pid" ] || ! pid_alive "$pid"; then
      rm -f "$(stack_pidfile "$name")"
      continue
    fi
    if ! stack_owns "$name" "$pid"; then
      echo "run/$name.pid: pid $pid is another program now; left alone" >&2
      rm -f "$(stack_pidfile "$name")"
      continue
    fi
    kill -"$(stack_stop_signal "$name")" "$pid" 2>/dev/null || true
    names+=("$name")
    pids+=("$pid")
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  for _ in $(seq 100); do
    left=0
    for pid in "${pids[@]}"; do
      ! pid_alive "$pid" || left=1
    done
    [ "$left" = 1 ] || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    name="${names[$i]}"
    pid="${pids[$i]}"
    if stack_owns "$name" "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      stopped+=("$name (pid $pid, killed: still running 10 s after SIG$(stack_stop_signal "$name"))")
    else
      stopped+=("$name (pid $pid)")
    fi
    rm -f "$(stack_pidfile "$name")"
  done
}

# The services first, while Redis and their databases still take their last
# writes; then the rest together.
stop_group "${stack_services[@]}"
others=()
for name in "${stack_components[@]}"; do
  case " ${stack_services[*]} " in *" $name "*) ;; *) others+=("$name") ;; esac
done
stop_group "${others[@]}"
[ -f "$(stack_pidfile postgres)" ] || rm -f "$stack_run/postgres.data"

if [ "${#stopped[@]}" -eq 0 ]; then
  echo "nothing was running"
else
  echo "stopped:"
  printf '  %s\n' "${stopped[@]}"
fi

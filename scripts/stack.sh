#!/usr/bin/env bash
# What the native stack runs, and how start.sh and stop.sh tell its
# processes apart from any other: each component has a pid file
# run/<name>.pid, and a pid counts as the component's only while the
# process's command line still names the component's program (from this
# checkout), so a pid that the system has since reused is never signalled.
# Sourced by start.sh and stop.sh.

stack_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# pid_alive, wait_until and the readiness checks.
# shellcheck source=scripts/ready.sh
source "$stack_root/scripts/ready.sh"
stack_run="$stack_root/run"
# The services, their ports and the servers' (stack.list).
# shellcheck source=scripts/manifest.sh
source "$stack_root/scripts/manifest.sh"

# The services, in the order start.sh starts them.
# shellcheck disable=SC2034 # used by start.sh
stack_services=("${manifest_services[@]}")
# Every component, in the order stop.sh stops them: the services first, so
# that they can still flush their acks to Redis while they shut down.
# redis and openbao run in dev, redis-prod, openbao-prod and postgres in
# prod.
# shellcheck disable=SC2034 # used by start.sh and stop.sh
stack_components=("${manifest_services[@]}" redis-commander maildev openbao openbao-prod postgres
  redis redis-prod)

stack_pidfile() { echo "$stack_run/$1.pid"; }
# The private PostgreSQL cluster's directory (POSTGRES_DATA), as start.sh
# recorded it when it started the server.
stack_postgres_data() {
  cat "$stack_run/postgres.data" 2>/dev/null || echo "$stack_root/data/prod/postgres"
}
stack_log() { echo "$stack_run/logs/$1.log"; }

# The pid recorded for a component, or nothing.
stack_pid() {
  local pid=""
  [ -f "$(stack_pidfile "$1")" ] && read -r pid <"$(stack_pidfile "$1")" 2>/dev/null
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# True when the live process pid is the component's own.
stack_owns() {
  local name="$1" pid="$2" cmdline
  pid_alive "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  case "$name" in
    redis | redis-prod)
      # redis-server rewrites its command line to its title; it runs in
      # the data directory that start.sh gives it.
      local dir="$stack_root/data/redis"
      [ "$name" = redis ] || dir="$stack_root/data/prod/redis"
      [[ "$cmdline" == *redis-server* ]] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ]
      ;;
    maildev) [[ "$cmdline" == *"$stack_root/tools/node_modules/.bin/maildev "* ]] ;;
    redis-commander) [[ "$cmdline" == *"$stack_root/tools/node_modules/.bin/redis-commander "* ]] ;;
    # The bao script of the virtualenv execs the Go binary it ships, under
    # the virtualenv's own path (the real one, where tools/openbao is a
    # symbolic link).
    openbao)
      [[ "$cmdline" == "$stack_root/tools/openbao/"*"/bao server -dev "* ]] ||
        [[ "$cmdline" == "$(readlink -f "$stack_root/tools/openbao")/"*"/bao server -dev "* ]]
      ;;
    openbao-prod)
      local server="/bao server -config=$stack_root/data/prod/openbao/config.hcl "
      [[ "$cmdline" == "$stack_root/tools/openbao/"*"$server" ]] ||
        [[ "$cmdline" == "$(readlink -f "$stack_root/tools/openbao")/"*"$server" ]]
      ;;
    postgres)
      # The postmaster runs in its data directory.
      [[ "$cmdline" == /usr/lib/postgresql/*/bin/postgres\ * ]] &&
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(stack_postgres_data)" ]
      ;;
    *) [[ "$cmdline" == "$stack_root/target/release/${manifest_binary[$name]:-$name} "* ]] ;;
  esac
}

# The signal that stops a component cleanly. PostgreSQL's SIGTERM waits for
# every client to disconnect; SIGINT (fast shutdown) ends their sessions.
stack_stop_signal() {
  case "$1" in
    postgres) echo INT ;;
    *) echo TERM ;;
  esac
}

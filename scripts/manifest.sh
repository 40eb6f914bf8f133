#!/usr/bin/env bash
# The stack's manifest (stack.list) read into bash: which services there
# are, their binaries, ports, port variables, readiness paths and
# databases, and the servers' default ports. Sourced by scripts/stack.sh
# (start.sh, stop.sh), bench/lib.sh, scripts/docker.sh and the tests; it
# reads the file once, when sourced, and stops the sourcing script with a
# one-line error when a row is malformed.
#
#   manifest_services        the services, in start order
#   manifest_servers         the servers
#   manifest_port[NAME]      NAME's default port
#   manifest_variable[NAME]  the variable that moves it (USER_PORT, ...)
#   manifest_binary[NAME]    a service's binary
#   manifest_ready[NAME]     a service's readiness path (/ready)
#   manifest_database[NAME]  a service's database (users, ...)
#   manifest_what[NAME]      what listens on the port, for messages
#   manifest_default[VARIABLE]  the default port of a port variable
#
# STACK_LIST names another manifest (the tests use it).

manifest_file="${STACK_LIST:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack.list}"
manifest_services=()
manifest_servers=()
declare -gA manifest_port=() manifest_variable=() manifest_binary=() manifest_ready=() \
  manifest_database=() manifest_what=() manifest_default=()

# Reads manifest_file into the arrays above; one line on stderr and status 1
# for a row it cannot read.
manifest_read() {
  local line number=0 kind name port variable binary ready database what
  [ -r "$manifest_file" ] || {
    echo "$manifest_file: the stack's manifest cannot be read" >&2
    return 1
  }
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    line="${line%%#*}"
    [ -n "${line//[[:space:]]/}" ] || continue
    read -r kind name port variable binary ready database what <<<"$line"
    if [ -z "$what" ] || ! [[ "$port" =~ ^[0-9]+$ ]] || ! [[ "$variable" =~ ^[A-Z][A-Z0-9_]*_PORT$ ]]; then
      echo "$manifest_file:$number: expected: kind name port variable binary ready database what" >&2
      return 1
    fi
    if [ -n "${manifest_port[$name]:-}" ] || [ -n "${manifest_default[$variable]:-}" ]; then
      echo "$manifest_file:$number: $name or $variable is in the manifest twice" >&2
      return 1
    fi
    case "$kind" in
      service)
        if [ "$binary" = - ] || [[ "$ready" != /* ]] || [ "$database" = - ]; then
          echo "$manifest_file:$number: the service $name needs a binary, a readiness path and a database" >&2
          return 1
        fi
        manifest_services+=("$name")
        ;;
      server) manifest_servers+=("$name") ;;
      *)
        echo "$manifest_file:$number: kind $kind: it must be service or server" >&2
        return 1
        ;;
    esac
    manifest_port[$name]="$port"
    manifest_variable[$name]="$variable"
    manifest_binary[$name]="$binary"
    manifest_ready[$name]="$ready"
    manifest_database[$name]="$database"
    manifest_what[$name]="$what"
    manifest_default[$variable]="$port"
  done <"$manifest_file"
  [ "${#manifest_services[@]}" -gt 0 ] || {
    echo "$manifest_file: no service in the manifest" >&2
    return 1
  }
}

# The port that VARIABLE names: its value when set, else its default.
manifest_port_of() {
  local variable="$1"
  echo "${!variable:-${manifest_default[$variable]}}"
}

# The URL of the readiness path of the service NAME listening on
# 127.0.0.1:PORT.
manifest_ready_url() {
  echo "http://127.0.0.1:$2${manifest_ready[$1]}"
}

# The databases of the services, one per service, in start order.
manifest_databases() {
  local name
  for name in "${manifest_services[@]}"; do echo "${manifest_database[$name]}"; done
}

manifest_read || exit 1

#!/usr/bin/env bash
# Redis Commander's configuration, made by start.sh: node-config's
# NODE_CONFIG, which travels in Redis Commander's environment, so that no
# password is on a command line. Sourced by start.sh.
#
#   redis_commander_config URL [USER PASSWORD]
#       one connection, to the Redis server of URL (redis:// or rediss://,
#       user, password, host, port, database); with USER and PASSWORD, its
#       web UI asks for them (prod, PROD_UIS=1)

# %XX escapes of a URL's part decoded.
url_decode() {
  local text="${1//\\/\\\\}"
  printf '%b' "${text//%/\\x}"
}

# A JSON string of $1.
json_string() {
  local text="${1//\\/\\\\}"
  text="${text//\"/\\\"}"
  printf '"%s"' "$text"
}

redis_commander_config() {
  local url="$1" rest userinfo="" hostport host port db user="" password="" tls=""
  rest="${url#*://}"
  if [[ "$rest" == *@* ]]; then
    userinfo="${rest%@*}"
    rest="${rest##*@}"
  fi
  hostport="${rest%%[/?#]*}"
  db="${rest#"$hostport"}"
  db="${db#/}"
  db="${db%%[?#]*}"
  if [[ "$hostport" == \[* ]]; then
    host="${hostport%%]*}"
    host="${host#[}"
    port="${hostport#*]}"
  else
    host="${hostport%%:*}"
    port="${hostport#"$host"}"
  fi
  port="${port#:}"
  if [[ "$userinfo" == *:* ]]; then
    user="$(url_decode "${userinfo%%:*}")"
    password="$(url_decode "${userinfo#*:}")"
  elif [ -n "$userinfo" ]; then
    user="$(url_decode "$userinfo")"
  fi
  [[ "$url" != rediss://* ]] || tls=',"tls":{}'
  printf '{"noSave":true,"connections":[{"label":"comms","host":%s,"port":%s,"dbIndex":%s,' \
    "$(json_string "${host:-127.0.0.1}")" "${port:-6379}" "${db:-0}"
  printf '"username":%s,"password":%s,"connectionName":"redis-commander"%s}]' \
    "$([ -n "$user" ] && json_string "$user" || echo null)" "$(json_string "$password")" "$tls"
  if [ -n "${2:-}" ]; then
    printf ',"server":{"httpAuth":{"username":%s,"password":%s}}' \
      "$(json_string "$2")" "$(json_string "${3:-}")"
  fi
  printf '}'
}

#!/usr/bin/env bash
# The faults of bench/chaos.sh, and its consent changes: functions sourced
# by it, which read and set its state (the work directory, the services'
# pids and ports, the schedule's clock, the record of faults).
# shellcheck disable=SC2154 # set by bench/chaos.sh and bench/lib.sh

faults_file="$workdir/faults.jsonl"
: >"$faults_file"
# record KIND TARGET AT DURATION DETAIL: one injected fault.
record() {
  jq -nc --arg kind "$1" --arg target "$2" --argjson at "$3" --argjson duration "$4" --arg detail "$5" \
    '{kind: $kind, target: $target, at_s: $at, duration_s: $duration, detail: $detail}' >>"$faults_file"
  echo "[$3 s] $1 $2 (${4} s) $5" >&2
}
smtp_mode() { echo "$1" >"$control.new" && mv "$control.new" "$control"; }

# kill_service NAME DOWN: SIGKILL, DOWN seconds, restart, wait until ready.
kill_service() {
  local name="$1" down="$2" at detail=""
  at="$(now_s)"
  sigkill "$name"
  if [ "$name" = user-service ]; then
    # Whether the expansion had finished when it died: its log says so.
    if grep -q '"audience expanded"' "$workdir/user-service.log"; then
      detail="after the expansion"
    else
      detail="during the expansion ($(notifications_published) of $users notifications published)"
    fi
  fi
  sleep "$down"
  start_service "$name"
  ready_or_fail "$name" 120 service_ready "$name"
  record kill "$name" "$at" "$(awk -v a="$at" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')" "${detail:-restarted}"
}
kill_redis() {
  local down="$1" at
  at="$(now_s)"
  sigkill redis
  sleep "$down"
  start_redis
  record redis-kill redis "$at" "$(awk -v a="$at" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')" \
    "SIGKILL, restarted from its AOF"
}
smtp_period() {
  local mode="$1" len="$2" at
  at="$(now_s)"
  case "$mode" in
    slow) smtp_mode "slow $slow_reply_ms" ;;
    stall) smtp_mode "slow $stall_reply_ms" ;;
    *) smtp_mode "$mode" ;;
  esac
  sleep "$len"
  smtp_mode accept
  record "smtp-$mode" chaos-smtp "$at" "$len" \
    "$(case "$mode" in down) echo "not listening" ;; refuse) echo "451 to every transaction" ;;
      slow) echo "${slow_reply_ms} ms before each 250 after DATA" ;;
      stall) echo "${stall_reply_ms} ms before each 250 after DATA (SMTP_TIMEOUT_MS ${smtp_timeout_ms})" ;; esac)"
}
# The Redis connections of one process: its local addresses, from ss.
redis_clients_of() {
  ss -tnpH state established "( dport = :$redis_port )" 2>/dev/null |
    awk -v p="pid=$1," 'index($0, p) { print $3 }'
}
client_kill() {
  local name="$1" at addr n=0
  at="$(now_s)"
  for addr in $(redis_clients_of "${pid[$name]}"); do
    [ "$(rcli CLIENT KILL "$addr" 2>/dev/null)" != OK ] || n=$((n + 1))
  done
  record client-kill "$name" "$at" 0 "$n connections killed"
}
# The ids of the poison entries of each stored stream, a file each.
declare -A poison_ids=()
poison() {
  local stream="$1" at stored part k=0 n=0
  at="$(now_s)"
  mapfile -t stored < <(stored_streams "$stream")
  for part in "${stored[@]}"; do
    poison_ids[$part]="$workdir/poison-${part//[:\{\}]/_}.ids"
    for ((i = k; i < 1000; i += ${#stored[@]})); do echo "XADD $part * chaos-poison $i"; done |
      rcli >"${poison_ids[$part]}"
    n=$((n + $(grep -c . "${poison_ids[$part]}")))
    k=$((k + 1))
  done
  record poison "$stream" "$at" 0 "$n entries over ${#stored[@]} stream(s)"
}

# Puts `addresses` (a JSON list) on the suppression list, as `reason`.
suppress_addresses() {
  curl -fsS -XPOST "http://127.0.0.1:${port[user-service]}/api/v1/suppressions/import" \
    -H 'content-type: application/json' \
    -d "$(jq -nc --argjson a "$1" --arg r "$2" '{addresses: $a, reason: $r}')" >/dev/null
}

# The addresses of `count` users from id `after` + 1, as a JSON list.
user_addresses() {
  curl -fsS "http://127.0.0.1:${port[user-service]}/api/v1/users?after=$1&limit=$2" | jq -c '[.users[].email]'
}


# control_campaign ACTION: pauses, resumes or cancels the second campaign
# ($controlled_id), retried while campaign-service is down (a kill) for up
# to 30 s; a 409 (the campaign already there, or completed) is recorded as
# such.
control_campaign() {
  local action="$1" at answer="" code=000 tries
  at="$(now_s)"
  for ((tries = 0; tries < 60; tries++)); do
    code="$(curl -sS -o "$workdir/control-answer.json" -w '%{http_code}' --max-time 5 -XPOST \
      "$api/$controlled_id/$action" 2>/dev/null)" || code=000
    [ "$code" = 000 ] || [ "${code:0:1}" = 5 ] || break
    sleep 0.5
  done
  answer="$(jq -r '.status // .error // empty' "$workdir/control-answer.json" 2>/dev/null || true)"
  record control "$action" "$at" 0 "HTTP $code: $answer"
}

#!/usr/bin/env bash
# Transactional messages beside a campaign: how long from `POST
# /api/v1/messages` to the message at the SMTP server, with nothing else
# sending and while a campaign to every user sends to the same server; and
# what the messages cost the campaign. On one stack: the four services, a
# private redis-server and chaos-smtp (the harness's recording SMTP server,
# which stamps each Message-ID with the millisecond it came), on free
# loopback ports, USERS seeded once; then three runs, one after the other:
#   idle      MESSAGES messages, INTERVAL_MS apart, nothing else sending
#   campaign  the catalogue campaign to every user, alone: its rate
#   loaded    the same campaign again, and once it sends, MESSAGES
#             messages INTERVAL_MS apart
# A message's latency is the time from just before its POST to the stamp of
# its arrival (one clock: the same machine). The idle run is the ceiling
# the loaded one is held to (the target: p99 under 1 s, and under twice the
# idle p99). Prints p50, p99 and max per run, how many of the loaded run's
# messages were asked for while the campaign was still sending, the two
# campaigns' rates; then, as the last line, one JSON object of the figures.
#
#   bench/priority.sh                   # 100,000 users, 200 messages
#   USERS=5000 bench/priority.sh        # a quick run
#
# Settings: USERS (100000), MESSAGES (200), INTERVAL_MS (50), SMTP_POOL
# (16), CAMPAIGN_TIMEOUT (1800 s), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 1800
messages="${MESSAGES:-200}"
interval_ms="${INTERVAL_MS:-50}"
require_whole_numbers users smtp_pool campaign_timeout messages interval_ms
started=$SECONDS

require_bench_tools
echo "building the services and chaos-smtp (release)..." >&2
build_release "${services[@]}" chaos-smtp
make_workdir

declare -A result=()
run=messages
rundir="$workdir/$run"
mkdir -p "$rundir"
pid=()
read -r redis_port smtp_port ports <<<"$(free_ports $((2 + ${#services[@]})))"
# shellcheck disable=SC2086 # one port each
service_ports $ports
result[loadavg]="$(cut -d' ' -f1-3 /proc/loadavg)"

start_redis
: >"$rundir/control"
launch chaos-smtp "$bin_dir/chaos-smtp" "$smtp_port" "$rundir/received" "$rundir/control" 0 stamped
ready_or_fail chaos-smtp 30 smtp_greets "$smtp_port"
echo "seeding $users users..." >&2
seed_users
start_other_services

messages_api="http://127.0.0.1:${port[campaign-service]}/api/v1/messages"
pause="$(awk -v ms="$interval_ms" 'BEGIN { print ms / 1000 }')"

# send_messages NAME: MESSAGES login codes, INTERVAL_MS apart, each to an
# address of its own; "id posted_ms" per message in rundir/NAME.sent. One
# process per message (curl; the body and the id by the shell), so that the
# load generator takes little of the cores it measures.
send_messages() {
  local name="$1" i posted answer
  : >"$rundir/$name.sent"
  for ((i = 0; i < messages; i++)); do
    posted=$((${EPOCHREALTIME/./} / 1000))
    answer="$(curl -fsS -XPOST "$messages_api" -H 'content-type: application/json' \
      -d "{\"to\": \"$name.$i@example.com\", \"subject\": \"Your code\", \"body\": \"Your login code is {{ code }}.\", \"variables\": {\"code\": \"$i\"}}")" ||
      fail "asking for message $i of the $name run failed"
    [[ "$answer" =~ \"id\":\"([^\"]+)\" ]] || fail "message $i of the $name run: no id in $answer"
    echo "${BASH_REMATCH[1]} $posted" >>"$rundir/$name.sent"
    sleep "$pause"
  done
}

# arrived NAME: how many of NAME's messages the server has.
arrived() {
  awk 'NR == FNR { want[$1] = 1; next }
       { id = $2; gsub(/[<>]/, "", id); sub(/@comms$/, "", id); if (id in want && !(id in seen)) { seen[id] = 1; n++ } }
       END { print n + 0 }' "$rundir/$1.sent" "$rundir/received"
}

# latencies NAME: waits (up to 120 s) until every message of NAME is at
# the server; prints "p50 p99 max" in milliseconds, from each message's
# first arrival.
latencies() {
  local name="$1" deadline=$((SECONDS + 120))
  until [ "$(arrived "$name")" -ge "$messages" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$(arrived "$name") of $messages $name messages arrived in 120 s"
    sleep 0.2
  done
  awk 'NR == FNR { posted[$1] = $2; next }
       { id = $2; gsub(/[<>]/, "", id); sub(/@comms$/, "", id); if (id in posted && !(id in seen)) { seen[id] = 1; print $1 - posted[id] } }' \
    "$rundir/$name.sent" "$rundir/received" | sort -n |
    awk '{ v[NR] = $1 } END {
      p50 = int(NR * 0.50); if (p50 < 1) p50 = 1
      p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
      printf "%d %d %d\n", v[p50], v[p99], v[NR] }'
}

# wait_completed ID: reads campaign ID every 0.2 s until it is completed;
# campaign holds its last answer.
wait_completed() {
  local deadline=$((SECONDS + campaign_timeout))
  while :; do
    campaign="$(curl -fsS --max-time 5 "$(campaigns_api)/$1")" || fail "reading the campaign failed"
    [ "$(jq -r .status <<<"$campaign")" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "campaign not completed after ${campaign_timeout}s: $campaign"
    sleep 0.2
  done
}

# campaign_sending ID: waits until campaign ID has sent 1% of its users.
campaign_sending() {
  local deadline=$((SECONDS + campaign_timeout)) sent
  while :; do
    sent="$(curl -fsS --max-time 5 "$(campaigns_api)/$1" | jq -r '.progress.sent // 0')" || sent=0
    [ "$sent" -lt $((users / 100)) ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "campaign $1 did not start sending"
    sleep 0.05
  done
}

echo "idle: $messages messages, nothing else sending..." >&2
send_messages idle
read -r result[idle.p50_ms] result[idle.p99_ms] result[idle.max_ms] <<<"$(latencies idle)"

echo "campaign: the catalogue campaign to $users users, alone..." >&2
id="$(create_campaign alone "$catalogue_subject" "$catalogue_body" | jq -r .id)"
wait_completed "$id"
record_campaign campaign "$campaign"

echo "loaded: the campaign again, and $messages messages while it sends..." >&2
id="$(create_campaign loaded "$catalogue_subject" "$catalogue_body" | jq -r .id)"
campaign_sending "$id"
send_messages loaded
read -r result[loaded.p50_ms] result[loaded.p99_ms] result[loaded.max_ms] <<<"$(latencies loaded)"
wait_completed "$id"
record_campaign loaded "$campaign"
completed_ms="$(jq -r .completed_at <<<"$campaign")"
result[loaded.during]="$(awk -v end="$completed_ms" '$2 < end { n++ } END { print n + 0 }' "$rundir/loaded.sent")"
result[ratio_p99]="$(awk -v l="${result[loaded.p99_ms]}" -v i="${result[idle.p99_ms]}" 'BEGIN { printf "%.2f", l / (i > 0 ? i : 1) }')"
result[campaign_ratio]="$(awk -v l="${result[loaded.emails_per_s]}" -v a="${result[campaign.emails_per_s]}" 'BEGIN { printf "%.3f", l / a }')"

echo
printf '%-8s %8s %8s %8s\n' run p50_ms p99_ms max_ms
for name in idle loaded; do
  printf '%-8s %8s %8s %8s\n' "$name" "${result[$name.p50_ms]}" "${result[$name.p99_ms]}" "${result[$name.max_ms]}"
done
echo
echo "loaded p99 / idle p99: ${result[ratio_p99]} (target < 2, and p99 < 1000 ms)"
echo "messages asked for while the campaign sent: ${result[loaded.during]} of $messages"
echo "campaign alone: ${result[campaign.emails_per_s]} emails/s; with the messages: ${result[loaded.emails_per_s]} emails/s (ratio ${result[campaign_ratio]})"
jq -nc \
  --argjson users "$users" --argjson messages "$messages" --argjson interval_ms "$interval_ms" \
  --argjson idle "$(jq -n --argjson p50 "${result[idle.p50_ms]}" --argjson p99 "${result[idle.p99_ms]}" --argjson max "${result[idle.max_ms]}" '{p50_ms: $p50, p99_ms: $p99, max_ms: $max}')" \
  --argjson loaded "$(jq -n --argjson p50 "${result[loaded.p50_ms]}" --argjson p99 "${result[loaded.p99_ms]}" --argjson max "${result[loaded.max_ms]}" --argjson during "${result[loaded.during]}" '{p50_ms: $p50, p99_ms: $p99, max_ms: $max, asked_while_sending: $during}')" \
  --argjson ratio "${result[ratio_p99]}" \
  --argjson alone "${result[campaign.emails_per_s]}" --argjson with "${result[loaded.emails_per_s]}" \
  --arg loadavg "${result[loadavg]}" --argjson elapsed "$((SECONDS - started))" --argjson cores "$(nproc)" \
  '{users: $users, messages: $messages, interval_ms: $interval_ms, idle: $idle, loaded: $loaded,
    loaded_over_idle_p99: $ratio, campaign_emails_per_s: {alone: $alone, with_messages: $with},
    loadavg_before: $loadavg, machine: {cores: $cores}, elapsed_s: $elapsed}'

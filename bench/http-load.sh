#!/usr/bin/env bash
# A campaign while the services' open routes are read hard: the four
# services, a private redis-server and Postfix's smtp-sink on free loopback
# ports, USERS seeded once, then two campaigns to every user, one after the
# other on the same stack:
#   unloaded  nothing else reads the services
#   loaded    SSE_CLIENTS dashboards hold the live channel open and
#             READERS concurrent keep-alive clients (ApacheBench) read each
#             public GET route (the campaign list, the campaign, its
#             failures, the stream figures, the dead letters, the users,
#             the campaign's counts per status) for as long as it sends
# Throughout both, every service's /health is timed every 0.2 s.
#
# The load generators (the dashboards' curl and ab) stand for clients on
# other machines, but here they share the services' cores: they run under
# `nice -n LOAD_NICE` (10), so that the CPU they take is what the services
# leave rather than what a fair share of the cores would give them.
# LOAD_NICE=0 runs them at the services' priority. The /health sampler is
# never niced.
#
# Prints both campaigns' rates and their ratio (the target: the loaded rate
# within 10 % of the unloaded one), /health's max and p99 per service in each
# run (the target: within 100 ms), each route's requests answered, 503s and
# failures; then, as the last line, one JSON object of the same figures.
#
#   bench/http-load.sh                 # 100,000 users
#   USERS=2000 bench/http-load.sh      # a quick run
#
# Settings: USERS (100000), SMTP_POOL (16), SSE_CLIENTS (200), READERS (50
# per route), LOAD_NICE (10, the load generators' niceness, 0 to 19),
# CAMPAIGN_TIMEOUT (1800 s), SERVICE_ENV (more VAR=value pairs for every
# service), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 1800
sse_clients="${SSE_CLIENTS:-200}"
readers="${READERS:-50}"
load_nice="${LOAD_NICE:-10}"
require_whole_numbers users smtp_pool campaign_timeout sse_clients readers
[[ "$load_nice" =~ ^[0-9]+$ ]] && [ "$load_nice" -le 19 ] || {
  echo "LOAD_NICE=$load_nice: a niceness from 0 to 19 is needed" >&2
  exit 2
}
started=$SECONDS

require_bench_tools
require_postfix_tools
require_ab
smtp_sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"

echo "building the services (release)..." >&2
build_release "${services[@]}"
read -r -a extra_env <<<"${SERVICE_ENV:-}"
service_extra_env+=("${extra_env[@]}")
make_workdir

declare -A result=()
run=http-load
rundir="$workdir/$run"
mkdir -p "$rundir"
pid=()
read -r redis_port smtp_port ports <<<"$(free_ports $((2 + ${#services[@]})))"
# shellcheck disable=SC2086 # one port each
service_ports $ports
result[loadavg]="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average before the run: ${result[loadavg]}" >&2

start_redis
start_smtp_sink
echo "seeding $users users..." >&2
seed_users
start_other_services

# health_sampler FILE: every 0.2 s, "service seconds" for each service's
# /health (a failed or late answer counts as its 2 s timeout), until killed.
health_sampler() {
  local name seconds
  while :; do
    for name in "${services[@]}"; do
      seconds="$(curl -s -o /dev/null --max-time 2 -w '%{time_total}' \
        "http://127.0.0.1:${port[$name]}/health")" || seconds=2
      echo "$name $seconds" >>"$1"
    done
    sleep 0.2
  done
}

# health_figures FILE: "service max_ms p99_ms" per service, and "all ...".
health_figures() {
  local name
  for name in "${services[@]}" all; do
    awk -v s="$name" 's == "all" || $1 == s { print $2 * 1000 }' "$1" | sort -n |
      awk -v s="$name" '{ v[NR] = $1 } END {
        i = int(NR * 0.99); if (i < 1) i = 1; if (i > NR) i = NR
        printf "%s %.1f %.1f\n", s, v[NR], v[i] }'
  done
}

# campaign_until_completed ID: reads campaign ID every 0.2 s until it is
# completed (a read refused with 503, the services' answer past their
# bound on reads, is tried again after its Retry-After); campaign holds its
# last answer.
campaign_until_completed() {
  local api status deadline
  api="$(campaigns_api)"
  deadline=$((SECONDS + campaign_timeout))
  while :; do
    campaign="$(curl -fsS --max-time 5 --retry 10 --retry-max-time 30 "$api/$1")" ||
      fail "reading the campaign failed"
    status="$(jq -r .status <<<"$campaign")"
    [ "$status" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "campaign not completed after ${campaign_timeout}s: $campaign"
    sleep 0.2
  done
}

# The public GET routes read under load, as "name url" (ID: the campaign's).
read_routes() {
  local campaign="http://127.0.0.1:${port[campaign-service]}/api/v1"
  echo "campaigns $campaign/campaigns"
  echo "campaign $campaign/campaigns/$1"
  echo "failures $campaign/campaigns/$1/failures"
  echo "streams $campaign/streams"
  echo "dead-letters $campaign/dead-letters?stream=comms:emails"
  echo "users http://127.0.0.1:${port[user-service]}/api/v1/users?limit=50"
  echo "counts http://127.0.0.1:${port[notification-service]}/api/v1/campaigns/$1/notifications"
}

# campaign_run NAME [loaded]: one catalogue campaign, timed by its own
# timestamps, /health sampled throughout; loaded, with the readers and the
# live channels on it while it sends.
campaign_run() {
  local name="$1" loaded="${2:-}" created id route url i load_pids=()
  local health="$rundir/health-$name.txt"
  : >"$health"
  launch "health-$name" health_sampler "$health"
  local sampler="${pid[health-$name]}"
  created="$(create_campaign "bench-$name" "$catalogue_subject" "$catalogue_body")" ||
    fail "creating the campaign failed"
  id="$(jq -r .id <<<"$created")"
  if [ -n "$loaded" ]; then
    for ((i = 1; i <= sse_clients; i++)); do
      launch "sse.$i" nice -n "$load_nice" curl -sN -o /dev/null --max-time "$campaign_timeout" \
        -H 'accept: text/event-stream' "http://127.0.0.1:${port[campaign-service]}/api/v1/campaigns/events"
      load_pids+=("${pid[sse.$i]}")
    done
    while read -r route url; do
      launch "ab-$route" nice -n "$load_nice" ab -q -k -r -c "$readers" -t "$campaign_timeout" -n 100000000 "$url"
      load_pids+=("${pid[ab-$route]}")
    done < <(read_routes "$id")
  fi
  campaign_until_completed "$id"
  if [ -n "$loaded" ]; then
    # ab prints its figures on SIGINT.
    for route in $(read_routes "$id" | cut -d' ' -f1); do kill -INT "${pid[ab-$route]}" 2>/dev/null || true; done
    sleep 1
    stop_pids "${load_pids[@]}"
  fi
  stop_pids "$sampler"
  record_campaign "$name" "$campaign"
  [ "${result[$name.total]}" = "$users" ] && [ "$((result[$name.sent] + result[$name.failed]))" = "$users" ] ||
    fail "[$name] progress not exact: $(jq -c .progress <<<"$campaign")"
  while read -r service max p99; do
    result[$name.health_max_ms.$service]="$max"
    result[$name.health_p99_ms.$service]="$p99"
  done < <(health_figures "$health")
}

echo "unloaded campaign..." >&2
campaign_run unloaded
echo "loaded campaign: $sse_clients live channels, $readers readers on each of $(read_routes x | wc -l) routes..." >&2
campaign_run loaded with-load
result[loadavg_after]="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average after the loaded run: ${result[loadavg_after]}" >&2

# ab_figure ROUTE PATTERN: the number after PATTERN in ab's output (0 when
# absent: ab prints no Non-2xx line when there were none).
ab_figure() {
  sed -nE "s/^$2:? +([0-9.]+).*/\1/p" "$rundir/ab-$1.log" | head -n 1 | grep . || echo 0
}
declare -A route_json=()
while read -r route _; do
  result[route.$route.answered]="$(ab_figure "$route" 'Complete requests')"
  result[route.$route.per_s]="$(ab_figure "$route" 'Requests per second')"
  result[route.$route.failed]="$(ab_figure "$route" 'Failed requests')"
  result[route.$route.non_2xx]="$(ab_figure "$route" 'Non-2xx responses')"
  route_json[$route]="$(jq -nc --argjson answered "${result[route.$route.answered]}" \
    --argjson per_s "${result[route.$route.per_s]}" --argjson failed "${result[route.$route.failed]}" \
    --argjson non_2xx "${result[route.$route.non_2xx]}" '{answered: $answered, per_s: $per_s, failed: $failed, non_2xx: $non_2xx}')"
done < <(read_routes x)
ratio="$(awk -v a="${result[loaded.emails_per_s]}" -v b="${result[unloaded.emails_per_s]}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"

printf '\n%-10s %10s %12s %16s %16s\n' run campaign_s emails_per_s health_max_ms health_p99_ms
for name in unloaded loaded; do
  printf '%-10s %10s %12s %16s %16s\n' "$name" "${result[$name.campaign_s]}" "${result[$name.emails_per_s]}" \
    "${result[$name.health_max_ms.all]}" "${result[$name.health_p99_ms.all]}"
done
printf '\nloaded / unloaded rate: %s (target >= 0.90); /health within 100 ms: max %s ms loaded\n' \
  "$ratio" "${result[loaded.health_max_ms.all]}"
printf '\n%-22s %12s %8s %10s %8s\n' '/health (loaded)' max_ms p99_ms '' ''
for name in "${services[@]}"; do
  printf '%-22s %12s %8s\n' "$name" "${result[loaded.health_max_ms.$name]}" "${result[loaded.health_p99_ms.$name]}"
done
printf '\n%-14s %10s %10s %8s %8s\n' route answered per_s 503s failed
while read -r route _; do
  printf '%-14s %10s %10s %8s %8s\n' "$route" "${result[route.$route.answered]}" \
    "${result[route.$route.per_s]}" "${result[route.$route.non_2xx]}" "${result[route.$route.failed]}"
done < <(read_routes x)

health_json() {
  local name
  for name in "${services[@]}"; do
    echo "$name ${result[$1.health_max_ms.$name]} ${result[$1.health_p99_ms.$name]}"
  done | jq -Rn '[inputs | split(" ") | {(.[0]): {max_ms: (.[1] | tonumber), p99_ms: (.[2] | tonumber)}}] | add'
}
routes_all="$(for route in "${!route_json[@]}"; do jq -c --arg r "$route" '{($r): .}' <<<"${route_json[$route]}"; done | jq -sc add)"
jq -nc \
  --argjson users "$users" \
  --argjson sse_clients "$sse_clients" \
  --argjson readers "$readers" \
  --argjson load_nice "$load_nice" \
  --argjson unloaded_emails_per_s "${result[unloaded.emails_per_s]}" \
  --argjson loaded_emails_per_s "${result[loaded.emails_per_s]}" \
  --argjson unloaded_campaign_s "${result[unloaded.campaign_s]}" \
  --argjson loaded_campaign_s "${result[loaded.campaign_s]}" \
  --argjson ratio "$ratio" \
  --argjson health_max_ms "${result[loaded.health_max_ms.all]}" \
  --argjson health_p99_ms "${result[loaded.health_p99_ms.all]}" \
  --argjson health_loaded "$(health_json loaded)" \
  --argjson health_unloaded "$(health_json unloaded)" \
  --argjson routes "$routes_all" \
  --arg loadavg "${result[loadavg]}" \
  --arg loadavg_after "${result[loadavg_after]}" \
  --argjson cores "$(nproc)" \
  --arg date "$(date -u +%FT%TZ)" \
  --argjson elapsed_s "$((SECONDS - started))" \
  '{users: $users, sse_clients: $sse_clients, readers_per_route: $readers, load_nice: $load_nice,
    unloaded_emails_per_s: $unloaded_emails_per_s, loaded_emails_per_s: $loaded_emails_per_s,
    unloaded_campaign_s: $unloaded_campaign_s, loaded_campaign_s: $loaded_campaign_s,
    ratio: $ratio, health_max_ms: $health_max_ms, health_p99_ms: $health_p99_ms,
    health_loaded: $health_loaded, health_unloaded: $health_unloaded, routes: $routes,
    loadavg_before: $loadavg, loadavg_after_loaded: $loadavg_after, machine: {cores: $cores, date: $date}, elapsed_s: $elapsed_s}'

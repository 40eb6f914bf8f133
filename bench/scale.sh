#!/usr/bin/env bash
# Scaling out: the campaign of bench/campaign.sh (one campaign to every
# seeded user, into Postfix's smtp-sink, which accepts and drops) with
# several instances of each worker service (user-, notification- and
# email-service; campaign-service stays one, it serves the API) and with
# one redis-server or a Redis Cluster of three masters (no replicas), all
# on free loopback ports. The instances share one private PostgreSQL
# (initdb into the work directory; one database per service, created anew
# for each run), as several instances must.
#
# One run per combination of INSTANCES and REDIS, each on a fresh Redis and
# fresh databases. Per run: emails/s (campaign-service's own created_at ->
# completed_at), whether it was exact (sent + failed = total = USERS, and
# smtp-sink received USERS messages), CPU time per email of each service
# (summed over its instances) and of each Redis node, in microseconds, from
# /proc/PID/stat between the campaign's creation and its completion.
# With PARTITIONS above 1 the per-recipient streams are split
# (STREAM_PARTITIONS), so that one stream's traffic spans the masters of a
# cluster; with 1 each stream lives on one node.
# Prints a table, then, as the last line, one JSON object.
#
#   bench/scale.sh                                   # 100,000 users, 12 runs
#   USERS=5000 bench/scale.sh                        # a quick run
#   USERS=100000 INSTANCES="1 2" REDIS=cluster PARTITIONS=4 bench/scale.sh
#
# Settings: USERS (100000), INSTANCES ("1 2 4", instances of each worker
# service), REDIS ("node cluster"), PARTITIONS ("1 4", STREAM_PARTITIONS of
# the per-recipient streams), SMTP_POOL (16, each email-service
# instance's SMTP connections), CAMPAIGN_TIMEOUT (1800 s per campaign; with
# the readiness timeouts it bounds each run), SERVICE_ENV (more VAR=value
# pairs for every service), KEEP=1 keeps the work directory (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 1800
read -r -a instance_counts <<<"${INSTANCES:-1 2 4}"
read -r -a redis_modes <<<"${REDIS:-node cluster}"
read -r -a partition_counts <<<"${PARTITIONS:-1 4}"
for p in "${partition_counts[@]}"; do
  [[ "$p" =~ ^[1-9][0-9]?$ ]] || { echo "PARTITIONS: '$p' is not a number of partitions (1-99)" >&2; exit 2; }
done
for n in "${instance_counts[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || { echo "INSTANCES: '$n' is not a number of instances (1-99)" >&2; exit 2; }
done
for mode in "${redis_modes[@]}"; do
  case "$mode" in
    node | cluster) ;;
    *) echo "REDIS: unknown mode '$mode' (node, cluster)" >&2; exit 2 ;;
  esac
done
require_whole_numbers users smtp_pool campaign_timeout
started=$SECONDS

require_bench_tools
require_postfix_tools
require_postgres_server
smtp_sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"

echo "building the services (release)..." >&2
build_release "${services[@]}"
read -r -a extra_env <<<"${SERVICE_ENV:-}"
make_workdir

# Every service but campaign-service (it serves the API: one instance).
workers=()
for name in "${services[@]}"; do [ "$name" = campaign-service ] || workers+=("$name"); done
# The database of each service (stack.list's).
declare -A database=()
for name in "${services[@]}"; do database[$name]="${manifest_database[$name]}"; done
redis_nodes_of() { if [ "$1" = cluster ]; then echo 3; else echo 1; fi; }

clk_tck="$(getconf CLK_TCK)"
# Microseconds of CPU per email from a tick count.
us_per_email() { awk -v t="$1" -v hz="$clk_tck" -v n="$users" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }'; }

read -r pg_port <<<"$(free_ports 1)"
start_postgres "$pg_port"

declare -A result=()  # run.key -> value
run_names=()

# scale_run N MODE P: one campaign with N instances of each worker service
# on Redis MODE (node or cluster), its streams split into P partitions.
scale_run() {
  local n="$1" mode="$2" partitions="$3" nodes
  nodes="$(redis_nodes_of "$mode")"
  run="i$n-$mode-p$partitions"
  run_names+=("$run")
  rundir="$workdir/$run"
  mkdir -p "$rundir"
  pid=()
  port=()
  redis_url=""
  result[$run.loadavg]="$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "[$run] $n instance(s) of each worker service, Redis: $mode, $partitions partition(s); load average ${result[$run.loadavg]}" >&2

  # Ports: SMTP, campaign-service, N per worker service, and Redis (one
  # port, or a client and a bus port per cluster node).
  local redis_ports=1
  [ "$mode" = node ] || redis_ports=$((2 * nodes))
  local ports
  read -r -a ports <<<"$(free_ports $((2 + ${#workers[@]} * n + redis_ports)))"
  smtp_port="${ports[0]}"
  port[campaign-service]="${ports[1]}"
  local next=2 name i instance
  for name in "${workers[@]}"; do
    for ((i = 1; i <= n; i++)); do
      instance="$name"
      [ "$i" = 1 ] || instance="$name.$i"
      port[$instance]="${ports[$next]}"
      next=$((next + 1))
    done
  done

  fresh_databases "${database[@]}"
  service_extra_env=()
  for name in "${services[@]}"; do
    service_extra_env+=("${manifest_variable[$name]%_PORT}_DATABASE_URL=$(postgres_url "${database[$name]}")")
  done
  service_extra_env+=("STREAM_PARTITIONS=$partitions" "${extra_env[@]}")

  if [ "$mode" = node ]; then
    redis_port="${ports[$next]}"
    start_redis
  else
    local pairs=()
    for ((i = 0; i < nodes; i++)); do
      pairs+=("${ports[$((next + 2 * i))]}:${ports[$((next + 2 * i + 1))]}")
    done
    start_redis_cluster "${pairs[@]}"
  fi
  start_smtp_sink

  # The first user-service instance alone seeds; the others find the users.
  echo "[$run] seeding $users users..." >&2
  seed_users
  local seeded
  seeded="$(jq -r 'select(.fields.message == "users seeded") | .fields.seeded' "$rundir/user-service.log" 2>/dev/null | head -n 1)"
  [ "$seeded" = "$users" ] || fail "seeded '${seeded}' users, not $users"
  local starting=()
  for instance in "${!port[@]}"; do
    [ "$instance" = user-service ] && continue
    start_service "${instance%.*}" "$instance"
    starting+=("$instance")
  done
  for instance in "${starting[@]}"; do ready_or_fail "$instance" 120 service_ready "$instance"; done

  local procs=() key
  for key in "${!pid[@]}"; do
    case "$key" in
      *-service* | redis*) procs+=("$key") ;;
    esac
  done
  declare -A ticks0=()
  for key in "${procs[@]}"; do ticks0[$key]="$(cpu_ticks "${pid[$key]}")"; done

  echo "[$run] campaign to $users users..." >&2
  local campaign t0 t1
  catalogue_campaign
  declare -A ticks=()
  for key in "${procs[@]}"; do ticks[$key]=$(($(cpu_ticks "${pid[$key]}") - ticks0[$key])); done

  result[$run.instances]="$n"
  result[$run.redis_nodes]="$nodes"
  result[$run.partitions]="$partitions"
  result[$run.campaign_wall_s]="$(elapsed "$t0" "$t1")"
  record_campaign "$run" "$campaign"

  # CPU per email: each service summed over its instances, each Redis node.
  local sum
  for name in "${services[@]}"; do
    sum=0
    for key in "${procs[@]}"; do
      [ "${key%.*}" != "$name" ] || sum=$((sum + ticks[$key]))
    done
    result[$run.cpu_us.$name]="$(us_per_email "$sum")"
  done
  local redis_us=() node
  if [ "$mode" = node ]; then
    redis_us=("$(us_per_email "${ticks[redis]}")")
  else
    for ((node = 1; node <= nodes; node++)); do redis_us+=("$(us_per_email "${ticks[redis.$node]}")"); done
  fi
  result[$run.redis_us]="${redis_us[*]}"

  # Exact progress, and every message at smtp-sink (its counters are
  # written as sessions end: up to 5 s for the last ones).
  check_exact "$(count_reaching "$users" 50 sink_messages)" smtp-sink
  echo "[$run] ${result[$run.emails_per_s]} emails/s, exact ${result[$run.exact]}" >&2

  # The services first (they flush their acks), then smtp-sink and Redis;
  # PostgreSQL stays for the next run.
  local stopping=() rest=()
  for key in "${!pid[@]}"; do
    case "$key" in
      *-service*) stopping+=("${pid[$key]}") ;;
      postgres) ;;
      *) rest+=("${pid[$key]}") ;;
    esac
  done
  stop_pids "${stopping[@]}"
  stop_pids "${rest[@]}"
}

for n in "${instance_counts[@]}"; do
  for mode in "${redis_modes[@]}"; do
    for p in "${partition_counts[@]}"; do scale_run "$n" "$mode" "$p"; done
  done
done
took=$((SECONDS - started))

# --- report -------------------------------------------------------------------
echo
echo "$users users, into smtp-sink; CPU in microseconds per email (user + system, /proc/PID/stat),"
echo "each service summed over its instances; $(nproc) cores"
printf '%-15s %9s %11s %10s %10s %8s %6s %6s %7s %6s %7s  %s\n' \
  run instances redis_nodes partitions campaign_s emails/s exact "user" "notif." "email" "campgn" "redis per node"
for run in "${run_names[@]}"; do
  printf '%-15s %9s %11s %10s %10s %8s %6s %6s %7s %6s %7s  %s\n' \
    "$run" "${result[$run.instances]}" "${result[$run.redis_nodes]}" "${result[$run.partitions]}" \
    "${result[$run.campaign_s]}" \
    "${result[$run.emails_per_s]}" "${result[$run.exact]}" "${result[$run.cpu_us.user-service]}" \
    "${result[$run.cpu_us.notification-service]}" "${result[$run.cpu_us.email-service]}" \
    "${result[$run.cpu_us.campaign-service]}" "${result[$run.redis_us]}"
done
echo "(took ${took} s)"
echo

run_json() {
  local run="$1" redis_us
  read -r -a redis_us <<<"${result[$run.redis_us]}"
  jq -nc \
    --argjson instances "${result[$run.instances]}" \
    --argjson redis_nodes "${result[$run.redis_nodes]}" \
    --argjson partitions "${result[$run.partitions]}" \
    --argjson campaign_s "${result[$run.campaign_s]}" \
    --argjson campaign_wall_s "${result[$run.campaign_wall_s]}" \
    --argjson emails_per_s "${result[$run.emails_per_s]}" \
    --argjson sent "${result[$run.sent]}" \
    --argjson failed "${result[$run.failed]}" \
    --argjson received "${result[$run.received]}" \
    --argjson exact "${result[$run.exact]}" \
    --argjson cpu_us "$(for name in "${services[@]}"; do
      printf '%s %s\n' "$name" "${result[$run.cpu_us.$name]}"; done | pairs_json)" \
    --argjson redis_us "$(jq -nc '$ARGS.positional | map(tonumber)' --args "${redis_us[@]}")" \
    --arg loadavg "${result[$run.loadavg]}" \
    '{instances: $instances, redis_nodes: $redis_nodes, partitions: $partitions, emails_per_s: $emails_per_s,
      exact: $exact, cpu_us_per_email: $cpu_us, redis_cpu_us_per_email_per_node: $redis_us,
      campaign_s: $campaign_s, campaign_wall_s: $campaign_wall_s, sent: $sent, failed: $failed,
      received: $received, loadavg_before: $loadavg}'
}
runs_json="$(for run in "${run_names[@]}"; do run_json "$run"; done | jq -sc .)"
jq -nc \
  --argjson runs "$runs_json" \
  --argjson users "$users" \
  --argjson smtp_pool "$smtp_pool" \
  --argjson cores "$(nproc)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg redis "$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')" \
  --arg postgres "$("$pg_bin/postgres" --version | awk '{ print $3 }')" \
  --argjson elapsed_s "$took" \
  '{users: $users, smtp_server: "smtp-sink", smtp_pool: $smtp_pool, runs: $runs,
    machine: {cores: $cores, date: $date, redis: $redis, postgres: $postgres}, elapsed_s: $elapsed_s}'
for run in "${run_names[@]}"; do
  [ "${result[$run.exact]}" = true ] || exit 1
done

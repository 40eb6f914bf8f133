#!/usr/bin/env bash
# What the end-to-end benchmarks (bench/campaign.sh, bench/chaos.sh,
# bench/scale.sh) share: their common settings, the tools they need, the
# release build, a work directory and the processes they start (stopped and
# reaped at exit), free loopback ports, a private redis-server (AOF fsynced
# every second, as start.sh runs it), the four services, readiness waits,
# the campaign API, the catalogue campaign and the checks that a run was
# exact.
#
# Sourced from the repository's root, after `set -euo pipefail`. A script
# sets, before starting anything:
#   run        the name of the current run (prefixes failures)
#   rundir     its directory (logs, databases, Redis's AOF), inside $workdir
#   port       component name -> port (the four services)
#   redis_port, smtp_port, users, smtp_pool
#   redis_url  (optional) the services' REDIS_URL, when not redis_port's
#              redis-server (a Redis Cluster: start_redis_cluster sets it)
#   service_extra_env  VAR=value pairs added to every service's environment
# (so variables are set on one side and read on the other:)
# shellcheck disable=SC2034,SC2154
root="$PWD"
# shellcheck source=scripts/require.sh
source scripts/require.sh
# pid_alive, await_ready and the readiness checks.
# shellcheck source=scripts/ready.sh
source scripts/ready.sh
# The services, their binaries, port variables and databases (stack.list).
# shellcheck source=scripts/manifest.sh
source scripts/manifest.sh

services=("${manifest_services[@]}")
streams=(comms:campaigns comms:notifications comms:emails comms:deliveries)
declare -A pid=()   # component name -> pid, for the current run
declare -A live=()  # pid -> name: every process this script started and has not reaped
declare -A port=()  # service name -> port
service_extra_env=()

# require_whole_numbers NAME...: each variable holds a positive whole number,
# or the script ends with status 2.
require_whole_numbers() {
  local setting
  for setting in "$@"; do
    [[ "${!setting}" =~ ^[1-9][0-9]*$ ]] || {
      echo "$setting=${!setting}: a positive whole number is needed" >&2
      exit 2
    }
  done
}

# bench_settings CAMPAIGN_TIMEOUT: the settings of every campaign benchmark,
# users (USERS, 100000), smtp_pool (SMTP_POOL, 16: email-service's SMTP
# connections) and campaign_timeout (CAMPAIGN_TIMEOUT, in seconds; the
# script's own default). The script checks them (require_whole_numbers).
bench_settings() {
  users="${USERS:-100000}"
  smtp_pool="${SMTP_POOL:-16}"
  campaign_timeout="${CAMPAIGN_TIMEOUT:-$1}"
}

# The tools both benchmarks use: redis-server, curl, jq.
require_bench_tools() {
  require_redis
  require_curl
  command -v jq >/dev/null || apt_install jq
}

# build_release NAME...: builds every binary in release mode (bin_dir: where
# they are) and checks that each NAME (a service's binary, or a binary) was
# built.
build_release() {
  cargo build --release --bins --quiet
  bin_dir="${CARGO_TARGET_DIR:-$root/target}/release"
  local name binary
  for name in "$@"; do
    binary="${manifest_binary[$name]:-$name}"
    [ -x "$bin_dir/$binary" ] || { echo "$bin_dir/$binary was not built" >&2; exit 1; }
  done
}

# Stops the given pids (children of this script, not yet reaped, so never a
# reused pid): SIGTERM, up to 10 s to exit, then SIGKILL; reaps them.
stop_pids() {
  local p tries
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    tries=0
    while pid_alive "$p" && [ "$tries" -lt 100 ]; do
      sleep 0.1
      tries=$((tries + 1))
    done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "live[$p]"
  done
}

cleanup() {
  local status=$?
  # The services first (they flush their acks to Redis as they stop), then
  # the SMTP server and Redis.
  local p first=() then=()
  for p in "${!live[@]}"; do
    case "${live[$p]}" in
      *-service | *-service.*) first+=("$p") ;;
      *) then+=("$p") ;;
    esac
  done
  [ "${#first[@]}" -eq 0 ] || stop_pids "${first[@]}"
  [ "${#then[@]}" -eq 0 ] || stop_pids "${then[@]}"
  if [ "${KEEP:-0}" = 1 ]; then
    echo "work directory kept: $workdir" >&2
  else
    rm -rf "$workdir"
  fi
  exit "$status"
}

# make_workdir: a fresh work directory (workdir), removed at exit unless
# KEEP=1, after every process started here is stopped.
make_workdir() {
  workdir="$(mktemp -d)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Free loopback ports, all distinct (held open together while chosen).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# launch NAME CMD...: starts a process in the background, appending to its
# log in rundir (a restarted process keeps one log).
launch() {
  local name="$1"
  shift
  "$@" >>"$rundir/$name.log" 2>&1 </dev/null &
  pid[$name]=$!
  live[$!]="$name"
}

# fail MESSAGE: says what failed, with the last lines of every log of the
# run, and ends the script.
fail() {
  echo "$run: $*" >&2
  local log
  for log in "$rundir"/*.log; do
    [ -f "$log" ] || continue
    echo "--- last lines of ${log##*/}" >&2
    tail -n 15 "$log" >&2
  done
  exit 1
}

# ready_or_fail NAME TIMEOUT CHECK...: waits until the process NAME started
# here passes CHECK (scripts/ready.sh's await_ready and checks); fails the
# run with await_ready's line (then every log's last lines) if it exits or
# TIMEOUT seconds pass.
ready_or_fail() {
  local name="$1" timeout="$2" message
  shift 2
  message="$(await_ready "$name" "${pid[$name]}" "$timeout" - "$@" 2>&1)" || fail "$message"
}
# service_ports PORT...: port holds one of the PORTs for each service (in
# stack.list's order), and nothing else.
service_ports() {
  local i
  [ "$#" -ge "${#services[@]}" ] || { echo "service_ports: ${#services[@]} ports needed, not $#" >&2; exit 1; }
  port=()
  for i in "${!services[@]}"; do
    port[${services[$i]}]="${*:$((i + 1)):1}"
  done
}
rcli() { redis-cli -p "$redis_port" "$@"; }
# service_ready NAME: the service's readiness path answers 200 (NAME as in
# port: a service, or one instance of it, user-service.2).
service_ready() { http_ready "$(manifest_ready_url "${1%.*}" "${port[$1]}")"; }

# start_redis: the private redis-server of the run (AOF fsynced every second,
# no RDB snapshots), data in rundir/redis; a restart replays its AOF.
start_redis() {
  mkdir -p "$rundir/redis"
  launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize no \
    --appendonly yes --appendfsync everysec --save "" --dir "$rundir/redis" \
    --maxmemory "${REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction \
    --logfile "$rundir/redis-server.log"
  ready_or_fail redis 60 redis_pings "$redis_port"
}

# start_redis_cluster PORT:BUS_PORT...: a Redis Cluster of one master per
# pair (client port, cluster bus port), no replicas, as
# crates/testkit/src/redis_cluster.rs starts one; AOF fsynced every second
# as start_redis. The nodes are redis.1, redis.2, ... in pid. Sets
# redis_url (redis+cluster://...) and redis_port (the first node, for rcli).
start_redis_cluster() {
  local node=0 pair p addresses=() ports=()
  for pair in "$@"; do
    node=$((node + 1))
    p="${pair%%:*}"
    ports+=("$p")
    mkdir -p "$rundir/redis.$node"
    launch "redis.$node" redis-server --port "$p" --cluster-port "${pair#*:}" --bind 127.0.0.1 \
      --daemonize no --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --appendonly yes --appendfsync everysec --save "" --dir "$rundir/redis.$node" \
      --maxmemory "${REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction \
      --logfile "$rundir/redis-server.$node.log"
    addresses+=("127.0.0.1:$p")
  done
  for node in "${!ports[@]}"; do
    ready_or_fail "redis.$((node + 1))" 60 redis_pings "${ports[$node]}"
  done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes \
    >"$rundir/redis-cluster-create.log" 2>&1 || fail "redis-cli --cluster create failed"
  for node in "${!ports[@]}"; do
    ready_or_fail "redis.$((node + 1))" 60 redis_cluster_ok "${ports[$node]}"
  done
  redis_port="${ports[0]}"
  redis_url="redis+cluster://$(IFS=,; echo "${addresses[*]}")"
}
# redis_cluster_ok PORT: the node on PORT says cluster_state:ok.
redis_cluster_ok() { redis-cli -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

# require_postgres_server: PostgreSQL's server binaries (pg_bin: their
# directory), the newest installed.
require_postgres_server() {
  require_postgres
  local dir
  pg_bin=""
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && pg_bin="$dir"
  done
  [ -n "$pg_bin" ] || { echo "no initdb in /usr/lib/postgresql/*/bin" >&2; exit 1; }
}
# start_postgres PORT: a private PostgreSQL cluster in workdir/postgres on
# 127.0.0.1:PORT (superuser comms, trusted on loopback: nothing else can
# reach a free port of a throwaway cluster), as the component postgres.
# Up to 300 connections: each instance of a service pools up to 8.
# As root, the server runs as the postgres user, as start.sh runs it.
# Sets postgres_port.
start_postgres() {
  postgres_port="$1"
  local data="$workdir/postgres" as=()
  if [ "$(id -u)" = 0 ]; then
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    chmod o+x "$workdir"
  fi
  mkdir -p "$data"
  chmod 700 "$data"
  [ "${#as[@]}" = 0 ] || chown postgres: "$data"
  "${as[@]}" "$pg_bin/initdb" -D "$data" -U comms --auth=trust --encoding=UTF8 --no-locale \
    >"$workdir/postgres-initdb.log" 2>&1 || { tail -n 15 "$workdir/postgres-initdb.log" >&2; exit 1; }
  local saved_rundir="${rundir:-}"
  rundir="$workdir"
  launch postgres "${as[@]}" "$pg_bin/postgres" -D "$data" -p "$postgres_port" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories="$data" -c max_connections=300
  ready_or_fail postgres 60 postgres_accepts "$postgres_port" "$pg_bin/pg_isready"
  rundir="$saved_rundir"
}
# fresh_databases NAME...: drops and creates each database on the private
# PostgreSQL, so that a run starts empty.
fresh_databases() {
  local db
  # No NOTICE that a database to drop is not there yet.
  export PGOPTIONS='-c client_min_messages=warning'
  for db in "$@"; do
    "$pg_bin/dropdb" -h 127.0.0.1 -p "$postgres_port" -U comms --if-exists "$db"
    "$pg_bin/createdb" -h 127.0.0.1 -p "$postgres_port" -U comms "$db"
  done
}
# postgres_url DB: the URL of database DB on the private PostgreSQL.
postgres_url() { echo "postgres://comms@127.0.0.1:$postgres_port/$1"; }

# The environment of a service process: nothing inherited but PATH and HOME;
# service_extra_env is added. INSTANCE (as in port: user-service.2) is the
# instance of service NAME, when not NAME itself.
service_env() {
  local name="$1" instance="${2:-$1}" port_var="${manifest_variable[$1]}"
  printf '%s\n' PATH="$PATH" HOME="${HOME:-/tmp}" APP_ENV=dev RUST_LOG=info LOG_FORMAT=json \
    CONFIG_DIR="$workdir/no-config" DATA_DIR="$rundir/data" \
    REDIS_URL="${redis_url:-redis://127.0.0.1:$redis_port}" \
    SMTP_HOST=127.0.0.1 SMTP_PORT="$smtp_port" SMTP_POOL="$smtp_pool" SEED_USERS="$users" \
    "${service_extra_env[@]}" "$port_var=${port[$instance]}"
}
# start_service NAME [INSTANCE]: starts one service (or its instance
# INSTANCE, named as in port) on its port, not waiting.
start_service() {
  local name="$1" instance="${2:-$1}" env_vars
  mkdir -p "$rundir/data"
  mapfile -t env_vars < <(service_env "$name" "$instance")
  launch "$instance" env -i "${env_vars[@]}" "$bin_dir/${manifest_binary[$name]}"
}
# seed_users: user-service alone first (it seeds USERS users before it is
# ready), so that seeding has the machine to itself.
seed_users() {
  start_service user-service
  ready_or_fail user-service 600 service_ready user-service
}
# start_other_services: every service but user-service (which
# seed_users started), until each is ready.
start_other_services() {
  local name others=()
  for name in "${services[@]}"; do [ "$name" = user-service ] || others+=("$name"); done
  for name in "${others[@]}"; do start_service "$name"; done
  for name in "${others[@]}"; do
    ready_or_fail "$name" 60 service_ready "$name"
  done
}

# The campaigns endpoint of campaign-service.
campaigns_api() { echo "http://127.0.0.1:${port[campaign-service]}/api/v1/campaigns"; }
# create_campaign NAME SUBJECT BODY: creates a campaign to every user; prints
# campaign-service's answer (JSON, with its id).
create_campaign() {
  curl -fsS -XPOST "$(campaigns_api)" -H 'content-type: application/json' \
    -d "$(jq -n --arg n "$1" --arg s "$2" --arg b "$3" '{name: $n, subject: $s, body: $b}')"
}

# The campaign of bench/campaign.sh and bench/scale.sh, so that their figures
# compare: a message of about 600 bytes to each user.
catalogue_subject='Hello {{ name }}, our spring catalogue is out'
catalogue_body='Dear {{ name }},

our spring catalogue is out: new products, better prices, and free delivery
on every order above 50 euros until the end of the month. Read it online, or
reply to this email and we will post you a printed copy.

You receive this message at {{ email }} because you subscribed to our news.
To stop receiving it, reply with "unsubscribe".

Best regards,
the comms team
'
# catalogue_campaign [ON_READ]: creates the catalogue campaign (named bench)
# at t0 and reads it back every 0.2 s until it is completed, at t1; campaign
# holds its last answer (t0, t1 and campaign are the caller's). ON_READ, a
# function, is called with the status after each read. Fails the run when
# the campaign is not completed after campaign_timeout seconds.
catalogue_campaign() {
  local on_read="${1:-}" api created id status deadline
  api="$(campaigns_api)"
  t0="$(now)"
  created="$(create_campaign bench "$catalogue_subject" "$catalogue_body")" || fail "creating the campaign failed"
  id="$(jq -r .id <<<"$created")"
  deadline=$((SECONDS + campaign_timeout))
  while :; do
    campaign="$(curl -fsS --max-time 5 "$api/$id")" || fail "reading the campaign failed"
    status="$(jq -r .status <<<"$campaign")"
    [ -z "$on_read" ] || "$on_read" "$status"
    [ "$status" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "campaign not completed after ${campaign_timeout}s: $campaign"
    sleep 0.2
  done
  t1="$(now)"
}

# count_reaching TARGET TRIES CMD...: runs CMD, which prints a count, until
# the count reaches TARGET, up to TRIES times more, 0.1 s apart; prints the
# last count.
count_reaching() {
  local target="$1" tries="$2" count tried=0
  shift 2
  while :; do
    count="$("$@")"
    if [ "$count" -ge "$target" ] || [ "$tried" -ge "$tries" ]; then break; fi
    tried=$((tried + 1))
    sleep 0.1
  done
  echo "$count"
}

# check_exact RECEIVED SERVER [FAILED...]: whether the run (recorded by
# record_campaign) was exact: its progress (sent + failed = total = users)
# and every email at the SMTP server (RECEIVED of users, SERVER names it in
# a failed check), and none of the checks FAILED that the caller made.
# Sets result[$run.received] and result[$run.exact]; prints each failed
# check on stderr.
check_exact() {
  local received="$1" server="$2" checks=()
  shift 2
  local total="${result[$run.total]}" sent="${result[$run.sent]}" failed="${result[$run.failed]}"
  [ "$total" = "$users" ] || checks+=("total $total != USERS $users")
  [ "$((sent + failed))" = "$total" ] || checks+=("sent $sent + failed $failed != total $total")
  checks+=("$@")
  result[$run.received]="$received"
  [ "$received" = "$users" ] || checks+=("$server received $received messages, not $users")
  result[$run.exact]=true
  if [ "${#checks[@]}" -gt 0 ]; then
    result[$run.exact]=false
    local check
    for check in "${checks[@]}"; do printf '[%s] CHECK FAILED: %s\n' "$run" "$check" >&2; done
  fi
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# CPU ticks (user + system) of a process.
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"
  awk '{ print $12 + $13 }' <<<"$stat"
}

# start_smtp_sink: Postfix's smtp-sink on smtp_port (accepts and drops),
# as the component smtp-sink; -c: counters (sessions, messages) on stdout;
# up to 256 sessions at once (the default), unlimited sessions and
# messages in all.
start_smtp_sink() {
  local as_user
  as_user="$(id -un)"
  [ "$(id -u)" -ne 0 ] || as_user=nobody
  launch smtp-sink "$smtp_sink" -c -u "$as_user" "127.0.0.1:$smtp_port" 1024
  ready_or_fail smtp-sink 30 smtp_greets "$smtp_port"
}
# The messages smtp-sink has counted so far in this run (its -c counters,
# last update).
sink_messages() {
  tr '\r' '\n' <"$rundir/smtp-sink.log" | sed -nE 's/.*mesg=([0-9]+).*/\1/p' | tail -n 1 | grep . || echo 0
}

# Lines "key number" on stdin as one JSON object {key: number, ...}.
# record_campaign RUN CAMPAIGN_JSON: puts a completed campaign's figures in
# the caller's `result` array under RUN: campaign_s (its own timestamps,
# not the polling's), total, sent, failed, emails_per_s.
record_campaign() {
  local run="$1" campaign="$2"
  result[$run.campaign_s]="$(jq -r '(.completed_at - .created_at) / 1000' <<<"$campaign")"
  result[$run.total]="$(jq -r .progress.total <<<"$campaign")"
  result[$run.sent]="$(jq -r .progress.sent <<<"$campaign")"
  result[$run.failed]="$(jq -r .progress.failed <<<"$campaign")"
  result[$run.emails_per_s]="$(awk -v n="${result[$run.total]}" -v s="${result[$run.campaign_s]}" 'BEGIN { printf "%.0f", n / s }')"
}

pairs_json() { jq -Rn '[inputs | select(length > 0) | split(" ") | {(.[0]): (.[1] | tonumber)}] | add'; }

#!/usr/bin/env bash
# Event store benchmark: publish and consume throughput of crates/eventstore
# (examples/throughput.rs) against a private redis-server, next to the raw
# XADD ceiling redis-benchmark reaches on that same server in the same run,
# so the figures of a busy or small machine can still be compared.
#
# Two server configurations, one after the other: no persistence, and AOF
# fsynced every second (as a deployment runs it). For each: the raw ceiling
# (redis-benchmark, 50 clients, pipelines of 64), then the throughput example
# (FLUSHALL between runs). Prints a table, then, as the last line, one JSON
# object (top-level figures are the no-persistence run's).
#
#   bench/eventstore.sh              # 1,000,000 events
#   EVENTS=200000 bench/eventstore.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
# shellcheck source=scripts/ready.sh
source scripts/ready.sh
require_redis
command -v redis-benchmark >/dev/null || apt_install redis-tools

events="${EVENTS:-1000000}"
started=$SECONDS

# One entry shaped like the example's envelopes (same fields, same sizes), for
# the like-for-like raw ceiling; the minimal one (`f v`) is the usual figure.
envelope_entry=(type bench.notification_requested v 1 id 0b6c1f0e-3a59-4b0a-9d2e-6f1b2c3d4e5f
  time 1764082926000 payload '{"campaign_id":42,"user_id":1000000,"channel":"email"}')

echo "building the throughput example (release)..." >&2
cargo build --release --quiet -p eventstore --example throughput
throughput="${CARGO_TARGET_DIR:-target}/release/examples/throughput"

workdir="$(mktemp -d)"
server_pid=""
port=""

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  rm -rf "$workdir"
}
trap cleanup EXIT

# A loopback port nothing listens on (never 6379: a system Redis may be there).
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local candidate
  while :; do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

# start_server NAME REDIS-ARGS...: a redis-server of our own, in the background.
start_server() {
  local name="$1"
  shift
  local dir="$workdir/$name"
  mkdir -p "$dir"
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir" --daemonize no \
    --logfile "$dir/redis.log" "$@" &
  server_pid=$!
  await_ready "redis-server ($name)" "$server_pid" 10 "$dir/redis.log" redis_pings "$port" || exit 1
}

flushall() {
  redis-cli -p "$port" flushall >/dev/null
}

# raw_xadd FIELD VALUE...: requests per second of redis-benchmark's XADD.
# (redis-benchmark 7.0 has no built-in xadd test, hence the explicit command.)
raw_xadd() {
  local rps
  rps="$(redis-benchmark -p "$port" -c 50 -P 64 -n "$events" --csv XADD benchstream '*' "$@" |
    awk -F'","' 'NR == 2 { print $2 }')"
  flushall
  [ -n "$rps" ] || { echo "redis-benchmark gave no figure" >&2; exit 1; }
  printf '%.0f\n' "$rps"
}

# json_number JSON KEY: the number under KEY in a flat JSON object.
json_number() {
  sed -E "s/.*\"$2\":([0-9.]+).*/\1/" <<<"$1"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

declare -A result
configs=(no_persistence aof_everysec)
declare -A server_args=(
  [no_persistence]="--appendonly no"
  [aof_everysec]="--appendonly yes --appendfsync everysec"
)

for config in "${configs[@]}"; do
  echo "config $config: starting redis-server..." >&2
  # shellcheck disable=SC2086 # the arguments are meant to split
  start_server "$config" ${server_args[$config]}
  echo "config $config: raw XADD ceiling ($events requests)..." >&2
  result[$config.raw]="$(raw_xadd f v)"
  result[$config.raw_envelope]="$(raw_xadd "${envelope_entry[@]}")"
  echo "config $config: throughput example ($events events)..." >&2
  line="$("$throughput" --redis-url "redis://127.0.0.1:$port" --events "$events")"
  flushall
  stop_server
  result[$config.json]="$line"
  result[$config.publish]="$(json_number "$line" publish_per_s)"
  result[$config.consume]="$(json_number "$line" consume_per_s)"
done

echo
printf '%-14s %12s %12s %14s %18s %10s %14s\n' config publish/s consume/s "raw XADD/s" "raw XADD env./s" "pub/raw" "pub/raw env."
for config in "${configs[@]}"; do
  printf '%-14s %12s %12s %14s %18s %10s %14s\n' "$config" \
    "${result[$config.publish]}" "${result[$config.consume]}" \
    "${result[$config.raw]}" "${result[$config.raw_envelope]}" \
    "$(ratio "${result[$config.publish]}" "${result[$config.raw]}")" \
    "$(ratio "${result[$config.publish]}" "${result[$config.raw_envelope]}")"
done
echo "events: $events; cores: $(nproc); took $((SECONDS - started)) s"
echo

config_json() {
  local config="$1"
  printf '{"publish_per_s":%s,"consume_per_s":%s,"raw_xadd_per_s":%s,"raw_xadd_envelope_per_s":%s,"publish_ratio":%s,"publish_ratio_envelope":%s,"run":%s}' \
    "${result[$config.publish]}" "${result[$config.consume]}" \
    "${result[$config.raw]}" "${result[$config.raw_envelope]}" \
    "$(ratio "${result[$config.publish]}" "${result[$config.raw]}")" \
    "$(ratio "${result[$config.publish]}" "${result[$config.raw_envelope]}")" \
    "${result[$config.json]}"
}
printf '{"events":%s,"publish_per_s":%s,"consume_per_s":%s,"raw_xadd_per_s":%s,"raw_xadd_envelope_per_s":%s,"no_persistence":%s,"aof_everysec":%s,"machine":{"cores":%s,"date":"%s","redis":"%s"},"elapsed_s":%s}\n' \
  "$events" "${result[no_persistence.publish]}" "${result[no_persistence.consume]}" \
  "${result[no_persistence.raw]}" "${result[no_persistence.raw_envelope]}" \
  "$(config_json no_persistence)" "$(config_json aof_everysec)" \
  "$(nproc)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')" \
  "$((SECONDS - started))"

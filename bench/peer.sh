#!/usr/bin/env bash
# comms beside a peer built the common way, on the same machine in one run:
# a campaign's emails as BullMQ jobs (one per recipient, added in bulk),
# sent by nodemailer workers (one Node.js process per core, pooled SMTP),
# with a private redis-server (AOF fsynced every second) and Postfix's
# smtp-sink on free loopback ports; then the raw SMTP ceiling of the same
# sink (smtp-source); then comms' own figures (bench/campaign.sh into
# smtp-sink). The same message (the catalogue campaign's templates, about
# 600 bytes), the same number of SMTP connections (SMTP_POOL).
#
# The peer's time runs from its first job added to its queue empty, as
# comms' runs from the campaign's creation to its completion; every email
# must be at the sink. Prints a table, then, as the last line, one JSON
# object: each side's emails/s, its ratio to its run's raw ceiling, comms
# over the peer, and the peer's CPU per email.
#
#   bench/peer.sh                   # 100,000 users
#   USERS=5000 bench/peer.sh        # a quick run
#   COMMS=0 bench/peer.sh           # the peer alone
#
# Settings: USERS (100000), SMTP_POOL (16: comms' SMTP connections, shared
# by the peer's workers), PEER_WORKERS (the cores), PEER_CONCURRENCY (256
# jobs at once per worker), CAMPAIGN_TIMEOUT (1800 s), COMMS (1), KEEP=1
# keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 1800
workers="${PEER_WORKERS:-$(nproc)}"
concurrency="${PEER_CONCURRENCY:-256}"
comms="${COMMS:-1}"
require_whole_numbers users smtp_pool campaign_timeout workers concurrency
case "$comms" in
  0 | 1) ;;
  *) echo "COMMS: 0 or 1, not '$comms'" >&2; exit 2 ;;
esac
[ "$smtp_pool" -ge "$workers" ] || { echo "SMTP_POOL=$smtp_pool: at least one connection per worker ($workers)" >&2; exit 2; }
started=$SECONDS

require_bench_tools
require_postfix_tools
command -v node >/dev/null || apt_install nodejs npm
peer_dir="$root/bench/peer"
if [ ! -f "$peer_dir/node_modules/.package-lock.json" ] || [ "$peer_dir/package-lock.json" -nt "$peer_dir/node_modules/.package-lock.json" ]; then
  echo "installing the peer (npm ci, bench/peer/package-lock.json)..." >&2
  (cd "$peer_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
smtp_sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"
smtp_source="$(command -v smtp-source || echo /usr/sbin/smtp-source)"
make_workdir

declare -A result=()
run=peer
rundir="$workdir/$run"
mkdir -p "$rundir"
pid=()
read -r redis_port smtp_port <<<"$(free_ports 2)"
result[loadavg]="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "[peer] load average before the run: ${result[loadavg]}" >&2

start_redis
start_smtp_sink
worker_names=()
for ((i = 1; i <= workers; i++)); do
  name="peer-worker.$i"
  worker_names+=("$name")
  # The pool split between the workers; a remainder goes to the first.
  connections=$((smtp_pool / workers + (i == 1 ? smtp_pool % workers : 0)))
  launch "$name" env SUBJECT="$catalogue_subject" BODY="$catalogue_body" \
    node "$peer_dir/worker.mjs" "$redis_port" "$smtp_port" "$concurrency" "$connections"
  ready_or_fail "$name" 30 grep -qx ready "$rundir/$name.log"
done

echo "[peer] $users jobs, $workers workers of $concurrency jobs at once, $smtp_pool SMTP connections..." >&2
cpu_before=()
for name in "${worker_names[@]}" redis smtp-sink; do cpu_before+=("$(cpu_ticks "${pid[$name]}")"); done
node "$peer_dir/produce.mjs" "$redis_port" "$users" >"$rundir/produce.json" 2>"$rundir/produce.log" ||
  fail "the producer failed"
cpu_ticks_used() {
  local i=0 name total=0
  for name in "$@"; do
    total=$((total + $(cpu_ticks "${pid[$name]}") - cpu_before[i]))
    i=$((i + 1))
  done
  echo "$total"
}
all_ticks="$(cpu_ticks_used "${worker_names[@]}" redis smtp-sink)"
received="$(count_reaching "$users" 50 sink_messages)"
result[peer.drained_s]="$(jq -r .drained_s "$rundir/produce.json")"
result[peer.enqueued_s]="$(jq -r .enqueued_s "$rundir/produce.json")"
result[peer.failed]="$(jq -r .failed "$rundir/produce.json")"
result[peer.received]="$received"
result[peer.emails_per_s]="$(awk -v n="$users" -v s="${result[peer.drained_s]}" 'BEGIN { printf "%.0f", n / s }')"
clk_tck="$(getconf CLK_TCK)"
# CPU per email (µs) of the workers and Redis together, and of the sink.
sink_ticks=$(($(cpu_ticks "${pid[smtp-sink]}") - cpu_before[workers + 1]))
result[peer.cpu_us_per_email]="$(awk -v t="$((all_ticks - sink_ticks))" -v hz="$clk_tck" -v n="$users" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
result[peer.sink_cpu_us_per_email]="$(awk -v t="$sink_ticks" -v hz="$clk_tck" -v n="$users" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
[ "$received" = "$users" ] || fail "smtp-sink counted $received messages, not $users"
[ "${result[peer.failed]}" = 0 ] || fail "${result[peer.failed]} jobs failed"

stopping=()
for name in "${worker_names[@]}" redis; do stopping+=("${pid[$name]}"); done
stop_pids "${stopping[@]}"

echo "[peer] raw SMTP ceiling: smtp-source, $smtp_pool sessions, $users messages of 600 bytes..." >&2
t0="$(now)"
"$smtp_source" -d -s "$smtp_pool" -m "$users" -l 600 -f from@example.com -t to@example.com \
  "127.0.0.1:$smtp_port" >"$rundir/smtp-source.log" 2>&1 || fail "smtp-source failed"
t1="$(now)"
result[peer.raw_smtp_per_s]="$(awk -v n="$users" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", n / s }')"
result[peer.ratio]="$(awk -v a="${result[peer.emails_per_s]}" -v b="${result[peer.raw_smtp_per_s]}" 'BEGIN { printf "%.2f", a / b }')"
stop_pids "${pid[smtp-sink]}"

comms_json=null
# comms' CPU per email, of its services and Redis (not the sink).
comms_cpu='.cpu_us_per_email | to_entries | map(select(.key != "smtp-sink") | .value) | add'
if [ "$comms" = 1 ]; then
  echo "[comms] bench/campaign.sh into smtp-sink, $users users..." >&2
  SERVERS=smtp-sink USERS="$users" SMTP_POOL="$smtp_pool" CAMPAIGN_TIMEOUT="$campaign_timeout" \
    bench/campaign.sh >"$rundir/comms.out" 2>"$rundir/comms.log" || fail "bench/campaign.sh failed"
  comms_json="$(tail -n 1 "$rundir/comms.out")"
  jq -e '.exact == true' <<<"$comms_json" >/dev/null || fail "comms' run was not exact: $comms_json"
fi

printf '%-6s %10s %12s %10s %7s\n' side seconds emails/s "raw smtp/s" ratio
printf '%-6s %10s %12s %10s %7s\n' peer "${result[peer.drained_s]}" "${result[peer.emails_per_s]}" \
  "${result[peer.raw_smtp_per_s]}" "${result[peer.ratio]}"
if [ "$comms" = 1 ]; then
  jq -r '["comms", .campaign_s, .emails_per_s, .raw_smtp_per_s, .ratio] | @tsv' <<<"$comms_json" |
    awk -F'\t' '{ printf "%-6s %10s %12s %10s %7s\n", $1, $2, $3, $4, $5 }'
  echo "comms / peer: $(jq -r --argjson peer "${result[peer.emails_per_s]}" '.emails_per_s / $peer * 100 | round / 100' <<<"$comms_json")"
  echo "comms: CPU per email: services and Redis $(jq -r "$comms_cpu" <<<"$comms_json") µs, the sink $(jq -r '.cpu_us_per_email["smtp-sink"]' <<<"$comms_json") µs"
fi
echo "peer: $workers workers x $concurrency jobs, enqueued in ${result[peer.enqueued_s]} s; CPU per email: workers and Redis ${result[peer.cpu_us_per_email]} µs, the sink ${result[peer.sink_cpu_us_per_email]} µs"

jq -cn --argjson users "$users" --argjson smtp_pool "$smtp_pool" --argjson workers "$workers" \
  --argjson concurrency "$concurrency" \
  --argjson peer_s "${result[peer.drained_s]}" --argjson peer_rate "${result[peer.emails_per_s]}" \
  --argjson peer_raw "${result[peer.raw_smtp_per_s]}" --argjson peer_ratio "${result[peer.ratio]}" \
  --argjson peer_cpu "${result[peer.cpu_us_per_email]}" --argjson comms "$comms_json" \
  --arg loadavg "${result[loadavg]}" --argjson cores "$(nproc)" --argjson elapsed "$((SECONDS - started))" '
  {users: $users, smtp_pool: $smtp_pool,
   peer: {workers: $workers, concurrency: $concurrency, seconds: $peer_s, emails_per_s: $peer_rate,
          raw_smtp_per_s: $peer_raw, ratio: $peer_ratio, cpu_us_per_email: $peer_cpu},
   comms: (if $comms == null then null else {seconds: $comms.campaign_s, emails_per_s: $comms.emails_per_s,
          raw_smtp_per_s: $comms.raw_smtp_per_s, ratio: $comms.ratio,
          cpu_us_per_email: ($comms | '"$comms_cpu"')} end),
   comms_over_peer: (if $comms == null then null else ($comms.emails_per_s / $peer_rate * 100 | round / 100) end),
   loadavg_before: $loadavg, machine: {cores: $cores}, elapsed_s: $elapsed}'

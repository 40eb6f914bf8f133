#!/usr/bin/env bash
# Campaign end to end: the four services, a private redis-server (AOF fsynced
# every second, as start.sh runs it) and an SMTP server, all on free loopback
# ports; one campaign to every seeded user, timed from its creation to its
# completion.
#
# Two runs, each on a fresh Redis and fresh databases:
#   maildev     the developer stack's SMTP server (Node.js, keeps every email)
#   smtp-sink   Postfix's test sink (accepts and drops), so the SMTP server is
#               not what limits delivery
# After each campaign, smtp-source sends as many messages of the same size
# over as many reused connections as email-service's SMTP pool to the same
# server: the raw SMTP ceiling, measured in the same run on the same machine.
#
# Per run: seeding time (user-service's "users seeded" log line), campaign
# seconds and emails/s, the ratio to the raw ceiling, peak RSS (VmHWM) of each
# process, Redis memory (peak and final), CPU per process during the campaign
# and the largest backlog (lag + pending) each consumer group had. Checks that
# the progress is exact (sent + failed = total = USERS) and that the SMTP
# server received USERS messages. Prints tables, then, as the last line, one
# JSON object (top-level figures are the smtp-sink run's, when it ran).
#
#   bench/campaign.sh                 # 100,000 users
#   USERS=5000 bench/campaign.sh      # a quick run
#   USERS=1000000 SERVERS=smtp-sink bench/campaign.sh   # a million, smtp-sink only
#
# Settings: USERS (100000), SMTP_POOL (16, email-service's SMTP connections
# and smtp-source's sessions), CONCURRENCY (the services' own default when
# unset), SERVICE_ENV (more VAR=value pairs for every service),
# CAMPAIGN_TIMEOUT (1800 s), MAILDEV_RAW_MESSAGES (smtp-source messages
# sent to maildev; min(USERS, 20000)), KEEP=1 keeps the work directory
# (logs, databases, samples), SERVERS ("maildev smtp-sink", the runs to
# make, in order), DKIM (off; rsa or ed25519: email-service signs every
# email with a key of that algorithm, RSA of 2048 bits, that openssl
# makes for the run), WEBHOOK (0; 1: an endpoint registered for every
# `email.sent` and the campaign's end, WEBHOOK_BATCH (100) events a POST,
# into a receiver (Python's http.server) that answers 200: what webhooks
# cost the campaign, and how long after its completion the endpoint had
# every event).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 1800
maildev_raw="${MAILDEV_RAW_MESSAGES:-$((users < 20000 ? users : 20000))}"
read -r -a runs <<<"${SERVERS:-maildev smtp-sink}"
for run in "${runs[@]}"; do
  case "$run" in
    maildev | smtp-sink) ;;
    *) echo "SERVERS: unknown server '$run' (maildev, smtp-sink)" >&2; exit 2 ;;
  esac
done
require_whole_numbers users smtp_pool campaign_timeout maildev_raw
started=$SECONDS

require_bench_tools
require_node_tools
require_postfix_tools
smtp_sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"
smtp_source="$(command -v smtp-source || echo /usr/sbin/smtp-source)"
maildev_bin="$root/tools/node_modules/.bin/maildev"

echo "building the services (release)..." >&2
build_release "${services[@]}"
[ -z "${CONCURRENCY:-}" ] || service_extra_env+=(CONCURRENCY="$CONCURRENCY")
# SERVICE_ENV: more VAR=value pairs for every service, e.g. one service's
# own tuning ("EMAIL_CONCURRENCY=32 EMAIL_READ_BATCH=32").
read -r -a extra_env <<<"${SERVICE_ENV:-}"
service_extra_env+=("${extra_env[@]}")
dkim="${DKIM:-off}"
case "$dkim" in
  off) ;;
  rsa | ed25519)
    require_openssl
    key_options=(-algorithm ed25519)
    [ "$dkim" = ed25519 ] || key_options=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
    dkim_pem="$(openssl genpkey "${key_options[@]}" 2>/dev/null)"
    # On one line (a service's environment is passed a variable a line),
    # its line breaks written \n, as email-service also reads a PEM.
    service_extra_env+=("EMAIL_DKIM_PRIVATE_KEY=${dkim_pem//$'\n'/\\n}" EMAIL_DKIM_SELECTOR=bench)
    ;;
  *) echo "DKIM: unknown '$dkim' (off, rsa, ed25519)" >&2; exit 2 ;;
esac
webhook="${WEBHOOK:-0}" webhook_batch="${WEBHOOK_BATCH:-100}"
case "$webhook" in
  0 | 1) ;;
  *) echo "WEBHOOK: 0 or 1, not '$webhook'" >&2; exit 2 ;;
esac
require_whole_numbers webhook_batch
make_workdir

mb() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.1f", v / d }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# Peak resident set (VmHWM) of a process, in MB.
peak_rss_mb() {
  local kb
  kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)"
  mb "${kb:-0}" 1024
}
# "group pending lag" per consumer group of a stream.
stream_groups() {
  rcli XINFO GROUPS "$1" 2>/dev/null |
    awk 'prev == "name" { n = $0 } prev == "pending" { p = $0 } prev == "lag" { print n, p, $0 } { prev = $0 }'
}
redis_memory() { rcli info memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }

# start_webhook: a receiver answering 200 to every POST, and an endpoint
# registered on it (webhook_id).
start_webhook() {
  local receiver_port hooks
  receiver_port="$(free_ports 1)"
  launch webhook-receiver python3 -c '
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()' "$receiver_port"
  ready_or_fail webhook-receiver 10 curl -fsS -o /dev/null -X POST -d '{}' "http://127.0.0.1:$receiver_port/"
  hooks="http://127.0.0.1:${port[campaign-service]}/api/v1/webhooks"
  webhook_id="$(curl -fsS -X POST -H 'content-type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$receiver_port/hooks\", \"events\": [\"email.sent\", \"campaign.completed\"], \"batch_size\": $webhook_batch}" \
    "$hooks" | jq -r .id)" || fail "registering the webhook failed"
}
# webhook_drained: waits until the endpoint has every event (each email's
# and the campaign's end), for at most 10 minutes; records when, after t1.
webhook_drained() {
  local url="http://127.0.0.1:${port[campaign-service]}/api/v1/webhooks/$webhook_id" delivered=0 deadline=$((SECONDS + 600))
  while [ "$delivered" -lt $((users + 1)) ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
    delivered="$(curl -fsS --max-time 5 "$url" | jq .delivered)"
  done
  result[$run.webhook_delivered]="$delivered"
  result[$run.webhook_after_s]="$(elapsed "$t1" "$(now)")"
  [ "$delivered" = $((users + 1)) ] || fail "the webhook endpoint had $delivered events, not $((users + 1))"
}

declare -A result=()   # run.key -> value
clk_tck="$(getconf CLK_TCK)"
msg_size=""            # mean size of the emails maildev stored (bytes)

# sample_campaign STATUS, after each read of the campaign (catalogue_campaign's
# ON_READ): when the audience was expanded (expanded_at) and, every second,
# each group's pending and lag and the progress (into samples).
sample_campaign() {
  [ -n "$expanded_at" ] || [ "$1" = expanding ] || expanded_at="$(now)"
  [ "$1" != completed ] || return 0
  if [ "$SECONDS" -ge "$next_sample" ]; then
    next_sample=$((SECONDS + 1))
    local stream t
    t="$(elapsed "$t0" "$(now)")"
    for stream in "${streams[@]}"; do
      stream_groups "$stream" | sed "s|^|$t $stream |" >>"$samples"
    done
    echo "$t progress $(jq -c .progress <<<"$campaign")" >>"$samples"
  fi
}
# The emails maildev stored in the run.
maildev_stored() { find "$rundir/mail" -maxdepth 1 -name '*.eml' | wc -l; }

# bench_run NAME: one complete run; NAME is maildev or smtp-sink.
bench_run() {
  run="$1"
  rundir="$workdir/$run"
  mkdir -p "$rundir/mail"
  pid=()
  local ports
  read -r redis_port smtp_port web_port ports <<<"$(free_ports $((3 + ${#services[@]})))"
  # shellcheck disable=SC2086 # one port each
  service_ports $ports
  result[$run.loadavg]="$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "[$run] load average before the run: ${result[$run.loadavg]}" >&2

  start_redis
  case "$run" in
    maildev)
      launch maildev "$maildev_bin" --smtp "$smtp_port" --web "$web_port" --ip 127.0.0.1 \
        --web-ip 127.0.0.1 --mail-directory "$rundir/mail"
      ready_or_fail maildev 60 http_ready "http://127.0.0.1:$web_port/healthz"
      ready_or_fail maildev 30 smtp_greets "$smtp_port"
      smtp_proc=maildev
      ;;
    smtp-sink)
      start_smtp_sink
      smtp_proc=smtp-sink
      ;;
  esac

  # user-service alone first, so that seeding has the machine to itself.
  echo "[$run] seeding $users users..." >&2
  local t0 t1
  t0="$(now)"
  seed_users
  t1="$(now)"
  result[$run.ready_s]="$(elapsed "$t0" "$t1")"
  local seeded_line
  seeded_line="$(jq -c 'select(.fields.message == "users seeded") | .fields' "$rundir/user-service.log" 2>/dev/null | head -n 1)"
  [ -n "$seeded_line" ] || fail "no 'users seeded' line in user-service's log"
  [ "$(jq -r .seeded <<<"$seeded_line")" = "$users" ] || fail "seeded $(jq -r .seeded <<<"$seeded_line") users, not $users"
  result[$run.seed_s]="$(jq -r '.seconds * 1000 | round / 1000' <<<"$seeded_line")"

  start_other_services
  [ "$webhook" = 0 ] || start_webhook

  local procs=("${services[@]}" "$smtp_proc" redis)
  declare -A ticks0=()
  local name
  for name in "${procs[@]}"; do ticks0[$name]="$(cpu_ticks "${pid[$name]}")"; done

  echo "[$run] campaign to $users users..." >&2
  local campaign next_sample=0 expanded_at=""
  local samples="$rundir/samples.txt"
  : >"$samples"
  catalogue_campaign sample_campaign
  [ -n "$expanded_at" ] || expanded_at="$t1"
  [ "$webhook" = 0 ] || webhook_drained
  result[$run.campaign_wall_s]="$(elapsed "$t0" "$t1")"
  result[$run.expanded_s]="$(elapsed "$t0" "$expanded_at")"
  record_campaign "$run" "$campaign"
  local sent="${result[$run.sent]}"
  local ticks
  for name in "${procs[@]}"; do
    ticks="$(cpu_ticks "${pid[$name]}")"
    result[$run.cpu.$name]="$(awk -v a="${ticks0[$name]}" -v b="$ticks" \
      -v hz="$clk_tck" -v s="${result[$run.campaign_wall_s]}" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / s }')"
    # CPU time per email, in microseconds: where the next bottleneck is.
    result[$run.cpu_us.$name]="$(awk -v a="${ticks0[$name]}" -v b="$ticks" \
      -v hz="$clk_tck" -v n="$users" 'BEGIN { printf "%.0f", 1e6 * (b - a) / hz / n }')"
  done
  # The largest backlog (lag + pending) each group had, and when.
  result[$run.backlog]="$(awk '$3 != "progress" && NF == 5 { k = $2 " " $3; b = $4 + $5; if (!(k in m) || b > m[k]) { m[k] = b; at[k] = $1 } }
    END { for (k in m) printf "%s %d %s\n", k, m[k], at[k] }' "$samples" | sort)"

  # Memory: VmHWM is the process's peak resident set.
  for name in "${procs[@]}"; do
    [ "$name" = redis ] || result[$run.rss.$name]="$(peak_rss_mb "${pid[$name]}")"
  done
  result[$run.redis_peak_mb]="$(mb "$(redis_memory used_memory_peak)" 1048576)"
  result[$run.redis_final_mb]="$(mb "$(redis_memory used_memory)" 1048576)"
  result[$run.redis_rss_mb]="$(peak_rss_mb "${pid[redis]}")"

  # Exact progress, and every message at the SMTP server.
  local received=0 api_check=()
  case "$run" in
    maildev)
      # The .eml files it stored, and its API: ?skip=USERS-1 gives one email,
      # ?skip=USERS none.
      received="$(count_reaching "$sent" 100 maildev_stored)"
      local last beyond
      last="$(curl -fsS --max-time 60 "http://127.0.0.1:$web_port/email?skip=$((users - 1))" | jq length)"
      beyond="$(curl -fsS --max-time 60 "http://127.0.0.1:$web_port/email?skip=$users" | jq length)"
      [ "$last" = 1 ] && [ "$beyond" = 0 ] || api_check=("maildev's API does not hold exactly $users emails")
      msg_size="$(find "$rundir/mail" -maxdepth 1 -name '*.eml' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / NR }')"
      ;;
    smtp-sink)
      received="$(sink_messages)"
      ;;
  esac
  check_exact "$received" "the SMTP server" "${api_check[@]}"

  # The services and Redis stop; the SMTP server stays for the raw ceiling.
  local stopping=()
  for name in "${services[@]}" redis; do
    stopping+=("${pid[$name]}")
  done
  [ "$webhook" = 0 ] || stopping+=("${pid[webhook-receiver]}")
  stop_pids "${stopping[@]}"

  local messages=$users
  [ "$run" = smtp-sink ] || messages=$maildev_raw
  local size="${msg_size:-600}" before_raw
  [ "$run" != smtp-sink ] || before_raw="$(sink_messages)"
  echo "[$run] raw SMTP ceiling: smtp-source, $smtp_pool sessions, $messages messages of $size bytes..." >&2
  t0="$(now)"
  "$smtp_source" -d -s "$smtp_pool" -m "$messages" -l "$size" \
    -f from@example.com -t to@example.com "127.0.0.1:$smtp_port" >"$rundir/smtp-source.log" 2>&1 ||
    fail "smtp-source failed"
  t1="$(now)"
  result[$run.raw_s]="$(elapsed "$t0" "$t1")"
  result[$run.raw_messages]="$messages"
  result[$run.raw_smtp_per_s]="$(awk -v n="$messages" -v s="${result[$run.raw_s]}" 'BEGIN { printf "%.0f", n / s }')"
  if [ "$run" = smtp-sink ]; then
    local got
    got="$(($(sink_messages) - before_raw))"
    [ "$got" = "$messages" ] || {
      result[$run.exact]=false
      echo "[$run] CHECK FAILED: smtp-sink counted $got raw messages, not $messages" >&2
    }
  fi
  result[$run.ratio]="$(ratio "${result[$run.emails_per_s]}" "${result[$run.raw_smtp_per_s]}")"
  stop_pids "${pid[$smtp_proc]}"
}

for run in "${runs[@]}"; do bench_run "$run"; done
took=$((SECONDS - started))

# --- report -------------------------------------------------------------------
echo
printf '%-9s %7s %6s %10s %8s %10s %6s %6s %7s %6s %7s %6s %9s %9s\n' \
  run users seed_s campaign_s emails/s "raw smtp/s" ratio "user" "notif." "email" "campgn" "smtp" "redis pk" "redis end"
for run in "${runs[@]}"; do
  smtp_proc=$run
  printf '%-9s %7s %6s %10s %8s %10s %6s %6s %7s %6s %7s %6s %9s %9s\n' \
    "$run" "$users" "${result[$run.seed_s]}" "${result[$run.campaign_s]}" "${result[$run.emails_per_s]}" \
    "${result[$run.raw_smtp_per_s]}" "${result[$run.ratio]}" \
    "${result[$run.rss.user-service]}" "${result[$run.rss.notification-service]}" \
    "${result[$run.rss.email-service]}" "${result[$run.rss.campaign-service]}" \
    "${result[$run.rss.$smtp_proc]}" "${result[$run.redis_peak_mb]}" "${result[$run.redis_final_mb]}"
done
echo "(seconds; emails/s = users / campaign_s; ratio = emails/s / raw smtp/s; peak RSS (VmHWM) and Redis used_memory in MB)"
echo
echo "CPU during the campaign (% of one core; $(nproc) cores):"
printf '  %-9s %6s %7s %6s %7s %6s %6s\n' run "user" "notif." "email" "campgn" "smtp" "redis"
for run in "${runs[@]}"; do
  printf '  %-9s %6s %7s %6s %7s %6s %6s\n' "$run" "${result[$run.cpu.user-service]}" \
    "${result[$run.cpu.notification-service]}" "${result[$run.cpu.email-service]}" \
    "${result[$run.cpu.campaign-service]}" "${result[$run.cpu.$run]}" "${result[$run.cpu.redis]}"
done
echo
echo "CPU per email (microseconds of CPU time / USERS):"
printf '  %-9s %6s %7s %6s %7s %6s %6s %6s\n' run "user" "notif." "email" "campgn" "smtp" "redis" "all"
for run in "${runs[@]}"; do
  printf '  %-9s %6s %7s %6s %7s %6s %6s %6s\n' "$run" "${result[$run.cpu_us.user-service]}" \
    "${result[$run.cpu_us.notification-service]}" "${result[$run.cpu_us.email-service]}" \
    "${result[$run.cpu_us.campaign-service]}" "${result[$run.cpu_us.$run]}" "${result[$run.cpu_us.redis]}" \
    "$((result[$run.cpu_us.user-service] + result[$run.cpu_us.notification-service] + result[$run.cpu_us.email-service] + result[$run.cpu_us.campaign-service] + result[$run.cpu_us.$run] + result[$run.cpu_us.redis]))"
done
echo
echo "largest backlog (lag + pending) per stream and group, sampled every second:"
for run in "${runs[@]}"; do
  echo "  $run (audience expanded after ${result[$run.expanded_s]} s):"
  awk '{ printf "    %-20s %-21s %8d  at %5.1f s\n", $1, $2, $3, $4 }' <<<"${result[$run.backlog]}"
done
echo
summary="" loads=""
for run in "${runs[@]}"; do
  summary+="${summary:+, }$run: ${result[$run.raw_messages]} raw messages, exact ${result[$run.exact]}"
  loads+="${loads:+, }$run ${result[$run.loadavg]}"
done
echo "users: $users; SMTP pool: $smtp_pool; raw SMTP: smtp-source -d -s $smtp_pool -l ${msg_size:-600}; $summary"
echo "cores: $(nproc); load average before the runs: $loads; took ${took} s"
echo

run_json() {
  local run="$1" smtp_proc="$1"
  jq -nc \
    --argjson users "$users" \
    --argjson seed_s "${result[$run.seed_s]}" \
    --argjson ready_s "${result[$run.ready_s]}" \
    --argjson campaign_s "${result[$run.campaign_s]}" \
    --argjson campaign_wall_s "${result[$run.campaign_wall_s]}" \
    --argjson expanded_s "${result[$run.expanded_s]}" \
    --argjson emails_per_s "${result[$run.emails_per_s]}" \
    --argjson raw_smtp_per_s "${result[$run.raw_smtp_per_s]}" \
    --argjson raw_messages "${result[$run.raw_messages]}" \
    --argjson ratio "${result[$run.ratio]}" \
    --argjson sent "${result[$run.sent]}" \
    --argjson failed "${result[$run.failed]}" \
    --argjson received "${result[$run.received]}" \
    --argjson exact "${result[$run.exact]}" \
    --argjson user "${result[$run.rss.user-service]}" \
    --argjson notification "${result[$run.rss.notification-service]}" \
    --argjson email "${result[$run.rss.email-service]}" \
    --argjson campaign "${result[$run.rss.campaign-service]}" \
    --argjson smtp_rss "${result[$run.rss.$smtp_proc]}" \
    --argjson redis_peak_mb "${result[$run.redis_peak_mb]}" \
    --argjson redis_final_mb "${result[$run.redis_final_mb]}" \
    --argjson redis_rss_mb "${result[$run.redis_rss_mb]}" \
    --argjson cpu "$(for name in "${services[@]}" "$smtp_proc" redis; do
      printf '%s %s\n' "$name" "${result[$run.cpu.$name]}"; done | pairs_json)" \
    --argjson cpu_us "$(for name in "${services[@]}" "$smtp_proc" redis; do
      printf '%s %s\n' "$name" "${result[$run.cpu_us.$name]}"; done | pairs_json)" \
    --argjson backlog "$(jq -Rn '[inputs | select(length > 0) | split(" ") | {stream: .[0], group: .[1], max: (.[2] | tonumber), at_s: (.[3] | tonumber)}]' <<<"${result[$run.backlog]}")" \
    --arg smtp_server "$run" \
    --arg loadavg "${result[$run.loadavg]}" \
    --argjson webhook "$(if [ "$webhook" = 0 ]; then echo null; else
      printf '{"batch": %s, "delivered": %s, "after_completion_s": %s}' "$webhook_batch" \
        "${result[$run.webhook_delivered]}" "${result[$run.webhook_after_s]}"; fi)" \
    '{users: $users, seed_s: $seed_s, ready_s: $ready_s, campaign_s: $campaign_s, campaign_wall_s: $campaign_wall_s,
      expanded_s: $expanded_s, emails_per_s: $emails_per_s, raw_smtp_per_s: $raw_smtp_per_s, raw_messages: $raw_messages,
      ratio: $ratio, sent: $sent, failed: $failed, received: $received, exact: $exact, smtp_server: $smtp_server,
      peak_rss_mb: {"user-service": $user, "notification-service": $notification, "email-service": $email,
                    "campaign-service": $campaign, ($smtp_server): $smtp_rss},
      redis_peak_mb: $redis_peak_mb, redis_final_mb: $redis_final_mb, redis_rss_mb: $redis_rss_mb,
      cpu_percent: $cpu, cpu_us_per_email: $cpu_us, max_backlog: $backlog, loadavg_before: $loadavg,
      webhook: $webhook}'
}
# Top level: the smtp-sink run when it ran, else the maildev run; the
# maildev run under "maildev" when both ran.
top="${runs[-1]}" nested='{}'
if [ "${#runs[@]}" -gt 1 ]; then
  top=smtp-sink nested="$(run_json maildev)"
fi
jq -nc \
  --argjson sink "$(run_json "$top")" \
  --argjson maildev "$nested" \
  --argjson cores "$(nproc)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg redis "$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')" \
  --argjson smtp_pool "$smtp_pool" \
  --argjson msg_size "${msg_size:-600}" \
  --argjson elapsed_s "$took" \
  --arg dkim "$dkim" \
  '$sink + {smtp_pool: $smtp_pool, message_bytes: $msg_size, dkim: $dkim}
    + (if $maildev == {} then {} else {maildev: $maildev} end)
    + {machine: {cores: $cores, date: $date, redis: $redis}, elapsed_s: $elapsed_s}'
for run in "${runs[@]}"; do
  [ "${result[$run.exact]}" = true ] || exit 1
done

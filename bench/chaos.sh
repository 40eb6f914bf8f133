#!/usr/bin/env bash
# Chaos run that counts every email: one campaign to every seeded user while
# faults are injected at random (seeded) moments, then a count of what the
# SMTP server received against what the campaign says.
#
# The stack, on free loopback ports: a private redis-server (AOF fsynced
# every second, as start.sh runs it), chaos-smtp (the harness's recording
# SMTP server, crates/testkit/src/bin/chaos-smtp.rs: it appends the
# Message-ID of every message it takes to a file, and a control file sets
# its mode: accept, slow DATA, 4xx, down) and the four release binaries;
# email-service waits SMTP_TIMEOUT_MS=3000 for each SMTP reply.
#
# Faults, in a seeded random order with random gaps (SEED repeats a run):
#   - SIGKILL of each service in turn, restarted a few seconds later:
#     user-service just after the campaign's creation (during the audience
#     expansion), then notification-, email- and campaign-service in a random
#     order; KILLS=5 (the default from 100,000 users) adds one more;
#   - SIGKILL of Redis, restarted from its AOF a few seconds later;
#   - the SMTP server down (not listening), answering 4xx, answering DATA
#     slowly (1.5 s, below SMTP_TIMEOUT_MS: a slow send, not an uncertain
#     one) and stalling DATA (5 s, above it: each send ends uncertain
#     although the message was stored, and is sent again once its lease
#     lapses, a duplicate), each for a period that scales with the run:
#     60/30/30/10 s at 100,000 users, proportionally fewer below, never
#     under 5/4/4/4 s;
#   - CLIENT KILL of each service's Redis connections (found by their local
#     ports: the services do not name their connections);
#   - 1,000 poison entries (not envelopes) into each of the four streams
#     (spread evenly over its partitions when it is split);
#   - a second campaign to every user, created just after the first, is
#     paused, resumed and cancelled at three random moments among the
#     faults (in that order);
#   - consent changes: SUPPRESS users (the first ones) put on the
#     suppression list before the campaign, so that its expansion counts
#     them suppressed, and as many (the last ones) unsubscribed while it
#     sends, each counted sent or suppressed depending on whether its email
#     went out before email-service read the change.
#
# So that the faults land while the campaign runs, the SMTP server paces its
# clients (it answers MAIL FROM after a delay: nothing is delivered yet, so
# a crash then costs no duplicate) to last about as long as the schedule of
# faults.
#
# Checks at the end (bounded waits): the campaign completed; every email
# arrived (lost = expected - unique Message-IDs received = 0); duplicates
# (Message-IDs received more than once) within 0.1 % of expected (a note
# otherwise) and explained: uncertain sends (email-service's warnings,
# counted) and crash windows (kills of email-service between a 250 and the
# send ledger's write) account for every copy beyond the first; the
# campaign's progress is exact (sent + failed + dead_lettered + suppressed
# = total = users, expected = total - suppressed, sent = unique received),
# no user suppressed before the campaign got an email, and no notification
# recorded suppressed had its email received; the second campaign ends
# (cancelled, or completed if the cancel came too late) with exact counts
# too (sent + failed + dead_lettered + suppressed + cancelled = total =
# users, sent = its unique received), and nothing of it is received after
# its cancellation settled; every poison entry is in its stream's dead letters, for
# every group reading that stream; no group holds a pending entry or lags.
# Prints a table, then as the last line one JSON object. Exits non-zero when
# an email is lost, the counts differ or a poison entry was not
# dead-lettered (or the campaign did not complete).
#
#   bench/chaos.sh                      # 100,000 users, five kills
#   USERS=2000 bench/chaos.sh           # the CI run (about 2 minutes)
#   USERS=2000 SEED=1234 bench/chaos.sh # repeat a run's schedule
#   USERS=20000 PARTITIONS=4 bench/chaos.sh # the streams split in 4
#   USERS=20000 SEND_RATE=400 bench/chaos.sh # under a shared send rate
#
# Settings: USERS (100000), SEED (random), SUPPRESS (users/200, at least 2),
# KILLS (5 from 100,000 users, else
# 4; at least 4), PARTITIONS (1: STREAM_PARTITIONS of the per-recipient
# streams), SEND_RATE (0: none; email-service's EMAIL_SEND_RATE, emails a
# second for all its instances), SMTP_POOL (16), CAMPAIGN_TIMEOUT (seconds after the last
# fault; 600), KEEP=1 keeps the work directory (logs, databases, received
# Message-IDs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_settings 600
seed="${SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}"
kills="${KILLS:-$((users >= 100000 ? 5 : 4))}"
partitions="${PARTITIONS:-1}"
send_rate="${SEND_RATE:-0}"
suppress="${SUPPRESS:-$((users / 200 > 2 ? users / 200 : 2))}"
require_whole_numbers users smtp_pool campaign_timeout kills partitions suppress
[ "$partitions" -ge 1 ] || { echo "PARTITIONS=$partitions: at least 1" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "SEED=$seed: a whole number is needed" >&2; exit 2; }
[ "$kills" -ge 4 ] || { echo "KILLS=$kills: at least 4 (one per service)" >&2; exit 2; }
# Bash's RANDOM is a seeded generator: the same SEED gives the same schedule.
RANDOM=$seed
started=$SECONDS

require_bench_tools
command -v ss >/dev/null || apt_install iproute2

echo "building the services and chaos-smtp (release)..." >&2
build_release "${services[@]}" chaos-smtp
make_workdir
run=chaos
rundir="$workdir"

# sigkill NAME: kills the process as a crash would, and reaps it.
sigkill() {
  local p="${pid[$1]}"
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "live[$p]"
}

# The Redis streams behind STREAM, one a line: itself, or its partitions
# (comms:campaigns is never split).
stored_streams() {
  if [ "$partitions" = 1 ] || [ "$1" = comms:campaigns ]; then
    echo "$1"
  else
    for ((p = 0; p < partitions; p++)); do echo "$1:{$p}"; done
  fi
}
mapfile -t notification_partitions < <(stored_streams comms:notifications)
mapfile -t every_stored_stream < <(for stream in "${streams[@]}"; do stored_streams "$stream"; done)
notifications_published() {
  local stream n=0
  for stream in "${notification_partitions[@]}"; do n=$((n + $(rcli XLEN "$stream"))); done
  echo "$n"
}

now_s() { awk -v t0="$t_start" -v t="$(date +%s.%N)" 'BEGIN { printf "%.1f", t - t0 }'; }

read -r redis_port smtp_port ports <<<"$(free_ports $((2 + ${#services[@]})))"
# shellcheck disable=SC2086 # one port each
service_ports $ports
ids_file="$workdir/message-ids.txt"
control="$workdir/smtp-mode"
: >"$ids_file"
echo accept >"$control"

# --- the schedule ---------------------------------------------------------------
# Fault periods scale with the run: f = USERS / 100,000.
scaled() { awk -v f="$users" -v full="$1" -v min="$2" 'BEGIN { s = full * f / 100000; if (s > full) s = full; if (s < min) s = min; printf "%d", s }'; }
smtp_down_s="$(scaled 60 5)"
smtp_4xx_s="$(scaled 30 4)"
smtp_slow_s="$(scaled 30 4)"
smtp_stall_s="$(scaled 10 4)"
gap_max="$(scaled 10 3)"
# email-service gives up on a reply after SMTP_TIMEOUT_MS: a slow reply comes
# before it (a slow send, not an uncertain one), a stalled reply after it (an
# uncertain send: chaos-smtp has stored the message all the same, so its
# resend is a duplicate).
smtp_timeout_ms=3000
slow_reply_ms=1500
stall_reply_ms=5000
# Users per page of the expansion: about a hundred pages, so that
# user-service can be killed in the middle of it.
page_size=$((users / 100 < 20 ? 20 : (users / 100 > 1000 ? 1000 : users / 100)))
rand() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }

# The faults after user-service's, in a random order; each entry is a kind
# and a target.
faults_todo=("kill notification-service" "kill email-service" "kill campaign-service"
  "redis-kill -" "smtp down" "smtp refuse" "smtp slow" "smtp stall")
for ((k = 4; k < kills; k++)); do
  faults_todo+=("kill ${services[RANDOM % ${#services[@]}]}")
done
for name in "${services[@]}"; do faults_todo+=("client-kill $name"); done
for stream in "${streams[@]}"; do faults_todo+=("poison $stream"); done
faults_todo+=("control pause" "control resume" "control cancel")
for ((i = ${#faults_todo[@]} - 1; i > 0; i--)); do
  j=$((RANDOM % (i + 1)))
  tmp="${faults_todo[i]}"
  faults_todo[i]="${faults_todo[j]}"
  faults_todo[j]="$tmp"
done
# The second campaign's changes at the places the shuffle gave them, in
# their order: pause, resume, cancel.
controls=(pause resume cancel)
for i in "${!faults_todo[@]}"; do
  if [[ "${faults_todo[i]}" == control\ * ]]; then
    faults_todo[i]="control ${controls[0]}"
    controls=("${controls[@]:1}")
  fi
done
# Planned start (seconds after the campaign's creation) and length of each.
declare -a plan_at=() plan_len=()
t=2
for fault in "${faults_todo[@]}"; do
  t=$((t + $(rand 1 "$gap_max")))
  case "$fault" in
    kill\ *) len=$(rand 2 4) ;;
    redis-kill*) len=$(rand 2 4) ;;
    "smtp down") len=$smtp_down_s ;;
    "smtp refuse") len=$smtp_4xx_s ;;
    "smtp slow") len=$smtp_slow_s ;;
    "smtp stall") len=$smtp_stall_s ;;
    *) len=0 ;;
  esac
  plan_at+=("$t")
  plan_len+=("$len")
  t=$((t + len))
done
schedule_s=$t
# The pace (ms before each MAIL FROM reply) that makes delivery at full
# speed last about the schedule, so that every fault meets a running
# campaign; never near the SMTP timeout.
pace_ms="$(awk -v p="$smtp_pool" -v d="$schedule_s" -v n="$users" -v cap="$((smtp_timeout_ms / 4))" \
  'BEGIN { v = 1000 * p * d / n; if (v > cap) v = cap; printf "%d", v }')"

echo "seed $seed: $users users, $partitions partition(s), $kills kills, SMTP down ${smtp_down_s}s, 4xx ${smtp_4xx_s}s, slow DATA ${smtp_slow_s}s (${slow_reply_ms} ms a message), stalled DATA ${smtp_stall_s}s (${stall_reply_ms} ms a message, SMTP_TIMEOUT_MS ${smtp_timeout_ms}), pace ${pace_ms} ms, schedule ${schedule_s}s, send rate ${send_rate}/s" >&2

# --- the stack --------------------------------------------------------------------
start_smtp() {
  launch chaos-smtp "$bin_dir/chaos-smtp" "$smtp_port" "$ids_file" "$control" "$pace_ms"
  ready_or_fail chaos-smtp 30 smtp_greets "$smtp_port"
}
# Short claim idle and send lease, so that a killed instance's entries and
# sends are taken over in seconds, not the production minute.
service_extra_env=(CLAIM_IDLE_MS=1000 EMAIL_LEASE_MS=3000 SMTP_TIMEOUT_MS="$smtp_timeout_ms"
  USER_PAGE_SIZE="$page_size" STREAM_PARTITIONS="$partitions" EMAIL_SEND_RATE="$send_rate")

start_redis
start_smtp
echo "seeding $users users..." >&2
seed_users
start_other_services

# --- faults -------------------------------------------------------------------------
# shellcheck source=bench/chaos_faults.sh
source bench/chaos_faults.sh
# shellcheck source=bench/chaos_checks.sh
source bench/chaos_checks.sh

subject='Hello {{ name }}, our spring catalogue is out'
body='Dear {{ name }},

our spring catalogue is out: new products, better prices, and free delivery
on every order above 50 euros until the end of the month.

Best regards,
the comms team
'
api="$(campaigns_api)"
# The first SUPPRESS users go on the list before the campaign; the last
# SUPPRESS are unsubscribed while it sends (below, with the faults).
suppressed_before="$(user_addresses 0 "$suppress")"
suppress_addresses "$suppressed_before" manual
listed() { curl -fsS "http://127.0.0.1:${port[user-service]}/api/v1/suppressions?limit=1000" | jq '.suppressions | length'; }
for _ in $(seq 1 300); do
  [ "$(listed)" -ge "$suppress" ] && break
  sleep 0.1
done
[ "$(listed)" -ge "$suppress" ] || fail "the $suppress suppressions before the campaign were not applied within 30 s"
unsubscribed_later="$(user_addresses $((users - suppress)) "$suppress")"

echo "campaign to $users users, faults from now (seed $seed)..." >&2
# A blocking read that returns with the first notification user-service
# publishes, then SIGKILLs user-service at once: started before the
# campaign, so that user-service dies a moment into its expansion.
user_pid="${pid[user-service]}"
{
  from_now=()
  for _ in "${notification_partitions[@]}"; do from_now+=('$'); done
  rcli XREAD BLOCK 30000 STREAMS "${notification_partitions[@]}" "${from_now[@]}" >/dev/null 2>&1 || true
  kill -9 "$user_pid" 2>/dev/null || true
} &
first_page=$!
live[$first_page]="first-page"
t_start="$(date +%s.%N)"
created="$(create_campaign chaos "$subject" "$body")" || fail "creating the campaign failed"
id="$(jq -r .id <<<"$created")"
controlled="$(create_campaign chaos-controlled "$subject" "$body")" || fail "creating the second campaign failed"
controlled_id="$(jq -r .id <<<"$controlled")"
# user-service dies as soon as the first page of the audience is in the
# stream: it is expanding the rest (pages of page_size users, about a
# hundred); it is restarted as after any kill.
wait "$first_page" || true
unset "live[$first_page]"
kill_service user-service "$(rand 2 4)"
# Unsubscribed while the campaign sends (user-service is back).
until suppress_addresses "$unsubscribed_later" unsubscribed 2>/dev/null; do sleep 0.5; done
record consent user-service "$(now_s)" 0 "$suppress users unsubscribed while the campaign sends"

for i in "${!faults_todo[@]}"; do
  read -r kind target <<<"${faults_todo[i]}"
  wait_s="$(awk -v at="${plan_at[i]}" -v now="$(now_s)" 'BEGIN { w = at - now; printf "%.1f", (w > 0 ? w : 0) }')"
  sleep "$wait_s"
  case "$kind" in
    kill) kill_service "$target" "${plan_len[i]}" ;;
    redis-kill) kill_redis "${plan_len[i]}" ;;
    smtp) smtp_period "$target" "${plan_len[i]}" ;;
    client-kill) client_kill "$target" ;;
    poison) poison "$target" ;;
    control) control_campaign "$target" ;;
  esac
done
faults_end="$(now_s)"

# --- the end ---------------------------------------------------------------------------
echo "faults done at ${faults_end} s; waiting for the campaign..." >&2
deadline=$((SECONDS + campaign_timeout))
while :; do
  campaign="$(curl -fsS --max-time 5 "$api/$id" 2>/dev/null)" || campaign='{}'
  [ "$(jq -r '.status // empty' <<<"$campaign")" != completed ] || break
  [ "$SECONDS" -lt "$deadline" ] || { completed=false; break; }
  sleep 0.5
done
completed="${completed:-true}"
# The second campaign: settled (cancelled with every recipient counted, or
# completed).
while :; do
  controlled="$(curl -fsS --max-time 5 "$api/$controlled_id" 2>/dev/null)" || controlled='{}'
  [ "$(jq -r '.completed_at // empty' <<<"$controlled")" = "" ] || break
  [ "$SECONDS" -lt "$deadline" ] || { completed=false; break; }
  sleep 0.5
done
campaign_s="$(now_s)"
[ "$completed" = true ] || echo "chaos: campaigns not settled ${campaign_timeout}s after the faults: $campaign $controlled" >&2

# Every group of every stream with nothing pending and nothing left to
# read (bounded wait: the poison entries are dead-lettered as they are
# read): groups_busy (bench/chaos_checks.sh) lists those that are not.
for ((tries = 0; tries < 120; tries++)); do
  [ -n "$(groups_busy)" ] || break
  sleep 0.5
done
busy="$(groups_busy)"
[ -z "$busy" ] || echo "chaos: groups still busy: $busy" >&2

# Each poison entry, dead-lettered by every group of its stream (in the
# partition it was put in).
declare -A dead_len=() poison_found=()
poison_total=0
poison_dead=0
for stream in "${streams[@]}"; do
  dead_len[$stream]=0
  stream_found=0
  stream_total=0
  mapfile -t stored < <(stored_streams "$stream")
  for part in "${stored[@]}"; do
    dead_len[$stream]=$((dead_len[$stream] + $(rcli XLEN "$part:dead")))
    groups="$(rcli XINFO GROUPS "$part" | awk 'prev == "name" { print } { prev = $0 }' | sort)"
    n_groups="$(grep -c . <<<"$groups")"
    # Dead letters of poison entries: group and original id, one pair a line.
    dead_file="$workdir/dead-${part//[:\{\}]/_}.txt"
    rcli --json -2 XRANGE "$part:dead" - + |
      jq -r '.[] | .[1] | [range(0; length; 2) as $i | {key: .[$i], value: .[$i + 1]}] | from_entries
        | select(has("chaos-poison")
            or ((."dead.fields" // "[]") | fromjson | any(.[0] | @base64d == "chaos-poison")))
        | "\(."dead.group") \(."dead.original_id")"' |
      sort -u >"$dead_file"
    found="$(awk -v g="$n_groups" 'NR == FNR { want[$1] = 1; next } ($2 in want) { c[$2]++ }
      END { n = 0; for (k in c) if (c[k] >= g) n++; print n }' \
      "${poison_ids[$part]:-/dev/null}" "$dead_file")"
    total="$(grep -c . "${poison_ids[$part]:-/dev/null}" || true)"
    stream_found=$((stream_found + found))
    stream_total=$((stream_total + total))
  done
  poison_found[$stream]="$stream_found/$stream_total ($n_groups groups, ${#stored[@]} stream(s))"
  poison_total=$((poison_total + stream_total))
  poison_dead=$((poison_dead + stream_found))
done

total="$(jq -r '.progress.total // -1' <<<"$campaign")"
sent="$(jq -r '.progress.sent // -1' <<<"$campaign")"
failed="$(jq -r '.progress.failed // -1' <<<"$campaign")"
dead_lettered="$(jq -r '.progress.dead_lettered // -1' <<<"$campaign")"
suppressed="$(jq -r '.progress.suppressed // -1' <<<"$campaign")"
# Every user but the suppressed gets an email.
expected=$((users - suppressed))
received="$(grep -c . "$ids_file" || true)"
sort -u "$ids_file" >"$workdir/unique-ids.txt"
all_unique="$(grep -c . "$workdir/unique-ids.txt" || true)"
duplicates=$((received - all_unique))
unique="$(received_of "$id")"
controlled_unique="$(received_of "$controlled_id")"
lost=$((expected > unique ? expected - unique : 0))
counts_match=false
if [ "$((sent + failed + dead_lettered + suppressed))" = "$total" ] && [ "$total" = "$users" ] &&
  [ "$sent" = "$unique" ] && [ "$suppressed" -ge "$suppress" ] && [ "$suppressed" -le $((2 * suppress)) ] &&
  [ "$all_unique" = "$((unique + controlled_unique))" ]; then
  counts_match=true
fi
# The second campaign: every recipient with one final outcome, sent as
# received.
controlled_progress="$(jq -c '.progress // {}' <<<"$controlled")"
controlled_status="$(jq -r '.status // "unknown"' <<<"$controlled")"
controlled_exact="$(jq -r --argjson users "$users" --argjson unique "$controlled_unique"   '(.sent + .failed + .dead_lettered + .suppressed + .cancelled == .total) and .total == $users
   and .pending == 0 and .sent == $unique' <<<"$controlled_progress" 2>/dev/null || echo false)"
# Nothing of it received once settled: a few seconds more, the same count.
sleep 3
late_controlled="$(( $(received_of "$controlled_id") - controlled_unique ))"
# Notifications the service recorded as sent that never arrived (the
# precise loss, beside the count).
sent_not_received=0
if command -v sqlite3 >/dev/null && [ -f "$workdir/data/dev/notifications.db" ]; then
  sqlite3 "$workdir/data/dev/notifications.db" "SELECT '<' || id || '@comms>' FROM notifications WHERE status = 'sent'" |
    sort -u >"$workdir/sent-ids.txt"
  sent_not_received="$(sort -u "$ids_file" | comm -23 "$workdir/sent-ids.txt" - | grep -c . || true)"
fi
# Suppressed means not sent: no notification recorded suppressed had its
# email received, and none of the users suppressed before the campaign.
suppressed_received=0
if command -v sqlite3 >/dev/null && [ -f "$workdir/data/dev/notifications.db" ]; then
  sqlite3 "$workdir/data/dev/notifications.db" "SELECT '<' || id || '@comms>' FROM notifications WHERE status = 'suppressed'" |
    sort -u >"$workdir/suppressed-ids.txt"
  suppressed_received="$(sort -u "$ids_file" | comm -12 "$workdir/suppressed-ids.txt" - | grep -c . || true)"
  before="$(jq -r '.[]' <<<"$suppressed_before" | sed "s/'/''/g; s/.*/'&'/" | paste -sd, -)"
  before_suppressed="$(sqlite3 "$workdir/data/dev/notifications.db" \
    "SELECT COUNT(*) FROM notifications WHERE status = 'suppressed' AND campaign_id = '$id' AND email IN ($before)")"
  [ "$before_suppressed" = "$suppress" ] || suppressed_received=$((suppressed_received + suppress - before_suppressed))
fi
dup_bound="$(awk -v n="$((expected + controlled_unique))" 'BEGIN { printf "%d", n / 1000 }')"
# Where the duplicates come from. An uncertain send (email-service's warning
# "uncertain send; ...", naming the notification) is sent again once its
# lease lapses: each is one more copy of its Message-ID at the server. The
# other source is a crash window: email-service SIGKILLed between a 250 and
# its ledger write. Per Message-ID, copies beyond the first are put down to
# its uncertain sends first, the rest to the crash windows, of which there are
# as many as kills of email-service.
jq -rR 'fromjson? | select((.fields.message? // "") | startswith("uncertain send")) | "<\(.fields.notification)@comms>"' \
  "$workdir"/email-service.log | sort >"$workdir/uncertain-ids.txt"
uncertain_sends="$(grep -c . "$workdir/uncertain-ids.txt" || true)"
after_uncertain="$(sort "$ids_file" | uniq -c | awk '$1 > 1 { print $2, $1 - 1 }' |
  awk 'FILENAME == ARGV[1] { u[$1]++; next } { n = $2 < u[$1] ? $2 : u[$1]; s += n } END { print s + 0 }' \
    "$workdir/uncertain-ids.txt" -)"
crash_windows="$(jq -s '[.[] | select(.kind == "kill" and .target == "email-service")] | length' "$faults_file")"
other_duplicates=$((duplicates - after_uncertain))
duplicates_explained=true
[ "$other_duplicates" -eq 0 ] || [ "$crash_windows" -gt 0 ] || duplicates_explained=false
poison_ok=false
[ "$poison_dead" = 4000 ] && [ "$poison_total" = 4000 ] && poison_ok=true
took=$((SECONDS - started))

# --- report ---------------------------------------------------------------------------
echo
echo "faults (seconds after the campaign's creation; seed $seed):"
jq -r '"  \(.at_s | tostring | .[0:7])\t\(.kind)\t\(.target)\t\(.duration_s) s\t\(.detail)"' "$faults_file" | column -t -s $'\t'
echo
printf '%-22s %s\n' expected "$expected" "received (all)" "$received" "unique received" "$unique" \
  duplicates "$duplicates (bound $dup_bound, 0.1 %)" "uncertain sends" "$uncertain_sends (email-service's warnings)" \
  "duplicates explained" "$duplicates_explained: $after_uncertain after an uncertain send, $other_duplicates in a crash window (kills of email-service: $crash_windows)" \
  lost "$lost" "sent, not received" "$sent_not_received" \
  "progress" "sent $sent, failed $failed, dead-lettered $dead_lettered, suppressed $suppressed, total $total" "counts match" "$counts_match" \
  "suppressed" "$suppress before, $suppress during the campaign; $suppressed counted" "suppressed and emailed" "$suppressed_received" \
  "second campaign" "$controlled_status: $controlled_progress, unique received $controlled_unique, exact $controlled_exact, received after it settled $late_controlled" \
  "campaigns settled" "$completed at ${campaign_s} s (faults over at ${faults_end} s)"
for stream in "${streams[@]}"; do
  printf '%-22s %s dead letters; poison dead-lettered %s\n' "$stream" "${dead_len[$stream]}" "${poison_found[$stream]}"
done
printf '%-22s %s\n' "groups busy at the end" "${busy:-none}" "took" "${took} s" cores "$(nproc)"
echo

problems=()
[ "$completed" = true ] || problems+=("campaigns not settled")
[ "$controlled_exact" = true ] || problems+=("the second campaign's counts differ: $controlled_status $controlled_progress, unique received $controlled_unique")
[ "$late_controlled" = 0 ] || problems+=("$late_controlled emails of the second campaign received after it settled")
[ "$lost" = 0 ] || problems+=("$lost emails lost")
[ "$sent_not_received" = 0 ] || problems+=("$sent_not_received notifications recorded as sent never reached the SMTP server")
[ "$counts_match" = true ] || problems+=("counts differ: sent $sent + failed $failed + dead-lettered $dead_lettered + suppressed $suppressed, total $total of $users users, $suppress suppressed before and $suppress unsubscribed during the campaign, unique received $unique")
[ "$suppressed_received" = 0 ] || problems+=("$suppressed_received suppressed recipients were emailed (or a user suppressed before the campaign was not counted suppressed)")
[ "$poison_ok" = true ] || problems+=("only $poison_dead of $poison_total poison entries dead-lettered by every group")
[ -z "$busy" ] || problems+=("groups still busy: $(tr '\n' ';' <<<"$busy")")
[ "$duplicates" -le "$dup_bound" ] || echo "chaos: note: $duplicates duplicates, above 0.1 % of expected ($dup_bound)" >&2
[ "$duplicates_explained" = true ] ||
  echo "chaos: note: $other_duplicates duplicates follow no uncertain send, and email-service was never killed" >&2
for problem in "${problems[@]}"; do echo "chaos: DEFECT: $problem" >&2; done

dead_json="$(for stream in "${streams[@]}"; do echo "$stream ${dead_len[$stream]}"; done | pairs_json)"
jq -nc \
  --argjson expected "$expected" --argjson received "$received" --argjson unique "$unique" \
  --argjson duplicates "$duplicates" --argjson lost "$lost" --argjson sent_not_received "$sent_not_received" \
  --argjson uncertain_sends "$uncertain_sends" --argjson duplicates_explained "$duplicates_explained" \
  --argjson dead "$dead_json" --argjson poison_dead "$poison_dead" --argjson poison_total "$poison_total" \
  --argjson poison_ok "$poison_ok" --argjson counts_match "$counts_match" --argjson completed "$completed" \
  --argjson progress "$(jq -c '.progress // null' <<<"$campaign")" \
  --argjson faults "$(jq -s . "$faults_file")" --argjson seconds "$took" --argjson seed "$seed" \
  --argjson campaign_s "$campaign_s" --argjson dup_bound "$dup_bound" --argjson pace_ms "$pace_ms" \
  --argjson problems "$(printf '%s\n' "${problems[@]}" | jq -Rn '[inputs | select(length > 0)]')" \
  --argjson partitions "$partitions" --argjson cores "$(nproc)" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --argjson suppress "$suppress" --argjson suppressed_received "$suppressed_received" \
  --argjson controlled "$(jq -nc --arg status "$controlled_status" --argjson progress "$controlled_progress" \
    --argjson unique "$controlled_unique" --argjson exact "$controlled_exact" --argjson late "$late_controlled" \
    '{status: $status, progress: $progress, unique_received: $unique, counts_match: $exact, received_after_settled: $late}')" \
  '{expected: $expected, unique_received: $unique, received: $received, duplicates: $duplicates,
    duplicates_within_bound: ($duplicates <= $dup_bound), uncertain_sends: $uncertain_sends,
    duplicates_explained: $duplicates_explained, lost: $lost, sent_not_received: $sent_not_received,
    dead_letters: $dead, poison_dead_lettered: $poison_ok, poison_entries_dead_lettered: $poison_dead,
    poison_entries: $poison_total, counts_match: $counts_match, completed: $completed, progress: $progress,
    suppressed_before: $suppress, unsubscribed_during: $suppress, suppressed_received: $suppressed_received,
    second_campaign: $controlled,
    campaign_s: $campaign_s, faults: $faults, problems: $problems, seed: $seed, partitions: $partitions,
    smtp_pace_ms: $pace_ms,
    seconds: $seconds, machine: {cores: $cores, date: $date}}'
[ "${#problems[@]}" -eq 0 ]

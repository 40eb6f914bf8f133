#!/usr/bin/env bash
# Seeding: how long user-service takes to seed USERS fake users into a fresh
# SQLite file before it is ready, next to what SQLite alone takes for the same
# rows, measured in the same run on the same machine.
#
# user-service (release) starts on a private redis-server and a fresh SQLite
# file with SEED_USERS=USERS. Then:
#   seed_s       user-service's own "users seeded" log figure
#   seed_cpu_s   the CPU time (user + system) user-service spent up to ready:
#                seeding, nearly all of it; unlike wall time, not stretched
#                by the other processes of a busy machine
#   ready_s      from its start to /ready answering
#   restart_s    a second start on the seeded file, to /ready (it must seed 0)
#   copy_s       the ceiling: the sqlite3 CLI copies the seeded rows into a
#                fresh file with the same schema, in one transaction, with a
#                cache that holds the whole table (INSERT ... SELECT: no SQL
#                text, no fake data, only SQLite filling the table and its two
#                indexes, in id order as user-service does); copy_cpu_s its
#                CPU time
#   ratio        seed_s / copy_s (cpu_ratio: the same of CPU times)
# Checks that the file holds users 1..USERS exactly, and prints the first 16
# hex digits of the SHA-256 of the whole table (id|name|email in id order):
# the same USERS give the same digest on every machine and after any change
# to how seeding is done.
# Prints a table, then, as the last line, one JSON object.
#
#   bench/seed.sh                  # 1,000,000 users
#   USERS=100000 bench/seed.sh
#
# Settings: USERS (1000000), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

users="${USERS:-1000000}"
require_whole_numbers users
started=$SECONDS

require_bench_tools
command -v sqlite3 >/dev/null || apt_install sqlite3

echo "building user-service (release)..." >&2
cargo build --release --quiet -p user-service
bin_dir="${CARGO_TARGET_DIR:-$root/target}/release"
make_workdir

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# CPU seconds (user + system) a running process has used.
cpu_s() {
  local stat
  stat="$(cat "/proc/$1/stat")"
  stat="${stat##*) }"
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$stat"
}

run=seed
rundir="$workdir/$run"
mkdir -p "$rundir"
read -r redis_port user_port smtp_port <<<"$(free_ports 3)"
port=([user-service]=$user_port)
smtp_pool=1 # user-service sends no mail; service_env passes these on
db="$rundir/data/dev/users.db"
service_extra_env+=(USER_DATABASE_URL="sqlite://$db")
loadavg="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average before the run: $loadavg" >&2

start_redis

# seeded_field FIELD N: FIELD of the Nth "users seeded" line of the log.
seeded_field() {
  jq -r --arg f "$1" 'select(.fields.message == "users seeded") | .fields[$f]' \
    "$rundir/user-service.log" | sed -n "$2p"
}

echo "seeding $users users..." >&2
t0="$(now)"
seed_users
t1="$(now)"
ready_s="$(elapsed "$t0" "$t1")"
seed_cpu_s="$(cpu_s "${pid[user-service]}")"
peak_rss_mb="$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/${pid[user-service]}/status")"
ready_rss_mb="$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/${pid[user-service]}/status")"
[ "$(seeded_field seeded 1)" = "$users" ] || fail "seeded $(seeded_field seeded 1) users, not $users"
seed_s="$(awk -v s="$(seeded_field seconds 1)" 'BEGIN { printf "%.2f", s }')"

echo "restarting on the seeded file..." >&2
stop_pids "${pid[user-service]}"
t0="$(now)"
seed_users
t1="$(now)"
restart_s="$(elapsed "$t0" "$t1")"
[ "$(seeded_field seeded 2)" = 0 ] || fail "the restart seeded $(seeded_field seeded 2) users, not 0"
stop_pids "${pid[user-service]}"

read -r count min_id max_id distinct_emails <<<"$(sqlite3 -separator ' ' "$db" \
  'SELECT COUNT(*), MIN(id), MAX(id), (SELECT COUNT(DISTINCT email) FROM users) FROM users')"
[ "$count $min_id $max_id $distinct_emails" = "$users 1 $users $users" ] ||
  fail "the table holds $count users, ids $min_id..$max_id, $distinct_emails addresses; not 1..$users"
digest="$(sqlite3 "$db" 'SELECT id, name, email FROM users ORDER BY id' | sha256sum | cut -c1-16)"
db_mb="$(du -m "$db" | cut -f1)"

echo "the ceiling: sqlite3 copying the same rows..." >&2
schema="$(sqlite3 "$db" "SELECT sql || ';' FROM sqlite_master WHERE type = 'table' AND name = 'users'")"
copy="$rundir/copy.db"
TIMEFORMAT='%U %S'
t0="$(now)"
{
  time sqlite3 "$copy" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -262144;
$schema
ATTACH '$db' AS seeded;
BEGIN;
INSERT INTO users SELECT id, name, email FROM seeded.users ORDER BY id;
COMMIT;
SQL
} 2>"$rundir/copy.time"
t1="$(now)"
copy_s="$(elapsed "$t0" "$t1")"
copy_cpu_s="$(awk '{ printf "%.2f", $1 + $2 }' "$rundir/copy.time")"
[ "$(sqlite3 "$copy" 'SELECT COUNT(*) FROM users')" = "$users" ] || fail "the copy does not hold $users users"

ratio_s="$(ratio "$seed_s" "$copy_s")"
cpu_ratio="$(ratio "$seed_cpu_s" "$copy_cpu_s")"
printf '\n%8s %7s %10s %8s %10s %7s %10s %6s %9s %7s %8s %8s\n' users seed_s seed_cpu_s ready_s \
  restart_s copy_s copy_cpu_s ratio cpu_ratio "peak MB" "ready MB" "file MB"
printf '%8s %7s %10s %8s %10s %7s %10s %6s %9s %7s %8s %8s\n' "$users" "$seed_s" "$seed_cpu_s" "$ready_s" \
  "$restart_s" "$copy_s" "$copy_cpu_s" "$ratio_s" "$cpu_ratio" "$peak_rss_mb" "$ready_rss_mb" "$db_mb"
echo "(seconds; ratio = seed_s / copy_s, cpu_ratio = seed_cpu_s / copy_cpu_s; user-service's memory:"
echo " peak RSS (VmHWM) and RSS once ready; table digest $digest)"
echo
jq -cn \
  --argjson users "$users" --argjson seed_s "$seed_s" --argjson seed_cpu_s "$seed_cpu_s" \
  --argjson ready_s "$ready_s" --argjson restart_s "$restart_s" --argjson copy_s "$copy_s" \
  --argjson copy_cpu_s "$copy_cpu_s" --argjson ratio "$ratio_s" --argjson cpu_ratio "$cpu_ratio" \
  --argjson peak_rss_mb "$peak_rss_mb" --argjson ready_rss_mb "$ready_rss_mb" --argjson db_mb "$db_mb" --arg digest "$digest" \
  --arg loadavg "$loadavg" --argjson cores "$(nproc)" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --argjson elapsed_s "$((SECONDS - started))" \
  '{users: $users, seed_s: $seed_s, seed_cpu_s: $seed_cpu_s, ready_s: $ready_s, restart_s: $restart_s,
    copy_s: $copy_s, copy_cpu_s: $copy_cpu_s, ratio: $ratio, cpu_ratio: $cpu_ratio,
    peak_rss_mb: $peak_rss_mb, ready_rss_mb: $ready_rss_mb, db_mb: $db_mb, table_sha256_16: $digest, loadavg_before: $loadavg,
    machine: {cores: $cores, date: $date}, elapsed_s: $elapsed_s}'

#!/usr/bin/env bash
# End-to-end test of the native stack, ./start.sh and ./stop.sh, with every
# port moved to a free loopback port (never the system's Redis on 6379 or
# PostgreSQL on 5432, nor a developer's stack on the defaults):
#
#   dev   ./start.sh prints the one RedisInsight line; dev's OpenBao holds
#         the dev secret of every service (`bao kv get`) and no prod one;
#         OpenBao's web UI and Redis Commander answer; the demo campaign
#         completes, sent to every seeded user; every service logged that
#         it read its secrets from Vault; every curl example of the docs
#         (README.md's quick start included, tests/docs/curl-examples.sh)
#         answers a 2xx; ./stop.sh leaves no pid file and no listener.
#   prod  (on the same data/, tests/native/prod-checks.sh) OpenBao (prod)
#         printed its unseal key once and keeps it in a 0600 init.json; the
#         dev root token 0000 reads no prod secret; each service's token
#         reads its own secret and no other; the prod secrets are random,
#         none an example; prod's Redis answers NOAUTH without a password,
#         dev's is not running; no web UI listens; PostgreSQL listens on its
#         private port; the demo endpoint answers 401 without the API token
#         and the campaign completes with the generated one; a service given
#         an example token or password refuses to start in one line.
#         Restarted with PROD_UIS=1: the same secrets, the last start's
#         service tokens revoked, the UIs behind a password, and a campaign
#         scheduled before the stop starts after it and reaches every
#         user. dev's Redis
#         files (data/redis) are as dev left them.
#   busy  with one port taken (VAULT_PORT), ./start.sh fails, naming the
#         variable that moves it.
#
# The stack keeps its data in the checkout's data/, so the test runs only
# where there is none (a stack of a developer's has its data there): it
# makes data/ and removes it again. Whatever it started, it stops on any
# exit. The services are built in release mode (./start.sh's build).
#
#   tests/native/run.sh
#
# Settings: SEED_USERS=300, CAMPAIGN_TIMEOUT=300 and START_TIMEOUT=600
# (seconds).
# shellcheck source-path=SCRIPTDIR/../..
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/require.sh
source scripts/stack.sh
source tests/docs/curl-examples.sh
# step, ok, fail and no_listener_on.
source scripts/test-steps.sh
source tests/native/prod-checks.sh

users="${SEED_USERS:-300}"
campaign_timeout="${CAMPAIGN_TIMEOUT:-300}"
start_timeout="${START_TIMEOUT:-600}"
services=("${stack_services[@]}")

require_curl
command -v jq >/dev/null || apt_install jq
command -v python3 >/dev/null || apt_install python3

if [ -e data ]; then
  fail "data/ exists (a stack's data): the test runs the stack on a fresh data/; move it aside first"
fi
for name in "${stack_components[@]}"; do
  pid="$(stack_pid "$name")"
  if [ -n "$pid" ] && stack_owns "$name" "$pid"; then
    fail "the native stack is running ($name, pid $pid); ./stop.sh first"
  fi
done

# --- cleanup ----------------------------------------------------------------
made_data=0
listener=""
output="$(mktemp)"
# The prod cluster lives outside the checkout, in a directory the postgres
# user can reach wherever the checkout is (start.sh runs the server as
# postgres when run as root; a CI checkout may sit below a private
# directory).
postgres_parent="$(mktemp -d)"
chmod 755 "$postgres_parent"
finished=0
on_exit() {
  local status=$?
  if [ "$finished" = 0 ]; then
    echo "--- the last lines of the stack's logs" >&2
    for log in run/logs/*.log; do
      [ -f "$log" ] || continue
      echo "[$log]" >&2
      tail -n 10 "$log" | sed 's/^/  /' >&2
    done
  fi
  ./stop.sh >/dev/null 2>&1 || true
  [ -z "$listener" ] || kill "$listener" 2>/dev/null || true
  [ "$made_data" = 0 ] || rm -rf data
  rm -rf "$output" "$postgres_parent"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ports ------------------------------------------------------------------
# Free loopback ports, all different; the first two each with the one after
# it free too (OpenBao also takes VAULT_PORT + 1, VAULT_PROD_PORT + 1).
# The servers' ports, then one per service (stack.list's, in its order).
read -r vault_port vault_prod_port redis_port redis_prod_port smtp_port mail_ui_port \
  redis_commander_port postgres_port service_ports <<<"$(
  python3 - "${#services[@]}" <<'EOF'
import sys
import socket
held = []
def bind(port=0):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    held.append(s)
    return s.getsockname()[1]
def pair():
    while True:
        first = bind()
        try:
            bind(first + 1)
            return first
        except OSError:
            continue
pairs = [pair(), pair()]
print(" ".join(str(port) for port in pairs + [bind() for _ in range(6 + int(sys.argv[1]))]))
EOF
)"
read -r -a service_ports <<<"$service_ports"
stack_env=(
  VAULT_PORT="$vault_port" REDIS_PORT="$redis_port" SMTP_PORT="$smtp_port"
  VAULT_PROD_PORT="$vault_prod_port" REDIS_PROD_PORT="$redis_prod_port"
  MAIL_UI_PORT="$mail_ui_port" REDIS_COMMANDER_PORT="$redis_commander_port"
  POSTGRES_PORT="$postgres_port" SEED_USERS="$users"
  POSTGRES_DATA="$postgres_parent/postgres"
)
stack_ports=("$vault_port" "$((vault_port + 1))" "$redis_port" "$smtp_port" "$mail_ui_port"
  "$redis_commander_port" "$postgres_port" "$vault_prod_port" "$((vault_prod_port + 1))"
  "$redis_prod_port")
declare -A service_port=()
for i in "${!services[@]}"; do
  service_port[${services[$i]}]="${service_ports[$i]}"
  stack_env+=("${manifest_variable[${services[$i]}]}=${service_ports[$i]}")
  stack_ports+=("${service_ports[$i]}")
done
campaign_port="${service_port[campaign-service]}"
# Nothing of the caller's reaches start.sh that would point the stack at
# other servers or set its secrets.
clean_env=(env -u REDIS_URL -u PROD_DATABASE_URL -u API_TOKEN -u PROD_API_TOKEN
  -u VAULT_ADDR -u VAULT_TOKEN -u DATABASE_URL -u CONFIG_DIR -u DATA_DIR -u PROD_UIS
  -u PROD_SMTP_PASSWORD)

api="http://127.0.0.1:$campaign_port/api/v1"
bao() { BAO_ADDR="http://127.0.0.1:$vault_port" BAO_TOKEN=0000 "$comms_bao" "$@"; }

# Starts the stack in APP_ENV $1 (with the settings $2..., NAME=VALUE); its
# output goes to $output and the terminal.
start_stack() {
  local env="$1"
  shift
  step "APP_ENV=$env $* ./start.sh (ports from $vault_port, SEED_USERS=$users)"
  made_data=1
  "${clean_env[@]}" APP_ENV="$env" "${stack_env[@]}" "$@" timeout "$start_timeout" ./start.sh \
    >"$output" 2>&1 || {
    cat "$output" >&2
    fail "APP_ENV=$env ./start.sh failed"
  }
  cat "$output"
}

# Creates the demo campaign (with the bearer token $1, when given) and
# waits until it completes, sent to every user.
demo_campaign() {
  local auth=() created id campaign status deadline
  [ -z "${1:-}" ] || auth=(-H "Authorization: Bearer $1")
  created="$(curl -fsS --max-time 30 "${auth[@]}" "$api/campaign/create")" ||
    fail "GET $api/campaign/create failed"
  id="$(jq -r '.id' <<<"$created")"
  [[ "$id" =~ ^[0-9a-zA-Z-]+$ ]] || fail "the demo campaign has no id: $created"
  deadline=$((SECONDS + campaign_timeout))
  while :; do
    campaign="$(curl -fsS --max-time 10 "$api/campaigns/$id")" || fail "GET $api/campaigns/$id failed"
    status="$(jq -r '.status' <<<"$campaign")"
    [ "$status" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "campaign not completed after ${campaign_timeout}s: $(jq -c . <<<"$campaign")"
    sleep 1
  done
  if [ "$(jq -r '.progress.total' <<<"$campaign")" != "$users" ] ||
    [ "$(jq -r '.progress.sent' <<<"$campaign")" != "$users" ]; then
    fail "the campaign did not reach every user: $(jq -c .progress <<<"$campaign")"
  fi
  ok "campaign $id completed: $users sent"
}

# Schedules a campaign $2 seconds from now (with the bearer token $1);
# sets scheduled_id and scheduled_at (ms).
schedule_campaign() {
  local created body
  body="$(jq -nc --arg at "$(date -u -d "+$2 seconds" +%Y-%m-%dT%H:%M:%SZ)" \
    '{name: "scheduled across a restart", subject: "Hi {{ name }}", body: "Dear {{ name }}", send_at: $at}')"
  created="$(curl -fsS --max-time 30 -XPOST -H "Authorization: Bearer $1" -H 'content-type: application/json' \
    -d "$body" "$api/campaigns")" || fail "POST $api/campaigns (scheduled) failed"
  [ "$(jq -r .status <<<"$created")" = scheduled ] || fail "the campaign is not scheduled: $created"
  scheduled_id="$(jq -r .id <<<"$created")"
  scheduled_at="$(jq -r .send_at <<<"$created")"
  ok "campaign $scheduled_id scheduled in $2 s"
}

# The campaign scheduled_id, still scheduled before a restart, started
# after it (at its time or later) and reached every user.
check_scheduled_after_restart() {
  local campaign deadline=$((SECONDS + campaign_timeout))
  while :; do
    campaign="$(curl -fsS --max-time 10 "$api/campaigns/$scheduled_id")" || fail "GET $api/campaigns/$scheduled_id failed"
    [ "$(jq -r .status <<<"$campaign")" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "the scheduled campaign did not complete: $(jq -c . <<<"$campaign")"
    sleep 1
  done
  [ "$(jq -r .progress.sent <<<"$campaign")" = "$users" ] ||
    fail "the scheduled campaign did not reach every user: $(jq -c .progress <<<"$campaign")"
  [ "$(jq -r .started_at <<<"$campaign")" -ge "$scheduled_at" ] ||
    fail "the scheduled campaign started before its time: $(jq -c . <<<"$campaign")"
  ok "the campaign scheduled before ./stop.sh started after ./start.sh, $(( ($(jq -r .started_at <<<"$campaign") - scheduled_at) / 1000 )) s after its time, and reached all $users users"
}

# Each service logged that it read its secret of APP_ENV $1 from Vault.
check_vault_logs() {
  local service log
  for service in "${services[@]}"; do
    log="$(cat "$(stack_log "$service")")"
    if ! grep -q "secrets read from Vault" <<<"$log" || ! grep -q "secret/comms/$1/$service" <<<"$log"; then
      fail "run/logs/$service.log does not say it read secret/comms/$1/$service from Vault"
    fi
  done
  ok "all ${#services[@]} services read secret/comms/$1/<service> from Vault"
}

# ./stop.sh, then no pid file and nothing listening on a port of the stack.
stop_stack() {
  local pidfiles
  step "./stop.sh"
  ./stop.sh
  pidfiles="$(find run -maxdepth 1 -name '*.pid' 2>/dev/null)"
  [ -z "$pidfiles" ] || fail "pid files left: $pidfiles"
  no_listener_on "${stack_ports[@]}"
  ok "no pid file, no listener on the stack's ports"
}

# --- dev --------------------------------------------------------------------
step "building the services (release)"
cargo build --release --bins --quiet

start_stack dev
[ "$(grep -c RedisInsight "$output")" = 1 ] || fail "./start.sh did not print exactly one RedisInsight line"
ok "one RedisInsight line"

check_dev_vault_has_no_prod

curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$vault_port/ui/" || fail "OpenBao's /ui/ does not answer"
[ "$(curl -fsS --max-time 10 "http://127.0.0.1:$redis_commander_port/healthcheck" | tr -d '[:space:]')" = ok ] ||
  fail "Redis Commander's /healthcheck does not answer ok"
curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$redis_commander_port/" ||
  fail "Redis Commander's page does not load"
ok "OpenBao's UI and Redis Commander answer"

demo_campaign
check_vault_logs dev

# Every curl example of the docs (README.md's quick start included) against
# this stack, its default ports rewritten to the ones it runs on.
step "the curl examples of the docs (tests/docs/curl-examples.sh)"
doc_ports=(
  "${manifest_default[MAIL_UI_PORT]}=$mail_ui_port" "${manifest_default[SMTP_PORT]}=$smtp_port"
  "${manifest_default[REDIS_COMMANDER_PORT]}=$redis_commander_port"
  "${manifest_default[VAULT_PORT]}=$vault_port" "${manifest_default[REDIS_PORT]}=$redis_port"
  "${manifest_default[POSTGRES_PORT]}=$postgres_port"
)
for name in "${services[@]}"; do
  doc_ports+=("${manifest_port[$name]}=${service_port[$name]}")
done
run_doc_examples "${doc_ports[@]}" || fail "an example of the docs did not answer a 2xx"
stop_stack
dev_redis_sum="$(dev_redis_files_sum)"

# --- prod -------------------------------------------------------------------
# On the same data/: dev's is still there, and must stay dev's.
start_stack prod
check_prod_vault
check_prod_secrets_not_examples
check_prod_redis
check_prod_uis off
postgres_accepts "$postgres_port" "$(compgen -G '/usr/lib/postgresql/*/bin/pg_isready' | tail -n 1)" ||
  fail "PostgreSQL does not accept connections on POSTGRES_PORT=$postgres_port"
ok "PostgreSQL listens on $postgres_port"

token="$(prod_bao kv get -field=api_token secret/comms/prod/campaign-service)" ||
  fail "no api_token in secret/comms/prod/campaign-service"
status="$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "$api/campaign/create")"
[ "$status" = 401 ] || fail "the demo endpoint answered $status without the token, not 401"
ok "the demo endpoint answers 401 without the token"
demo_campaign "$token"
check_vault_logs prod
check_example_refused
secrets_before="$(prod_secret_values | sort)"
old_token="$(service_vault_token campaign-service)"
schedule_campaign "$token" 20
stop_stack

start_stack prod PROD_UIS=1
[ "$(grep -c '^  unseal key ' "$output")" = 0 ] || fail "the second prod start printed the unseal key again"
[ "$(prod_secret_values | sort)" = "$secrets_before" ] || fail "the prod secrets changed across a restart"
ok "the prod secrets are the same after ./stop.sh and ./start.sh"
status="$(vault_read_status "$old_token" comms/prod/campaign-service "$vault_prod_port")"
[ "$status" = 403 ] || fail "the last start's token of campaign-service still reads its secret ($status)"
ok "the last start's service tokens are revoked (403)"
check_prod_uis on
status="$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  "http://127.0.0.1:${service_port[user-service]}/api/v1/users?limit=1")"
[ "$status" = 200 ] || fail "the API token, after the restart, got $status from user-service's users"
ok "the API token still opens the users' list after the restart"
check_scheduled_after_restart
stop_stack

step "dev's Redis holds dev's data only"
check_dev_redis_apart "$dev_redis_sum"
rm -rf data

# --- a port in use ----------------------------------------------------------
step "./start.sh with VAULT_PORT taken"
python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(300)' "$vault_port" &
listener=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$vault_port") 2>/dev/null && break
  sleep 0.1
done
if "${clean_env[@]}" "${stack_env[@]}" timeout 120 ./start.sh >"$output" 2>&1; then
  fail "./start.sh started with VAULT_PORT=$vault_port taken"
fi
grep -q "port $vault_port .*set VAULT_PORT to another port" "$output" || {
  cat "$output" >&2
  fail "./start.sh did not name VAULT_PORT"
}
ok "$(grep "set VAULT_PORT" "$output")"
kill "$listener"
wait "$listener" 2>/dev/null || true
listener=""

finished=1
step "the native stack test passed in $((SECONDS - started_at))s"

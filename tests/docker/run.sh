#!/usr/bin/env bash
# End-to-end test of the Docker stack: ./start.sh build-docker with a small
# audience, one campaign through campaign-service's API, then checks that
#
#   - the campaign completes, every user counted as sent;
#   - MailDev received exactly one email per user;
#   - OpenBao holds the dev and prod secrets of every service;
#   - every service read its secrets from Vault (its log says so) and got no
#     Redis or database URL from its environment (so the campaign working
#     proves the URLs came from Vault), and runs as the unprivileged user
#     comms;
#   - Redis Commander answers; every published port binds 127.0.0.1 only;
#
# and that ./stop.sh stop-docker leaves no container, network or listener.
# It runs under a Compose project of its own (comms-test), whose volumes it
# removes at the end, so it never touches a user's comms stack; the ports
# are the stack's defaults (or the usual variables). Installs docker.io and
# starts dockerd when no engine answers (and stops that dockerd at the end).
#
#   tests/docker/run.sh
#
# Settings: SEED_USERS=3000, CAMPAIGN_TIMEOUT=900 (seconds), and those of
# scripts/docker.sh.
# shellcheck source-path=SCRIPTDIR/../..
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/require.sh
# The services and the ports they and the servers publish (stack.list).
source scripts/manifest.sh
# step, ok, fail and no_listener_on.
source scripts/test-steps.sh

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-comms-test}"
export SEED_USERS="${SEED_USERS:-3000}"
export APP_ENV=dev
campaign_timeout="${CAMPAIGN_TIMEOUT:-900}"
campaign_port="$(manifest_port_of CAMPAIGN_PORT)"
mail_ui_port="$(manifest_port_of MAIL_UI_PORT)"
vault_port="$(manifest_port_of VAULT_PORT)"
redis_commander_port="$(manifest_port_of REDIS_COMMANDER_PORT)"
vault_token="${VAULT_TOKEN:-0000}"
services=("${manifest_services[@]}")
# Every port the stack may publish (RedisInsight's too, where it runs).
published_ports=()
for name in "${services[@]}" maildev-web maildev-smtp openbao redis-commander redisinsight; do
  published_ports+=("$(manifest_port_of "${manifest_variable[$name]}")")
done

mkdir -p run/logs
require_curl
command -v jq >/dev/null || apt_install jq

# --- an engine of the test's own, where none runs ---------------------------
test_dockerd=""
if ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    step "starting dockerd for the test (log: run/logs/dockerd-test.log)"
    setsid dockerd >>run/logs/dockerd-test.log 2>&1 </dev/null &
    test_dockerd=$!
    for _ in $(seq 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 "$test_dockerd" 2>/dev/null || fail "dockerd exited; see run/logs/dockerd-test.log"
      sleep 1
    done
    docker info >/dev/null 2>&1 || fail "dockerd does not answer after 60 s"
  fi
fi

stop_test_dockerd() {
  [ -n "$test_dockerd" ] || return 0
  kill -TERM "$test_dockerd" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$test_dockerd" 2>/dev/null || break
    sleep 0.1
  done
  test_dockerd=""
}

finished=0
on_exit() {
  local status=$?
  if [ "$finished" = 0 ]; then
    echo "--- the services' last log lines" >&2
    local service id
    for service in "${services[@]}" vault-init; do
      id="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
        --filter "label=com.docker.compose.service=$service" 2>/dev/null | head -n 1)"
      [ -n "$id" ] || continue
      echo "[$service]" >&2
      docker logs --tail 15 "$id" 2>&1 | sed 's/^/  /' >&2
    done
    ./stop.sh stop-docker --volumes >&2 || true
  fi
  stop_test_dockerd
  exit "$status"
}
trap on_exit EXIT

# A project left over by an interrupted run goes first.
if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ]; then
  step "removing a $COMPOSE_PROJECT_NAME project left over by an earlier run"
  ./stop.sh stop-docker --volumes
fi

# --- start ------------------------------------------------------------------
step "./start.sh build-docker (SEED_USERS=$SEED_USERS)"
start_began=$SECONDS
./start.sh build-docker
echo "(./start.sh build-docker took $((SECONDS - start_began))s)"

api="http://127.0.0.1:$campaign_port/api/v1"

# --- secrets ----------------------------------------------------------------
step "OpenBao holds the dev and prod secrets"
for env in dev prod; do
  for service in "${services[@]}"; do
    secret="$(curl -fsS -H "X-Vault-Token: $vault_token" \
      "http://127.0.0.1:$vault_port/v1/secret/data/comms/$env/$service")" ||
      fail "no secret at secret/comms/$env/$service"
    for key in redis_url database_url; do
      [ -n "$(jq -r --arg k "$key" '.data.data[$k] // empty' <<<"$secret")" ] ||
        fail "secret/comms/$env/$service has no $key"
    done
  done
  secret="$(curl -fsS -H "X-Vault-Token: $vault_token" \
    "http://127.0.0.1:$vault_port/v1/secret/data/comms/$env/email-service")"
  [ "$(jq -r '.data.data.smtp_host' <<<"$secret")" = maildev ] ||
    fail "secret/comms/$env/email-service: smtp_host is not maildev"
done
ok "secret/comms/{dev,prod}/{${services[*]}} hold redis_url and database_url; email-service's SMTP host is maildev"

step "each service read its secrets from Vault, runs as comms, and its environment has no URL"
for service in "${services[@]}"; do
  id="$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$service")"
  [ -n "$id" ] || fail "$service is not running"
  # Read whole before grep: `grep -q` would stop reading at the first match
  # and, under pipefail, the writer's SIGPIPE would fail the pipeline.
  log="$(docker logs "$id" 2>&1)"
  grep -q "secrets read from Vault" <<<"$log" ||
    fail "$service's log does not say 'secrets read from Vault'"
  user="$(docker inspect -f '{{.Config.User}}' "$id")"
  [ "$user" = comms ] || fail "$service runs as '${user:-root}', not as the unprivileged user comms"
  environment="$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$id")"
  if grep -E -q '(^|_)(REDIS_URL|DATABASE_URL)=' <<<"$environment"; then
    fail "$service has a Redis or database URL in its environment"
  fi
done
ok "all ${#services[@]} logged 'secrets read from Vault' and run as comms; none has REDIS_URL or a DATABASE_URL in its environment"

# --- a campaign -------------------------------------------------------------
step "a campaign to all $SEED_USERS users"
created="$(curl -fsS -X POST "$api/campaigns" -H 'content-type: application/json' \
  -d '{"name": "docker end-to-end", "subject": "Hello {{ name }}", "body": "Hi {{ name }}, this is for {{ email }}."}')" ||
  fail "POST $api/campaigns failed"
id="$(jq -r '.id' <<<"$created")"
[[ "$id" =~ ^[0-9a-zA-Z-]+$ ]] || fail "the created campaign has no id: $created"
echo "campaign $id"
campaign_began=$SECONDS
deadline=$((SECONDS + campaign_timeout))
while :; do
  campaign="$(curl -fsS "$api/campaigns/$id")" || fail "GET $api/campaigns/$id failed"
  status="$(jq -r '.status' <<<"$campaign")"
  progress="$(jq -c '.progress' <<<"$campaign")"
  [ "$status" != completed ] || break
  [ "$SECONDS" -lt "$deadline" ] || fail "campaign not completed after ${campaign_timeout}s: $status $progress"
  echo "  $status $progress"
  sleep 5
done
echo "completed in $((SECONDS - campaign_began))s: $progress"
[ "$(jq -r '.progress.total' <<<"$campaign")" = "$SEED_USERS" ] || fail "progress.total is not $SEED_USERS: $progress"
[ "$(jq -r '.progress.sent' <<<"$campaign")" = "$SEED_USERS" ] || fail "progress.sent is not $SEED_USERS: $progress"
ok "the campaign completed: $SEED_USERS sent"

step "MailDev received one email per user"
curl -fsS --compressed "http://127.0.0.1:$mail_ui_port/email" -o run/docker-test-emails.json ||
  fail "GET /email on MailDev failed"
emails="$(jq 'length' run/docker-test-emails.json)"
recipients="$(jq '[.[].to[0].address] | unique | length' run/docker-test-emails.json)"
rm -f run/docker-test-emails.json
[ "$emails" = "$SEED_USERS" ] || fail "MailDev holds $emails emails, not $SEED_USERS"
[ "$recipients" = "$SEED_USERS" ] || fail "MailDev's $emails emails go to $recipients addresses, not $SEED_USERS"
ok "$emails emails, to $recipients distinct addresses"

step "Redis Commander answers"
[ "$(curl -fsS "http://127.0.0.1:$redis_commander_port/healthcheck" | tr -d '[:space:]')" = ok ] ||
  fail "Redis Commander does not answer on $redis_commander_port"
curl -fsS -o /dev/null "http://127.0.0.1:$redis_commander_port/" || fail "Redis Commander's page does not load"
ok "Redis Commander answers on $redis_commander_port"

step "every published port binds 127.0.0.1 only"
bindings="$(docker ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --format '{{.Names}} {{.Ports}}')"
echo "$bindings"
if grep -E -q '(0\.0\.0\.0|::):[0-9]+->' <<<"$bindings"; then
  fail "a port is published beyond 127.0.0.1"
fi
ok "no port beyond 127.0.0.1"

# --- stop -------------------------------------------------------------------
step "./stop.sh stop-docker --volumes"
./stop.sh stop-docker --volumes
left="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[ -z "$left" ] || fail "containers left: $left"
left="$(docker network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[ -z "$left" ] || fail "networks left: $left"
left="$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[ -z "$left" ] || fail "volumes left: $left"
no_listener_on "${published_ports[@]}"
ok "no container, network, volume or listener of the stack is left"

finished=1
step "the Docker end-to-end test passed in $((SECONDS - started_at))s"

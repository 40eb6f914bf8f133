#!/usr/bin/env bash
# End-to-end test of the Docker stack: ./start.sh build-docker with a small
# audience, one campaign through campaign-service's API, then checks that
#
#   - the campaign completes, every user counted as sent;
#   - MailDev received exactly one email per user;
#   - OpenBao holds the dev secrets of every service, and none of prod's
#     (tests/docker/prod.sh tests prod's stack);
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
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-comms-test}"
export SEED_USERS="${SEED_USERS:-3000}"
export APP_ENV=dev
vault_token="${VAULT_TOKEN:-0000}"
source tests/docker/lib.sh

# --- start ------------------------------------------------------------------
step "./start.sh build-docker (SEED_USERS=$SEED_USERS)"
start_began=$SECONDS
./start.sh build-docker
echo "(./start.sh build-docker took $((SECONDS - start_began))s)"

# --- secrets ----------------------------------------------------------------
step "OpenBao holds dev's secrets, and nothing of prod"
for service in "${services[@]}"; do
  secret="$(curl -fsS -H "X-Vault-Token: $vault_token" \
    "http://127.0.0.1:$vault_port/v1/secret/data/comms/dev/$service")" ||
    fail "no secret at secret/comms/dev/$service"
  for key in redis_url database_url; do
    [ -n "$(jq -r --arg k "$key" '.data.data[$k] // empty' <<<"$secret")" ] ||
      fail "secret/comms/dev/$service has no $key"
  done
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $vault_token" \
    "http://127.0.0.1:$vault_port/v1/secret/data/comms/prod/$service")"
  [ "$code" = 404 ] || fail "secret/comms/prod/$service in dev's OpenBao answers $code, not 404"
done
secret="$(curl -fsS -H "X-Vault-Token: $vault_token" \
  "http://127.0.0.1:$vault_port/v1/secret/data/comms/dev/email-service")"
[ "$(jq -r '.data.data.smtp_host' <<<"$secret")" = maildev ] ||
  fail "secret/comms/dev/email-service: smtp_host is not maildev"
ok "secret/comms/dev/{${services[*]}} hold redis_url and database_url; email-service's SMTP host is maildev; no secret/comms/prod"

step "each service read its secrets from Vault, runs as comms, and its environment has no URL"
for service in "${services[@]}"; do
  id="$(docker_test_container "$service")"
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
docker_test_campaign
docker_test_mail

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
docker_test_stop

finished=1
step "the Docker end-to-end test passed in $((SECONDS - started_at))s"

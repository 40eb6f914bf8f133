#!/usr/bin/env bash
# End-to-end test of the Docker stack in prod: APP_ENV=prod ./start.sh
# build-docker with a small audience, then checks that prod is not dev
# under another name:
#
#   - OpenBao runs in server mode (integrated storage), initialised with its
#     unseal key and root token kept in data/docker/<project>/openbao/
#     init.json (mode 0600); dev's root token 0000 reads nothing there;
#   - every secret is made at random (no published example value), and each
#     service's token reads its own secret and no other's;
#   - Redis has no default user: a login is asked for, and a service's user
#     may run no administrative command;
#   - each service logs in to PostgreSQL as a role of its own, which may not
#     connect to another service's database;
#   - Redis Commander and RedisInsight do not run; MailDev's web UI asks for
#     its password; the API asks for the bearer token;
#   - a campaign through the API, with that token, reaches every user;
#   - stopped and started again, OpenBao is unsealed with the kept key, the
#     data is still there, and the previous start's service tokens are
#     revoked;
#
# and that ./stop.sh stop-docker --volumes leaves nothing, the kept keys
# included. It runs under the Compose project comms-test, as
# tests/docker/run.sh does (one after the other, not together).
#
#   tests/docker/prod.sh
#
# Settings: SEED_USERS=300, CAMPAIGN_TIMEOUT=900 (seconds), and those of
# scripts/docker.sh.
# shellcheck source-path=SCRIPTDIR/../..
set -euo pipefail
cd "$(dirname "$0")/../.."
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-comms-test}"
export SEED_USERS="${SEED_USERS:-300}"
export APP_ENV=prod
source tests/docker/lib.sh
keys_dir="data/docker/$COMPOSE_PROJECT_NAME/openbao"
bao="http://127.0.0.1:$vault_port/v1"

# The HTTP status of a GET on OpenBao's PATH with TOKEN.
bao_status() {
  curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $1" "$bao/$2"
}

# A field of a service's secret, read with the root token.
secret_field() {
  curl -fsS -H "X-Vault-Token: $root_token" "$bao/secret/data/comms/prod/$1" | jq -r --arg k "$2" '.data.data[$k] // empty'
}

# The VAULT_TOKEN a service's container was given.
service_token() {
  docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$(docker_test_container "$1")" |
    sed -n 's/^VAULT_TOKEN=//p'
}

# --- start ------------------------------------------------------------------
step "APP_ENV=prod ./start.sh build-docker (SEED_USERS=$SEED_USERS)"
./start.sh build-docker

# --- OpenBao ----------------------------------------------------------------
step "OpenBao (prod) runs in server mode, its keys kept with mode 0600"
[ "$(stat -c %a "$keys_dir/init.json")" = 600 ] || fail "$keys_dir/init.json is not mode 0600"
root_token="$(jq -r .root_token "$keys_dir/init.json")"
seal="$(curl -fsS "$bao/sys/seal-status")"
[ "$(jq -r .storage_type <<<"$seal")" = raft ] || fail "OpenBao's storage is not raft: $seal"
[ "$(jq -r .sealed <<<"$seal")" = false ] || fail "OpenBao is sealed: $seal"
code="$(bao_status 0000 secret/data/comms/prod/campaign-service)"
[ "$code" = 403 ] || fail "dev's root token 0000 gets $code, not 403, on prod's secret"
ok "raft storage, unsealed; 0000 is no token here (403)"

step "prod's secrets are random, and each service's token reads its own only"
api_token="$(secret_field campaign-service api_token)"
[ "${#api_token}" -ge 32 ] && [ "$api_token" != comms-prod-example-token ] ||
  fail "the API token is not a random one"
for service in "${services[@]}"; do
  token="$(service_token "$service")"
  [ -n "$token" ] && [ "$token" != "$root_token" ] || fail "$service has no token of its own"
  for other in "${services[@]}"; do
    code="$(bao_status "$token" "secret/data/comms/prod/$other")"
    if [ "$other" = "$service" ]; then
      [ "$code" = 200 ] || fail "$service's token gets $code on its own secret"
    else
      [ "$code" = 403 ] || fail "$service's token gets $code, not 403, on $other's secret"
    fi
  done
  [[ "$(secret_field "$service" redis_url)" == "redis://$service:"* ]] ||
    fail "$service's Redis URL does not log in as $service"
  [[ "$(secret_field "$service" database_url)" == "postgres://comms_${manifest_database[$service]}:"* ]] ||
    fail "$service's database URL does not log in as comms_${manifest_database[$service]}"
  log="$(docker logs "$(docker_test_container "$service")" 2>&1)"
  grep -q "secrets read from Vault" <<<"$log" || fail "$service's log does not say 'secrets read from Vault'"
done
ok "a 32-character API token; ${#services[@]} tokens, each reading its own secret (200) and no other (403)"

step "a service's database role may not connect to another's database"
postgres_id="$(docker_test_container postgres)"
campaigns_url="$(secret_field campaign-service database_url | sed 's|@postgres:5432/|@127.0.0.1:5432/|')"
answer="$(docker exec "$postgres_id" psql "$campaigns_url" -tAc 'SELECT current_user' 2>&1)"
[ "$answer" = comms_campaigns ] || fail "campaign-service's role cannot reach its own database: $answer"
answer="$(docker exec "$postgres_id" psql "${campaigns_url%/*}/users_prod" -tAc 'SELECT 1' 2>&1 || true)"
[[ "$answer" == *"permission denied"* ]] || fail "campaign-service's role reaches users_prod: $answer"
ok "comms_campaigns in campaigns_prod; refused in users_prod"

# --- Redis, the UIs, the API ------------------------------------------------
step "Redis asks for a login, and a service's user runs no administrative command"
redis_id="$(docker_test_container redis)"
answer="$(docker exec "$redis_id" redis-cli ping 2>&1)"
[[ "$answer" == *NOAUTH* ]] || fail "Redis answers an anonymous PING with: $answer"
password="$(secret_field campaign-service redis_url | sed 's|^redis://[^:]*:\([^@]*\)@.*|\1|')"
answer="$(docker exec -e REDISCLI_AUTH="$password" "$redis_id" redis-cli --user campaign-service ping 2>&1)"
[ "$answer" = PONG ] || fail "campaign-service's Redis user cannot log in: $answer"
answer="$(docker exec -e REDISCLI_AUTH="$password" "$redis_id" redis-cli --user campaign-service flushall 2>&1)"
[[ "$answer" == *NOPERM* ]] || fail "campaign-service's Redis user may FLUSHALL: $answer"
ok "anonymous: NOAUTH; campaign-service: PONG, FLUSHALL refused (NOPERM)"

step "no Redis Commander nor RedisInsight; MailDev's UI and the API ask for their secrets"
no_listener_on "$redis_commander_port" "$(manifest_port_of REDISINSIGHT_PORT)"
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mail_ui_port/email")"
[ "$code" = 401 ] || fail "MailDev's UI answers $code, not 401, without its password"
code="$(curl -s -o /dev/null -w '%{http_code}' "$api/campaign/create")"
[ "$code" = 401 ] || fail "the demo endpoint answers $code, not 401, without the token"
ok "nothing on $redis_commander_port; MailDev 401, the API 401 without their secrets"

# --- a campaign -------------------------------------------------------------
docker_test_campaign -H "Authorization: Bearer $api_token"
ui_password="$(curl -fsS -H "X-Vault-Token: $root_token" "$bao/secret/data/comms-stack/prod" | jq -r .data.data.ui_password)"
docker_test_mail -u "comms:$ui_password"

# --- again ------------------------------------------------------------------
step "stopped and started again: unsealed with the kept key, the data kept, new tokens"
old_token="$(service_token campaign-service)"
./stop.sh stop-docker
./start.sh build-docker
[ "$(curl -fsS "$bao/sys/seal-status" | jq -r .sealed)" = false ] || fail "OpenBao is sealed after the second start"
status="$(curl -fsS -H "Authorization: Bearer $api_token" "$api/campaigns/$campaign_id" | jq -r .status)" ||
  fail "the campaign is gone after the second start"
[ "$status" = completed ] || fail "the campaign is $status after the second start"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $old_token" "$bao/auth/token/lookup-self")"
[ "$code" = 403 ] || fail "the first start's token of campaign-service still works ($code)"
ok "unsealed, campaign $campaign_id still completed, the first start's tokens revoked (403)"

# --- stop -------------------------------------------------------------------
docker_test_stop
[ ! -e "$keys_dir" ] || fail "$keys_dir is left after stop-docker --volumes"
ok "the keys of the removed OpenBao are gone too"

finished=1
step "the Docker prod end-to-end test passed in $((SECONDS - started_at))s"

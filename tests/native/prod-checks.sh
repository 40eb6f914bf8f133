#!/usr/bin/env bash
# The checks of tests/native/run.sh that make prod more than dev under
# another name, one function each; sourced by run.sh, whose variables
# (ports, $output, comms_bao) they read. Each fails the test with one line.

# prod's OpenBao with its root token (from data/prod/openbao/init.json).
prod_bao() {
  BAO_ADDR="http://127.0.0.1:$vault_prod_port" BAO_TOKEN="$(jq -r .root_token data/prod/openbao/init.json)" \
    "$comms_bao" "$@"
}

# The HTTP status of reading secret/$2 from the OpenBao on port $3 with
# the token $1.
vault_read_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Vault-Token: $1" \
    "http://127.0.0.1:$3/v1/secret/data/$2"
}

# The VAULT_TOKEN a running service was started with.
service_vault_token() {
  tr '\0' '\n' <"/proc/$(stack_pid "$1")/environ" | sed -n 's/^VAULT_TOKEN=//p'
}

# dev's OpenBao holds dev's secrets and none of prod's.
check_dev_vault_has_no_prod() {
  local service
  for service in "${services[@]}"; do
    bao kv get "secret/comms/dev/$service" >/dev/null || fail "bao kv get secret/comms/dev/$service failed"
    [ "$(vault_read_status 0000 "comms/prod/$service" "$vault_port")" = 404 ] ||
      fail "dev's OpenBao holds secret/comms/prod/$service"
  done
  ok "dev's OpenBao holds secret/comms/dev/<service> for all ${#services[@]}, and no prod secret"
}

# OpenBao (prod): printed its keys once, keeps them 0600, refuses the dev
# root token, gives each service a token that reads its own secret only.
check_prod_vault() {
  local service other status mode token
  [ "$(grep -c '^  unseal key ' "$output")" = 1 ] || fail "the first prod start did not print the unseal key once"
  mode="$(stat -c '%a' data/prod/openbao/init.json)"
  [ "$mode" = 600 ] || fail "data/prod/openbao/init.json has mode $mode, not 600"
  ok "the unseal key and root token were printed once; init.json has mode 600"
  for service in "${services[@]}"; do
    status="$(vault_read_status 0000 "comms/prod/$service" "$vault_prod_port")"
    [ "$status" = 403 ] || fail "the dev root token 0000 reading secret/comms/prod/$service: $status, not 403"
  done
  ok "the dev root token 0000 reads no prod secret (403)"
  for service in "${services[@]}"; do
    token="$(service_vault_token "$service")"
    [ -n "$token" ] && [ "$token" != 0000 ] || fail "$service was not given a token of its own"
    status="$(vault_read_status "$token" "comms/prod/$service" "$vault_prod_port")"
    [ "$status" = 200 ] || fail "$service's token reading its own secret: $status, not 200"
    for other in "${services[@]/#/comms/prod/}" comms-stack/prod; do
      [ "$other" != "comms/prod/$service" ] || continue
      status="$(vault_read_status "$token" "$other" "$vault_prod_port")"
      [ "$status" = 403 ] || fail "$service's token reading secret/$other: $status, not 403"
    done
  done
  ok "each service's token reads its own secret (200) and no other (403)"
}

# Every secret of prod, as "name value" lines: the stack's and each
# service's, passwords in URLs taken out.
prod_secret_values() {
  local service
  prod_bao kv get -format=json secret/comms-stack/prod | jq -r '.data.data | to_entries[] | "\(.key) \(.value)"'
  for service in "${services[@]}"; do
    prod_bao kv get -format=json "secret/comms/prod/$service" | jq -r --arg s "$service" '.data.data
      | to_entries[] | select(.key | test("password|token|_url"))
      | "\($s)/\(.key) \(.value | if test("://") then (capture("://[^:/@]*:(?<p>[^@]*)@").p // "") else . end)"'
  done
}

# prod's secrets are random, not the published examples.
check_prod_secrets_not_examples() {
  local name value count=0
  while read -r name value; do
    [ -n "$value" ] || continue
    count=$((count + 1))
    case "$value" in
      comms-prod-example-token | comms-smtp-example | comms | secret | 0000)
        fail "$name is the example value $value"
        ;;
    esac
    [ "${#value}" -ge 32 ] || fail "$name is ${#value} characters long, not a random 32"
  done < <(prod_secret_values)
  [ "$count" -ge 10 ] || fail "only $count prod secrets found"
  ok "$count prod secrets, none an example value, each 32 random characters"
}

# prod's Redis refuses a client without a password, and dev's is not running.
check_prod_redis() {
  local answer
  answer="$(redis-cli -h 127.0.0.1 -p "$redis_prod_port" ping 2>&1)"
  [[ "$answer" == *NOAUTH* ]] || fail "prod's Redis answered an unauthenticated PING with: $answer"
  no_listener_on "$redis_port"
  ok "prod's Redis answers NOAUTH without a password; dev's Redis is not running"
}

# The web UIs: off in prod (default), or behind a password (PROD_UIS=1).
check_prod_uis() {
  local status password
  if [ "$1" = off ]; then
    no_listener_on "$mail_ui_port" "$redis_commander_port"
    status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$vault_prod_port/ui/")"
    [ "$status" != 200 ] || fail "OpenBao's UI answers 200 in prod"
    ok "no MailDev UI, no Redis Commander, no OpenBao UI ($status) in prod"
    return
  fi
  password="$(prod_bao kv get -field=ui_password secret/comms-stack/prod)"
  status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$mail_ui_port/email")"
  [ "$status" = 401 ] || fail "MailDev's UI without a password: $status, not 401"
  status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -K - "http://127.0.0.1:$mail_ui_port/email" \
    <<<"user = \"comms:$password\"")"
  [ "$status" = 200 ] || fail "MailDev's UI with its password: $status, not 200"
  curl -s --max-time 10 -X POST -d 'username=comms&password=wrong' \
    "http://127.0.0.1:$redis_commander_port/signin" | grep -q '"ok":false' ||
    fail "Redis Commander signed in with a wrong password"
  printf 'username=comms&password=%s' "$password" |
    curl -s --max-time 10 -X POST --data-binary @- "http://127.0.0.1:$redis_commander_port/signin" |
    grep -q '"ok":true' ||
    fail "Redis Commander refused its password"
  status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$vault_prod_port/ui/")"
  [ "$status" = 200 ] || fail "OpenBao's UI with PROD_UIS=1: $status, not 200"
  ok "PROD_UIS=1: MailDev's UI and Redis Commander ask for the password; OpenBao's UI is on"
}

# A service given a published example token, SMTP password or database
# password refuses to start, in one line that names the setting.
check_example_refused() {
  local entry name variable value log status
  for entry in "campaign-service API_TOKEN comms-prod-example-token" \
    "email-service SMTP_PASSWORD comms-smtp-example" \
    "user-service USER_DATABASE_URL postgres://comms:comms@127.0.0.1:$postgres_port/users"; do
    read -r name variable value <<<"$entry"
    log="$(env -u VAULT_ADDR -u VAULT_TOKEN APP_ENV=prod API_TOKEN=t0k3n-of-our-own-1234 \
      REDIS_URL="redis://127.0.0.1:$redis_prod_port" "${manifest_variable[$name]}=0" \
      "$variable=$value" timeout 30 "target/release/${manifest_binary[$name]}" 2>&1)" && status=0 || status=$?
    [ "$status" != 0 ] && [ "$status" != 124 ] || fail "$name started (or hung: $status) with $variable an example"
    grep -q "published example value" <<<"$log" || fail "$name did not say why: $log"
    [ "$(grep -c . <<<"$log")" = 1 ] || fail "$name said more than one line: $log"
    ! grep -qF -- "$value" <<<"$log" || fail "$name printed the value: $log"
  done
  ok "$(grep -h 'example' <<<"$log")"
}

# The checksum of every file of dev's Redis (its AOF in data/redis).
dev_redis_files_sum() {
  find data/redis -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum
}

# dev's Redis data is as dev left it ($1: its checksum then), and prod's has
# files of its own.
check_dev_redis_apart() {
  [ "$(dev_redis_files_sum)" = "$1" ] || fail "dev's Redis files (data/redis) changed while prod ran"
  compgen -G 'data/prod/redis/appendonlydir/*.aof' >/dev/null ||
    fail "prod's Redis keeps no AOF in data/prod/redis"
  ok "dev's Redis files are untouched by prod, whose Redis keeps its own in data/prod/redis"
}

#!/usr/bin/env bash
# Runs the whole comms stack natively, on loopback: a private Redis (AOF on),
# OpenBao (a Vault-compatible secrets server) holding the services' secrets,
# maildev (SMTP test server with a web UI), Redis Commander (browses the
# streams), in prod a private PostgreSQL, and the four services built in
# release mode. Installs what is missing first, from Debian's packages, npm
# and PyPI. prod has servers of its own (scripts/prod-stack.sh): OpenBao in
# server mode, secrets made at random, a Redis with a user per service.
#
#   ./start.sh                 start the stack (dev); ./stop.sh stops it
#   APP_ENV=prod ./start.sh    prod: its own OpenBao and Redis, PostgreSQL, random secrets
#   ./start.sh build-docker    the same in Docker: compose.yaml, run by scripts/docker.sh
#
# Settings (environment variables, with their defaults):
#   APP_ENV=dev            dev or prod
#   REDIS_PORT=6379        dev's private Redis server's port
#   REDIS_PROD_PORT=6380   prod's (ACL users, data in data/prod/redis)
#   REDIS_MAXMEMORY=1gb    the private Redis server's memory ceiling (noeviction:
#                          past it writes are refused and retried, nothing evicted)
#   REDIS_URL              use this Redis server instead of starting one
#   SMTP_PORT=2500         maildev's SMTP port
#   MAIL_UI_PORT=9000      maildev's web UI and REST API
#   VAULT_PORT=8200        dev's OpenBao (dev server): API and web UI (+1: cluster port)
#   VAULT_PROD_PORT=8210   prod's OpenBao (server mode, data/prod/openbao; +1: cluster)
#   REDIS_COMMANDER_PORT=8081  Redis Commander's web UI
#   PROD_UIS=0             1: in prod too, the web UIs (MailDev's, Redis Commander,
#                          OpenBao's), behind a password; off in prod otherwise
#   POSTGRES_PORT=5433     the private PostgreSQL server's port (prod)
#   POSTGRES_DATA=data/prod/postgres  its cluster's directory (prod; run as
#                          root, the postgres user must be able to reach it)
#   PROD_DATABASE_URL      use this PostgreSQL server instead (prod; {db} in it
#                          stands for each database: users, campaigns, ...)
#   <SERVICE>_PORT         each service's port (campaign-service's: the REST
#                          API and dashboard), with stack.list's defaults:
#   READY_TIMEOUT=120      seconds to wait for everything to be ready
#   SEED_USERS             users to seed (config/<env>.toml; this stack's prod: 1000)
# The secrets written to OpenBao take scripts/vault-seed.sh's settings
# (DEV_SMTP_USER, PROD_API_TOKEN, ...); prod's are made at random otherwise.
#
# Pid files are run/<name>.pid, logs run/logs/<name>.log, data under data/.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")"
source scripts/require.sh
source scripts/stack.sh
# redact_url, for printing the Redis URL.
# shellcheck source=scripts/redact.sh
source scripts/redact.sh
source scripts/redis-commander.sh
source scripts/postgres-stack.sh
source scripts/prod-stack.sh
source scripts/start-summary.sh

usage() {
  local name line=""
  sed -n '2,34s/^# \{0,1\}//p' "$0"
  for name in "${stack_services[@]}"; do
    line+="  ${manifest_variable[$name]}=${manifest_port[$name]}"
  done
  echo "   $line"
  sed -n '35,39s/^# \{0,1\}//p' "$0"
}

case "${1:-}" in
  "") ;;
  build-docker)
    # Docker Compose instead (compose.yaml); scripts/docker.sh says how.
    shift
    exec scripts/docker.sh up "$@"
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "unknown argument: $1" >&2
    usage >&2
    exit 2
    ;;
esac

export APP_ENV="${APP_ENV:-dev}"
# Each service's port, from its variable or stack.list.
for name in "${stack_services[@]}"; do
  export "${manifest_variable[$name]}=$(manifest_port_of "${manifest_variable[$name]}")"
done
# Where browsers reach campaign-service (the dashboard, the unsubscribe
# links), user-service (the dashboard's suppression list, audience count and
# import) and notification-service (the dashboard's exports), on those ports.
export PUBLIC_URL="${PUBLIC_URL:-http://localhost:$CAMPAIGN_PORT}"
export USER_SERVICE_URL="${USER_SERVICE_URL:-http://localhost:$USER_PORT}"
export NOTIFICATION_SERVICE_URL="${NOTIFICATION_SERVICE_URL:-http://localhost:$NOTIFICATION_PORT}"
# The settings below are this script's own. The services take their Redis
# URL and SMTP server from Vault, so none of these reaches them: an exported
# REDIS_URL or SMTP_PORT would override what Vault holds.
REDIS_PORT="$(manifest_port_of REDIS_PORT)"
REDIS_PROD_PORT="$(manifest_port_of REDIS_PROD_PORT)"
VAULT_PROD_PORT="$(manifest_port_of VAULT_PROD_PORT)"
PROD_UIS="${PROD_UIS:-0}"
SMTP_PORT="$(manifest_port_of SMTP_PORT)"
MAIL_UI_PORT="$(manifest_port_of MAIL_UI_PORT)"
VAULT_PORT="$(manifest_port_of VAULT_PORT)"
REDIS_COMMANDER_PORT="$(manifest_port_of REDIS_COMMANDER_PORT)"
POSTGRES_PORT="$(manifest_port_of POSTGRES_PORT)"
POSTGRES_DATA="${POSTGRES_DATA:-data/prod/postgres}"
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-1gb}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
export -n REDIS_URL SMTP_PORT REDIS_PORT REDIS_MAXMEMORY MAIL_UI_PORT VAULT_PORT REDIS_COMMANDER_PORT \
  POSTGRES_PORT POSTGRES_DATA READY_TIMEOUT PROD_DATABASE_URL REDIS_PROD_PORT VAULT_PROD_PORT \
  PROD_UIS 2>/dev/null || true

case "$APP_ENV" in
  dev | prod) ;;
  *)
    echo "APP_ENV=$APP_ENV: it must be dev or prod" >&2
    exit 1
    ;;
esac
# config/prod.toml seeds no users (a deployment has its own); this stack in
# prod seeds a thousand, so that a campaign has someone to email.
[ "$APP_ENV" != prod ] || export SEED_USERS="${SEED_USERS:-1000}"

[[ "$PROD_UIS" =~ ^[01]$ ]] || {
  echo "PROD_UIS=$PROD_UIS: it must be 0 or 1" >&2
  exit 1
}

# Each port this script binds, with the variable that moves it and what uses it.
own_redis=1
[ -z "${REDIS_URL:-}" ] || own_redis=0
# PostgreSQL runs only in prod, and only when no server is named.
own_postgres=0
[ "$APP_ENV" != prod ] || [ -n "${PROD_DATABASE_URL:-}" ] || own_postgres=1
# dev and prod each have their own Redis and OpenBao (component and port).
redis_name=redis
vault_name=openbao
if [ "$APP_ENV" = prod ]; then
  redis_name=redis-prod
  vault_name=openbao-prod
fi
vault_variable="${manifest_variable[$vault_name]}"
# The web UIs: always in dev, in prod only when asked for.
uis=1
[ "$APP_ENV" != prod ] || uis="$PROD_UIS"
ports=()
port_entry() { echo "${manifest_variable[$1]} ${manifest_what[$1]}"; }
[ "$own_redis" = 0 ] || ports+=("$(port_entry "$redis_name")")
[ "$own_postgres" = 0 ] || ports+=("$(port_entry postgres)")
ports+=("$(port_entry "$vault_name")" "$(port_entry maildev-smtp)")
[ "$uis" = 0 ] || ports+=("$(port_entry maildev-web)" "$(port_entry redis-commander)")
for name in "${stack_services[@]}"; do
  ports+=("$(port_entry "$name")")
done

service_port() {
  local variable="${manifest_variable[$1]}"
  echo "${!variable}"
}

# --- refuse to start twice --------------------------------------------------
mkdir -p "$stack_run/logs"
running=()
for name in "${stack_components[@]}"; do
  pid="$(stack_pid "$name")"
  if [ -n "$pid" ] && stack_owns "$name" "$pid"; then
    running+=("$name (pid $pid)")
  else
    rm -f "$(stack_pidfile "$name")"
  fi
done
if [ "${#running[@]}" -gt 0 ]; then
  echo "comms is already running: ${running[*]}; ./stop.sh first" >&2
  exit 1
fi

# --- settings and ports -----------------------------------------------------
[[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || {
  echo "READY_TIMEOUT=$READY_TIMEOUT is not a number of seconds" >&2
  exit 1
}
declare -A port_owner=()
for entry in "${ports[@]}"; do
  variable="${entry%% *}"
  port="${!variable}"
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "$variable=$port is not a port number" >&2
    exit 1
  fi
  if [ -n "${port_owner[$port]:-}" ]; then
    echo "$variable and ${port_owner[$port]} are both $port; set one of them to another port" >&2
    exit 1
  fi
  port_owner[$port]="$variable"
done
# OpenBao also listens on the port after its own (its cluster port), which
# nothing else can move.
vault_cluster_port=$((${!vault_variable} + 1))
if [ "$vault_cluster_port" -gt 65535 ] || [ -n "${port_owner[$vault_cluster_port]:-}" ]; then
  echo "$vault_variable=${!vault_variable}: OpenBao also needs port $vault_cluster_port (its cluster port)${port_owner[$vault_cluster_port]:+, which is ${port_owner[$vault_cluster_port]}}; set $vault_variable to another port" >&2
  exit 1
fi
for entry in "${ports[@]}"; do
  variable="${entry%% *}"
  require_free_port "${!variable}" "$variable" "${entry#* }"
done
require_free_port "$vault_cluster_port" "$vault_variable" "OpenBao's cluster port, $vault_variable + 1"

# --- what the stack needs ---------------------------------------------------
require_redis
require_jq
require_node_tools
require_redis_commander
require_openbao
require_curl
# The seed makes dev's DKIM key with it.
require_openssl
[ "$own_postgres" = 0 ] || require_postgres
if ! command -v cargo >/dev/null; then
  echo "cargo is needed to build the services: install Rust 1.85 or newer" >&2
  exit 1
fi

echo "building the services (release mode; the first build takes a few minutes)"
cargo build --release --bins --quiet
for name in "${stack_services[@]}"; do
  if [ ! -x "target/release/${manifest_binary[$name]}" ]; then
    echo "target/release/${manifest_binary[$name]} was not built: no binary of that name in the workspace" >&2
    exit 1
  fi
done

# --- PostgreSQL (prod) ------------------------------------------------------
# A cluster of the stack's own in POSTGRES_DATA (data/prod/postgres), made
# once prod's OpenBao holds its passwords (scripts/postgres-stack.sh).
if [ "$own_postgres" = 1 ]; then
  postgres_find
  case "$POSTGRES_DATA" in
    /*) pg_data="$POSTGRES_DATA" ;;
    *) pg_data="$stack_root/$POSTGRES_DATA" ;;
  esac
fi

# --- start ------------------------------------------------------------------
launched=()
finished=0
on_exit() {
  if [ "$finished" = 0 ] && [ "${#launched[@]}" -gt 0 ]; then
    echo "stopping what was started" >&2
    "$stack_root/stop.sh" >&2 || true
  fi
}
trap on_exit EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

# Starts a component in a session of its own (so that a Ctrl-C in this
# terminal does not reach it), output to its log; the process writes its own
# pid, then becomes the program, so the pid file holds the program's pid.
launch() {
  local name="$1" pidfile log
  shift
  pidfile="$(stack_pidfile "$name")"
  log="$(stack_log "$name")"
  : >"$log"
  # shellcheck disable=SC2016 # expanded by the inner sh
  setsid sh -c 'echo $$ >"$0.new" && mv "$0.new" "$0" && exec "$@"' "$pidfile" "$@" \
    >>"$log" 2>&1 </dev/null &
  launched+=("$name")
  for _ in $(seq 100); do
    [ -s "$pidfile" ] && return 0
    sleep 0.05
  done
  echo "$name did not start; see $log" >&2
  exit 1
}

# True when the component is ready: its check of scripts/ready.sh.
ready_check() {
  case "$1" in
    redis) redis_pings "$REDIS_PORT" ;;
    redis-prod) prod_redis_pings "$REDIS_PROD_PORT" ;;
    maildev)
      smtp_greets "$SMTP_PORT" && { [ "$uis" = 0 ] || http_ready "http://127.0.0.1:$MAIL_UI_PORT/healthz"; }
      ;;
    # 200 once unsealed and active; a dev server starts unsealed.
    openbao) http_ready "http://127.0.0.1:$VAULT_PORT/v1/sys/health" ;;
    # Answers, sealed or not: start.sh unseals it then.
    openbao-prod) prod_openbao_answers "$VAULT_PROD_PORT" ;;
    redis-commander) http_ready "http://127.0.0.1:$REDIS_COMMANDER_PORT/" ;;
    postgres) postgres_accepts "$POSTGRES_PORT" "$pg_bin/pg_isready" ;;
    *) http_ready "$(manifest_ready_url "$1" "$(service_port "$1")")" ;;
  esac
}

# Waits until each named component is ready (scripts/ready.sh's
# await_ready), a dot a second, each for up to READY_TIMEOUT seconds. One
# that exits or is not ready in time is named in one line, then the last
# lines of its log.
ready_dots=1
ready_hint="READY_TIMEOUT sets the wait"
wait_ready() {
  local name
  printf 'waiting for %s:' "$*"
  for name in "$@"; do
    await_ready "$name" "$(stack_pid "$name")" "$READY_TIMEOUT" "run/logs/$name.log" \
      ready_check "$name" || exit 1
    printf ' %s' "$name"
  done
  echo
}

# One key of a secret in dev's OpenBao, or nothing when the key is not there.
vault_field() {
  BAO_ADDR="$VAULT_ADDR" BAO_TOKEN="$VAULT_TOKEN" "$comms_bao" kv get -mount=secret \
    -field="$2" "$1" 2>/dev/null || true
}

# Writes the secrets of $APP_ENV (scripts/vault-seed.sh) with its settings
# given as NAME=VALUE arguments (BAO_TOKEN, PROD_API_TOKEN, ...): they reach
# it in its environment only, never a command line nor this script's
# environment (which the services inherit).
seed_secrets() {
  if ! (export "$@" && BAO="$comms_bao" BAO_ADDR="$VAULT_ADDR" SEED_ENVS="$APP_ENV" \
    scripts/vault-seed.sh) >"$(stack_log vault-seed)" 2>&1; then
    echo "writing the secrets to OpenBao failed; the last lines of run/logs/vault-seed.log:" >&2
    tail -n 5 "$(stack_log vault-seed)" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "secrets: secret/comms/$APP_ENV/<service> in OpenBao (run/logs/vault-seed.log lists the keys)"
}

echo "logs: run/logs/"
mkdir -p data
infra=()
if [ "$APP_ENV" = prod ]; then
  # --- prod: OpenBao (server mode), its secrets, then Redis and PostgreSQL -
  prod_use_dir "$stack_root/data/prod"
  prod_openbao_config "$VAULT_PROD_PORT" "$([ "$uis" = 1 ] && echo true || echo false)"
  launch openbao-prod "$comms_bao" server -config="$prod_bao_config"
  wait_ready openbao-prod
  prod_openbao_open "$VAULT_PROD_PORT" "$(stack_pid openbao-prod)"
  prod_secrets_load
  prod_policies
  if [ "$own_redis" = 1 ]; then
    mkdir -p "$prod_dir/redis"
    prod_redis_acl "$prod_dir/redis/users.acl"
    launch redis-prod redis-server --bind 127.0.0.1 --port "$REDIS_PROD_PORT" \
      --daemonize no --appendonly yes --appendfsync everysec --save "" \
      --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction \
      --aclfile "$prod_dir/redis/users.acl" \
      --dir "$prod_dir/redis" --logfile "$(stack_log redis-prod)"
    REDIS_URL="redis://127.0.0.1:$REDIS_PROD_PORT"
    infra+=(redis-prod)
  fi
  if [ "$own_postgres" = 1 ]; then
    postgres_make_cluster "$(prod_secret postgres_password)"
    # No Unix socket: clients, the services included, come over TCP with a
    # password.
    readlink -f "$pg_data" >"$stack_run/postgres.data"
    launch postgres "${pg_as[@]}" "$pg_bin/postgres" -D "$pg_data" -p "$POSTGRES_PORT" \
      -c listen_addresses=127.0.0.1 -c unix_socket_directories=
    infra+=(postgres)
  fi
  [ "${#infra[@]}" = 0 ] || wait_ready "${infra[@]}"
  # Each service's own Redis user and database role, unless the servers
  # are named (REDIS_URL, PROD_DATABASE_URL).
  # MailDev, the stack's SMTP server, has no TLS: email-service logs in to it
  # in clear, on loopback, because it is told it may.
  smtp_password="${PROD_SMTP_PASSWORD:-$(prod_secret smtp_password)}"
  seed=(BAO_TOKEN="$(jq -r .root_token "$prod_init")" PROD_REDIS_URL="$REDIS_URL"
    PROD_DATABASE_URL="${PROD_DATABASE_URL:-}" PROD_SMTP_HOST=127.0.0.1 PROD_SMTP_PORT="$SMTP_PORT"
    PROD_SMTP_USER=comms PROD_SMTP_PASSWORD="$smtp_password" PROD_SMTP_ALLOW_PLAINTEXT_AUTH=true
    PROD_API_TOKEN="${PROD_API_TOKEN:-$(prod_secret api_token)}"
    PROD_UNSUBSCRIBE_KEY="${PROD_UNSUBSCRIBE_KEY:-$(prod_secret unsubscribe_key)}")
  roles=()
  for name in "${stack_services[@]}"; do
    svc="${manifest_variable[$name]%_PORT}"
    password="$(prod_secret "redis_password_$name")"
    [ "$own_redis" = 0 ] ||
      seed+=("PROD_${svc}_REDIS_URL=redis://$name:$password@127.0.0.1:$REDIS_PROD_PORT")
    password="$(prod_secret "database_password_$name")"
    roles+=("$name=$password")
    [ "$own_postgres" = 0 ] ||
      seed+=("PROD_${svc}_DATABASE_URL=postgres://$(postgres_database_role "$name"):$password@127.0.0.1:$POSTGRES_PORT/${manifest_database[$name]}")
  done
  [ "$own_postgres" = 0 ] ||
    postgres_provision "$(prod_secret postgres_password)" "$POSTGRES_PORT" "${roles[@]}"
  export VAULT_ADDR="http://127.0.0.1:$VAULT_PROD_PORT"
  seed_secrets "${seed[@]}"
  prod_service_tokens
  export MAILDEV_INCOMING_USER=comms MAILDEV_INCOMING_PASS="$smtp_password"
  if [ "$uis" = 1 ]; then
    export MAILDEV_WEB_USER=comms
    MAILDEV_WEB_PASS="$(prod_secret ui_password)"
    export MAILDEV_WEB_PASS
  fi
else
  # --- dev: OpenBao's dev server (in memory, root token 0000), Redis ------
  if [ "$own_redis" = 1 ]; then
    mkdir -p data/redis
    launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
      --daemonize no --appendonly yes --appendfsync everysec --save "" \
      --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction \
      --dir "$stack_root/data/redis" --logfile "$(stack_log redis)"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    infra+=(redis)
  fi
  # The secrets are written again at every start. -dev-no-store-token
  # leaves ~/.vault-token alone.
  launch openbao "$comms_bao" server -dev -dev-root-token-id=0000 \
    -dev-listen-address="127.0.0.1:$VAULT_PORT" -dev-no-store-token
  export VAULT_ADDR="http://127.0.0.1:$VAULT_PORT" VAULT_TOKEN=0000
  wait_ready openbao "${infra[@]}"
  seed_secrets BAO_TOKEN="$VAULT_TOKEN" DEV_REDIS_URL="$REDIS_URL" DEV_SMTP_HOST=127.0.0.1 \
    DEV_SMTP_PORT="$SMTP_PORT"
  # The SMTP login email-service reads from Vault, if any (DEV_SMTP_USER),
  # is the one maildev asks for.
  smtp_user="$(vault_field comms/dev/email-service smtp_user)"
  smtp_password="$(vault_field comms/dev/email-service smtp_password)"
  if [ -n "$smtp_user" ] && [ -n "$smtp_password" ]; then
    export MAILDEV_INCOMING_USER="$smtp_user" MAILDEV_INCOMING_PASS="$smtp_password"
  fi
fi

# --- MailDev and Redis Commander --------------------------------------------
# Logins and passwords reach them in their environment, off the command line.
rm -rf "$stack_run/maildev"
maildev_web=(--web "$MAIL_UI_PORT" --web-ip 127.0.0.1)
[ "$uis" = 1 ] || maildev_web=(--disable-web)
launch maildev "$stack_root/tools/node_modules/.bin/maildev" --smtp "$SMTP_PORT" --ip 127.0.0.1 \
  "${maildev_web[@]}" --mail-directory "$stack_run/maildev"
unset MAILDEV_INCOMING_USER MAILDEV_INCOMING_PASS MAILDEV_WEB_USER MAILDEV_WEB_PASS
if [ "$uis" = 1 ]; then
  commander_config="$(redis_commander_config "$REDIS_URL")"
  if [ "$APP_ENV" = prod ]; then
    commander_url="redis://comms-admin:$(prod_secret redis_admin_password)@127.0.0.1:$REDIS_PROD_PORT"
    [ "$own_redis" = 1 ] || commander_url="$REDIS_URL"
    commander_config="$(redis_commander_config "$commander_url" comms "$(prod_secret ui_password)")"
  fi
  # Node reads extra CAs from NODE_EXTRA_CA_CERTS, not SSL_CERT_FILE (which
  # the services read for a rediss:// server with a private CA).
  [ -z "${SSL_CERT_FILE:-}" ] || export NODE_EXTRA_CA_CERTS="$SSL_CERT_FILE"
  NODE_CONFIG="$commander_config" launch redis-commander \
    "$stack_root/tools/node_modules/.bin/redis-commander" \
    --address 127.0.0.1 --port "$REDIS_COMMANDER_PORT" --nosave --no-log-data
  unset NODE_EXTRA_CA_CERTS
  wait_ready maildev redis-commander
else
  wait_ready maildev
fi

# --- the services -----------------------------------------------------------
# Settings from config/<APP_ENV>.toml, then their secret in OpenBao
# (VAULT_ADDR, VAULT_TOKEN: in prod, each its own token, which reads its
# own secret only); their ports from the environment.
export CONFIG_DIR="$stack_root/config" DATA_DIR="$stack_root/data"
for name in "${stack_services[@]}"; do
  if [ "$APP_ENV" = prod ]; then
    VAULT_TOKEN="${prod_token[$name]}" launch "$name" "$stack_root/target/release/${manifest_binary[$name]}"
  else
    launch "$name" "$stack_root/target/release/${manifest_binary[$name]}"
  fi
done
wait_ready "${stack_services[@]}"
finished=1
stack_summary

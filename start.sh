#!/usr/bin/env bash
# Runs the whole comms stack natively, on loopback: a private Redis (AOF on),
# OpenBao (a Vault-compatible secrets server) holding the services' secrets,
# maildev (SMTP test server with a web UI), Redis Commander (browses the
# streams), in prod a private PostgreSQL, and the four services built in
# release mode. Installs what is missing first, from Debian's packages, npm
# and PyPI.
#
#   ./start.sh                 start the stack (dev); ./stop.sh stops it
#   APP_ENV=prod ./start.sh    prod: PostgreSQL, a bearer token, SMTP login
#   ./start.sh build-docker    the same in Docker: compose.yaml, run by scripts/docker.sh
#
# Settings (environment variables, with their defaults):
#   APP_ENV=dev            dev or prod
#   REDIS_PORT=6379        the private Redis server's port
#   REDIS_URL              use this Redis server instead of starting one
#   SMTP_PORT=2500         maildev's SMTP port
#   MAIL_UI_PORT=9000      maildev's web UI and REST API
#   VAULT_PORT=8200        OpenBao's API and web UI (VAULT_PORT+1: its cluster port)
#   REDIS_COMMANDER_PORT=8081  Redis Commander's web UI
#   POSTGRES_PORT=5433     the private PostgreSQL server's port (prod)
#   POSTGRES_DATA=data/postgres  its cluster's directory (prod; run as root,
#                          the postgres user must be able to reach it)
#   PROD_DATABASE_URL      use this PostgreSQL server instead (prod; {db} in it
#                          stands for each database: users, campaigns, ...)
#   <SERVICE>_PORT         each service's port (campaign-service's: the REST
#                          API and dashboard), with stack.list's defaults:
#   READY_TIMEOUT=120      seconds to wait for everything to be ready
#   SEED_USERS             users to seed (config/<env>.toml; this stack's prod: 1000)
# The secrets written to OpenBao take scripts/vault-seed.sh's settings
# (PROD_API_TOKEN, PROD_SMTP_PASSWORD, PROD_DATABASE_URL, ...).
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

usage() {
  local name line=""
  sed -n '2,27s/^# \{0,1\}//p' "$0"
  for name in "${stack_services[@]}"; do
    line+="  ${manifest_variable[$name]}=${manifest_port[$name]}"
  done
  echo "   $line"
  sed -n '28,31s/^# \{0,1\}//p' "$0"
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
# The settings below are this script's own. The services take their Redis
# URL and SMTP server from Vault, so none of these reaches them: an exported
# REDIS_URL or SMTP_PORT would override what Vault holds.
REDIS_PORT="$(manifest_port_of REDIS_PORT)"
SMTP_PORT="$(manifest_port_of SMTP_PORT)"
MAIL_UI_PORT="$(manifest_port_of MAIL_UI_PORT)"
VAULT_PORT="$(manifest_port_of VAULT_PORT)"
REDIS_COMMANDER_PORT="$(manifest_port_of REDIS_COMMANDER_PORT)"
POSTGRES_PORT="$(manifest_port_of POSTGRES_PORT)"
POSTGRES_DATA="${POSTGRES_DATA:-data/postgres}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
export -n REDIS_URL SMTP_PORT REDIS_PORT MAIL_UI_PORT VAULT_PORT REDIS_COMMANDER_PORT \
  POSTGRES_PORT POSTGRES_DATA READY_TIMEOUT PROD_DATABASE_URL 2>/dev/null || true

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

# Each port this script binds, with the variable that moves it and what uses it.
own_redis=1
[ -z "${REDIS_URL:-}" ] || own_redis=0
# PostgreSQL runs only in prod, and only when no server is named.
own_postgres=0
[ "$APP_ENV" != prod ] || [ -n "${PROD_DATABASE_URL:-}" ] || own_postgres=1
ports=()
port_entry() { echo "${manifest_variable[$1]} ${manifest_what[$1]}"; }
[ "$own_redis" = 0 ] || ports+=("$(port_entry redis)")
[ "$own_postgres" = 0 ] || ports+=("$(port_entry postgres)")
ports+=("$(port_entry openbao)" "$(port_entry maildev-smtp)" "$(port_entry maildev-web)"
  "$(port_entry redis-commander)")
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
# OpenBao's dev server also listens on the port after its own (its cluster
# port), which nothing else can move.
vault_cluster_port=$((VAULT_PORT + 1))
if [ "$vault_cluster_port" -gt 65535 ] || [ -n "${port_owner[$vault_cluster_port]:-}" ]; then
  echo "VAULT_PORT=$VAULT_PORT: OpenBao also needs port $vault_cluster_port (its cluster port)${port_owner[$vault_cluster_port]:+, which is ${port_owner[$vault_cluster_port]}}; set VAULT_PORT to another port" >&2
  exit 1
fi
for entry in "${ports[@]}"; do
  variable="${entry%% *}"
  require_free_port "${!variable}" "$variable" "${entry#* }"
done
require_free_port "$vault_cluster_port" VAULT_PORT "OpenBao's cluster port, VAULT_PORT + 1"

# --- what the stack needs ---------------------------------------------------
require_redis
require_node_tools
require_redis_commander
require_openbao
require_curl
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
# A cluster of the stack's own in POSTGRES_DATA (data/postgres), its superuser `comms` with a
# password made on first use and kept in data/postgres.password (the prod
# database URLs in Vault carry it, in dev runs too). PostgreSQL refuses to
# run as root: as root, the server runs as the `postgres` user of Debian's
# package.
pg_bin=""
pg_as=()
postgres_password() {
  local file="$stack_root/data/postgres.password"
  if [ ! -s "$file" ]; then
    mkdir -p "$stack_root/data"
    # Letters and digits only: the password goes into URLs as it is.
    (umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$file")
  fi
  cat "$file"
}
if [ "$own_postgres" = 1 ]; then
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && pg_bin="$dir"
  done
  [ -n "$pg_bin" ] || {
    echo "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
  }
  if [ "$(id -u)" = 0 ]; then
    pg_as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  case "$POSTGRES_DATA" in
    /*) pg_data="$POSTGRES_DATA" ;;
    *) pg_data="$stack_root/$POSTGRES_DATA" ;;
  esac
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    echo "creating the PostgreSQL cluster in $POSTGRES_DATA"
    rm -rf "$pg_data"
    mkdir -p "$pg_data"
    chmod 700 "$pg_data"
    [ "${#pg_as[@]}" = 0 ] || chown postgres: "$pg_data"
    if ! "${pg_as[@]}" test -w "$pg_data"; then
      echo "the postgres user cannot reach $pg_data: every directory above it must be searchable (chmod o+x), or set POSTGRES_DATA to a directory it can reach" >&2
      exit 1
    fi
    # The password reaches initdb in a file only its user reads (never on a
    # command line; another user cannot reopen this script's stdin).
    pwfile="$(mktemp)"
    postgres_password >"$pwfile"
    [ "${#pg_as[@]}" = 0 ] || chown postgres: "$pwfile"
    if ! "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_data" -U comms --pwfile="$pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --no-locale >"$(stack_log postgres-initdb)" 2>&1; then
      rm -f "$pwfile"
      rm -rf "$pg_data"
      echo "initdb failed; see run/logs/postgres-initdb.log" >&2
      exit 1
    fi
    rm -f "$pwfile"
  fi
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
    maildev) http_ready "http://127.0.0.1:$MAIL_UI_PORT/healthz" && smtp_greets "$SMTP_PORT" ;;
    # 200 once unsealed and active; a dev server starts unsealed.
    openbao) http_ready "http://127.0.0.1:$VAULT_PORT/v1/sys/health" ;;
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

# %XX escapes of a URL's part decoded.
url_decode() {
  local text="${1//\\/\\\\}"
  printf '%b' "${text//%/\\x}"
}

# A JSON string of $1.
json_string() {
  local text="${1//\\/\\\\}"
  text="${text//\"/\\\"}"
  printf '"%s"' "$text"
}

# Redis Commander's configuration (node-config's NODE_CONFIG) with one
# connection, to the Redis server of $1 (redis:// or rediss://, user,
# password, host, port, database). It travels in the environment, so the
# password is on no command line.
redis_commander_config() {
  local url="$1" rest userinfo="" hostport host port db user="" password="" tls=""
  rest="${url#*://}"
  if [[ "$rest" == *@* ]]; then
    userinfo="${rest%@*}"
    rest="${rest##*@}"
  fi
  hostport="${rest%%[/?#]*}"
  db="${rest#"$hostport"}"
  db="${db#/}"
  db="${db%%[?#]*}"
  if [[ "$hostport" == \[* ]]; then
    host="${hostport%%]*}"
    host="${host#[}"
    port="${hostport#*]}"
  else
    host="${hostport%%:*}"
    port="${hostport#"$host"}"
  fi
  port="${port#:}"
  if [[ "$userinfo" == *:* ]]; then
    user="$(url_decode "${userinfo%%:*}")"
    password="$(url_decode "${userinfo#*:}")"
  elif [ -n "$userinfo" ]; then
    user="$(url_decode "$userinfo")"
  fi
  [[ "$url" != rediss://* ]] || tls=',"tls":{}'
  printf '{"noSave":true,"connections":[{"label":"comms","host":%s,"port":%s,"dbIndex":%s,' \
    "$(json_string "${host:-127.0.0.1}")" "${port:-6379}" "${db:-0}"
  printf '"username":%s,"password":%s,"connectionName":"redis-commander"%s}]}' \
    "$([ -n "$user" ] && json_string "$user" || echo null)" "$(json_string "$password")" "$tls"
}

bao() {
  BAO_ADDR="$VAULT_ADDR" BAO_TOKEN="$VAULT_TOKEN" "$comms_bao" "$@"
}

# One key of a secret in OpenBao, or nothing when the key is not there.
vault_field() {
  bao kv get -mount=secret -field="$2" "$1" 2>/dev/null || true
}

echo "logs: run/logs/"
infra=(openbao)
if [ "$own_redis" = 1 ]; then
  mkdir -p data/redis
  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --daemonize no --appendonly yes --appendfsync everysec --save "" \
    --dir "$stack_root/data/redis" --logfile "$(stack_log redis)"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  infra+=(redis)
fi
if [ "$own_postgres" = 1 ]; then
  # No Unix socket: clients, the services included, come over TCP with the
  # password.
  readlink -f "$pg_data" >"$stack_run/postgres.data"
  launch postgres "${pg_as[@]}" "$pg_bin/postgres" -D "$pg_data" -p "$POSTGRES_PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=
  infra+=(postgres)
fi
# OpenBao's dev server keeps everything in memory: the secrets are written
# again at every start. -dev-no-store-token leaves ~/.vault-token alone.
launch openbao "$comms_bao" server -dev -dev-root-token-id=0000 \
  -dev-listen-address="127.0.0.1:$VAULT_PORT" -dev-no-store-token
export VAULT_ADDR="http://127.0.0.1:$VAULT_PORT" VAULT_TOKEN=0000
wait_ready "${infra[@]}"

# --- secrets ----------------------------------------------------------------
# Dev and prod secrets of every service, pointing at this stack's servers;
# scripts/vault-seed.sh's other settings (PROD_API_TOKEN, ...) pass through.
if [ -z "${PROD_DATABASE_URL:-}" ]; then
  PROD_DATABASE_URL="postgres://comms:$(postgres_password)@127.0.0.1:$POSTGRES_PORT/{db}"
fi
if ! BAO="$comms_bao" BAO_ADDR="$VAULT_ADDR" BAO_TOKEN="$VAULT_TOKEN" SEED_ENVS="dev prod" \
  DEV_REDIS_URL="$REDIS_URL" PROD_REDIS_URL="$REDIS_URL" \
  DEV_SMTP_HOST=127.0.0.1 PROD_SMTP_HOST=127.0.0.1 \
  DEV_SMTP_PORT="$SMTP_PORT" PROD_SMTP_PORT="$SMTP_PORT" \
  PROD_DATABASE_URL="$PROD_DATABASE_URL" \
  scripts/vault-seed.sh >"$(stack_log vault-seed)" 2>&1; then
  echo "writing the secrets to OpenBao failed; the last lines of run/logs/vault-seed.log:" >&2
  tail -n 5 "$(stack_log vault-seed)" | sed 's/^/  /' >&2
  exit 1
fi
echo "secrets: secret/comms/{dev,prod}/<service> in OpenBao (run/logs/vault-seed.log lists the keys)"

if [ "$own_postgres" = 1 ]; then
  # One database per service, as the URLs in Vault name them.
  for db in $(manifest_databases); do
    exists="$(PGPASSWORD="$(postgres_password)" "$pg_bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" \
      -U comms -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    [ "$exists" = 1 ] ||
      PGPASSWORD="$(postgres_password)" "$pg_bin/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U comms "$db"
  done
fi

# The SMTP login email-service reads from Vault, if any, is the one maildev
# asks for (in prod: the example user and password of vault-seed.sh). It
# goes to maildev in its environment, off the command line.
smtp_user="$(vault_field "comms/$APP_ENV/email-service" smtp_user)"
smtp_password="$(vault_field "comms/$APP_ENV/email-service" smtp_password)"
maildev_auth=()
if [ -n "$smtp_user" ] && [ -n "$smtp_password" ]; then
  maildev_auth=(env MAILDEV_INCOMING_USER="$smtp_user" MAILDEV_INCOMING_PASS="$smtp_password")
fi
rm -rf "$stack_run/maildev"
launch maildev "${maildev_auth[@]}" "$stack_root/tools/node_modules/.bin/maildev" \
  --smtp "$SMTP_PORT" --web "$MAIL_UI_PORT" --ip 127.0.0.1 --web-ip 127.0.0.1 \
  --mail-directory "$stack_run/maildev"
# Node reads extra CAs from NODE_EXTRA_CA_CERTS, not SSL_CERT_FILE (which the
# services read for a rediss:// server with a private CA).
launch redis-commander env NODE_CONFIG="$(redis_commander_config "$REDIS_URL")" \
  ${SSL_CERT_FILE:+NODE_EXTRA_CA_CERTS="$SSL_CERT_FILE"} \
  "$stack_root/tools/node_modules/.bin/redis-commander" \
  --address 127.0.0.1 --port "$REDIS_COMMANDER_PORT" --nosave --no-log-data
wait_ready maildev redis-commander

# The services: settings from config/<APP_ENV>.toml, then their secret in
# OpenBao (VAULT_ADDR, VAULT_TOKEN); their ports from the environment.
export CONFIG_DIR="$stack_root/config" DATA_DIR="$stack_root/data"
for name in "${stack_services[@]}"; do
  launch "$name" "$stack_root/target/release/${manifest_binary[$name]}"
done
wait_ready "${stack_services[@]}"
finished=1

api_token=""
[ "$APP_ENV" != prod ] || api_token="$(vault_field comms/prod/campaign-service api_token)"
cat <<EOF

comms is running ($APP_ENV; Redis at $(redact_url "$REDIS_URL"))
  dashboard and API   http://localhost:$CAMPAIGN_PORT/
  emails              http://localhost:$MAIL_UI_PORT/
  streams             http://localhost:$REDIS_COMMANDER_PORT/ (Redis Commander)
  secrets             http://localhost:$VAULT_PORT/ui/ (OpenBao; token 0000; secret/comms/)
EOF
if [ -n "$api_token" ]; then
  cat <<EOF
  API token           $api_token
  create a campaign   curl -H "Authorization: Bearer $api_token" -H 'Content-Type: application/json' \\
                        -d '{"name":"hello","subject":"Hello {{ name }}","body":"Hi {{ name }}"}' \\
                        http://localhost:$CAMPAIGN_PORT/api/v1/campaigns
EOF
else
  echo "  create a campaign   curl http://localhost:$CAMPAIGN_PORT/api/v1/campaign/create"
fi
cat <<EOF
  its progress        curl http://localhost:$CAMPAIGN_PORT/api/v1/campaigns
  logs                run/logs/ (tail -f run/logs/*.log)
  stop                ./stop.sh
RedisInsight (${manifest_port[redisinsight]}) runs only in the Docker stack: ./start.sh build-docker; Redis Commander on $REDIS_COMMANDER_PORT shows the streams here
EOF

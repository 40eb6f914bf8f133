#!/usr/bin/env bash
# The Docker stack in prod (APP_ENV=prod ./start.sh build-docker): what
# makes it more than dev under another name, as the native prod stack,
# with the same functions (scripts/prod-stack.sh). Sourced by
# scripts/docker.sh, which calls
#
#   docker_prod_open     once the images are built, before the rest starts:
#                        starts OpenBao (prod) in server mode, initialises it
#                        on the first start (its unseal key and root token in
#                        data/docker/<project>/openbao/init.json, mode 0600,
#                        printed that once), unseals it, makes what prod's
#                        secrets lack at random, writes each service's
#                        secret and a policy that reads only it, Redis's
#                        users, PostgreSQL's roles (one per service, owner
#                        of its database, the only one that may connect to
#                        it) and a token per service; docker/compose.prod.yaml
#                        is laid over compose.yaml, every variable it needs
#                        exported
#   docker_prod_forget   after the volumes were removed: the keys of the
#                        OpenBao they held, which now open nothing
#
# The host talks to OpenBao (prod) through its published port, with the
# host's bao (scripts/require.sh's, from PyPI); the root token never enters
# a container.
# shellcheck source-path=SCRIPTDIR

source "$docker_root/scripts/prod-stack.sh"
source "$docker_root/scripts/postgres-stack.sh"
# prod-stack.sh's name for the services.
stack_services=("${manifest_services[@]}")

docker_prod_dir() {
  echo "$docker_root/data/docker/$COMPOSE_PROJECT_NAME"
}

# The check of the wait for PostgreSQL (container $1): it accepts
# connections over TCP (while the image initialises a new cluster, its
# server listens on its socket only).
docker_prod_postgres_accepts() {
  docker exec "$1" pg_isready -q -h 127.0.0.1 -U comms -d comms
}

# Starts PostgreSQL and gives each service its role and database
# (<db>_prod), through psql in the container, on its socket.
docker_prod_postgres() {
  local name id roles=() log="$docker_logs/postgres-provision.log"
  compose up -d postgres >>"$docker_logs/docker-up.log" 2>&1 || fail "starting PostgreSQL failed (run/logs/docker-up.log)"
  id="$(compose ps -q postgres)"
  await_ready "PostgreSQL (prod)" - "$READY_TIMEOUT" - docker_prod_postgres_accepts "$id" ||
    fail "PostgreSQL (prod) does not accept connections"
  for name in "${manifest_services[@]}"; do
    roles+=("$name=$(prod_secret "database_password_$name")")
  done
  # The SQL, passwords included, goes on psql's standard input.
  postgres_provision_sql _prod "${roles[@]}" |
    docker exec -i "$id" psql -U comms -d postgres -v ON_ERROR_STOP=1 -q -f - >"$log" 2>&1 ||
    fail "creating the services' roles failed; see run/logs/postgres-provision.log"
}

# Writes prod's secrets into OpenBao (scripts/vault-seed.sh, prod only):
# each service's Redis user and database role with their passwords,
# MailDev as the SMTP server with a login (in clear, on the project's
# network: MailDev has no TLS).
docker_prod_seed() {
  local name svc seed=() log="$docker_logs/vault-seed.log"
  seed=(PROD_REDIS_URL=redis://redis:6379
    PROD_SMTP_HOST=maildev PROD_SMTP_PORT=1025 PROD_SMTP_USER=comms
    "PROD_SMTP_PASSWORD=$MAILDEV_INCOMING_PASS" PROD_SMTP_ALLOW_PLAINTEXT_AUTH=true
    "PROD_API_TOKEN=${PROD_API_TOKEN:-$(prod_secret api_token)}"
    "PROD_UNSUBSCRIBE_KEY=${PROD_UNSUBSCRIBE_KEY:-$(prod_secret unsubscribe_key)}")
  for name in "${manifest_services[@]}"; do
    svc="${manifest_variable[$name]%_PORT}"
    seed+=("PROD_${svc}_REDIS_URL=redis://$name:$(prod_secret "redis_password_$name")@redis:6379"
      "PROD_${svc}_DATABASE_URL=postgres://$(postgres_database_role "$name"):$(prod_secret "database_password_$name")@postgres:5432/${manifest_database[$name]}_prod")
  done
  if ! (export "${seed[@]}" && BAO="$comms_bao" BAO_ADDR="http://127.0.0.1:$VAULT_PROD_PORT" \
    BAO_TOKEN="$(jq -r .root_token "$prod_init")" SEED_ENVS=prod \
    "$docker_root/scripts/vault-seed.sh") >"$log" 2>&1; then
    echo "writing the secrets to OpenBao (prod) failed; the last lines of run/logs/vault-seed.log:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "secrets: secret/comms/prod/<service> in OpenBao (prod) (run/logs/vault-seed.log lists the keys)" >&2
}

docker_prod_open() {
  local name
  command -v jq >/dev/null 2>&1 || apt_install jq
  require_openbao
  VAULT_PROD_PORT="$(manifest_port_of VAULT_PORT)"
  READY_TIMEOUT="${READY_TIMEOUT:-300}"
  prod_use_dir "$(docker_prod_dir)"
  compose_cmd+=(-f "$docker_root/docker/compose.prod.yaml")
  # Every variable the overlay names, before compose reads it.
  mkdir -p "$prod_dir/redis"
  export COMMS_PROD_REDIS_ACL="$prod_dir/redis/users.acl" MAILDEV_WEB_USER=comms MAILDEV_WEB_PASS=- \
    MAILDEV_INCOMING_USER=comms MAILDEV_INCOMING_PASS=-
  for name in "${manifest_services[@]}"; do
    export "${manifest_variable[$name]%_PORT}_VAULT_TOKEN=-"
  done
  [ -f "$COMMS_PROD_REDIS_ACL" ] || : >"$COMMS_PROD_REDIS_ACL"

  echo "starting OpenBao (prod)" >&2
  compose up -d openbao >"$docker_logs/docker-up.log" 2>&1 || {
    tail -n 20 "$docker_logs/docker-up.log" | sed 's/^/  /' >&2
    fail "starting OpenBao (prod) failed (run/logs/docker-up.log)"
  }
  await_ready "OpenBao (prod)" - "$READY_TIMEOUT" - prod_openbao_answers "$VAULT_PROD_PORT" ||
    fail "OpenBao (prod) does not answer on 127.0.0.1:$VAULT_PROD_PORT"
  prod_openbao_open "$VAULT_PROD_PORT" -
  prod_secrets_load >&2
  prod_policies

  prod_redis_acl "$COMMS_PROD_REDIS_ACL"
  # Read by the container's redis user: it holds names and the SHA-256 of
  # random passwords, in a folder only this user opens.
  chmod 644 "$COMMS_PROD_REDIS_ACL"
  POSTGRES_PASSWORD="$(prod_secret postgres_password)"
  MAILDEV_INCOMING_PASS="${PROD_SMTP_PASSWORD:-$(prod_secret smtp_password)}"
  MAILDEV_WEB_PASS="$(prod_secret ui_password)"
  export POSTGRES_PASSWORD MAILDEV_INCOMING_PASS MAILDEV_WEB_PASS
  docker_prod_postgres
  docker_prod_seed
  prod_service_tokens
  for name in "${manifest_services[@]}"; do
    export "${manifest_variable[$name]%_PORT}_VAULT_TOKEN=${prod_token[$name]}"
  done
}

docker_prod_forget() {
  local dir
  dir="$(docker_prod_dir)"
  [ ! -d "$dir" ] || { rm -rf "$dir" && echo "removed $dir (the keys of the removed OpenBao (prod))"; }
  # And the folders above it, when nothing else is left in them.
  rmdir "$docker_root/data/docker" "$docker_root/data" 2>/dev/null || true
}

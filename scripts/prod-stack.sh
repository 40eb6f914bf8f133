#!/usr/bin/env bash
# What makes a prod stack more than dev under another name: its own
# OpenBao in server mode, its secrets made at random and kept there, a
# token per service that reads only its own secret, and its own Redis with
# a password per service. Sourced by start.sh (the native stack, after
# scripts/stack.sh) and scripts/docker-prod.sh (the Docker one), after
# scripts/require.sh; each first names the folder of its keys
# (prod_use_dir) and sets VAULT_PROD_PORT, where OpenBao (prod) answers on
# 127.0.0.1.
#
# OpenBao (prod) keeps its data in integrated storage (raft; OpenBao has no
# plain file storage): natively in data/prod/openbao/storage, listening on
# 127.0.0.1:VAULT_PROD_PORT over plain HTTP (loopback only); in Docker in a
# volume of its own. It is initialised on the first start with one unseal
# key; that key and the root token go to <dir>/openbao/init.json (mode
# 0600) and are printed that once. Every start unseals it with that key.
#
# Its KV v2 mount secret/ holds:
#   comms/prod/<service>   each service's secret (scripts/vault-seed.sh's
#                          keys), readable by that service's token only
#                          (policy comms-prod-<service>: read on that path)
#   comms-stack/prod       what the stack itself needs, made at random on
#                          the first start (letters and digits, 32): the
#                          API token, the SMTP password, the UIs' password,
#                          Redis's and PostgreSQL's passwords; only the root
#                          token reads it
#
#   prod_use_dir DIR              where the keys are kept: DIR/openbao
#                                 (natively data/prod, which holds the
#                                 stack's data too)
#   prod_openbao_config PORT UI   writes DIR/openbao/config.hcl (native)
#   prod_openbao_answers PORT     true once the server answers, sealed or not
#   prod_openbao_open PORT PID    initialises (first start) and unseals it,
#                                 then waits until it serves (PID: the
#                                 server's process, - for a container)
#   prod_secrets_load             makes what comms-stack/prod lacks, and
#                                 reads it: prod_secret KEY prints a value
#   prod_policies                 one policy per service
#   prod_service_tokens           a new token per service in prod_token[NAME]
#                                 (the previous start's are revoked)
#   prod_redis_acl FILE           Redis's users: default off, comms-admin,
#                                 one per service
#   prod_redis_pings PORT         PONG from Redis as comms-admin

prod_use_dir() {
  prod_dir="$1"
  prod_bao_dir="$prod_dir/openbao"
  prod_init="$prod_bao_dir/init.json"
  prod_bao_config="$prod_bao_dir/config.hcl"
  # Accessors (not tokens: an accessor reads nothing) of the tokens handed
  # out at the last start, revoked at the next.
  prod_accessors="$prod_bao_dir/service-token-accessors"
  mkdir -p "$prod_bao_dir"
  chmod 700 "$prod_dir" "$prod_bao_dir"
}

prod_stack_path="comms-stack/prod"
prod_secrets_json=""
declare -A prod_token=()

# bao against prod's OpenBao with its root token; the token travels in the
# environment, never on a command line.
prod_bao() {
  BAO_ADDR="http://127.0.0.1:$VAULT_PROD_PORT" BAO_TOKEN="$(jq -r .root_token "$prod_init")" \
    "$comms_bao" "$@"
}

prod_openbao_config() {
  local port="$1" ui="$2"
  mkdir -p "$prod_bao_dir/storage"
  cat >"$prod_bao_config" <<EOF
# Written by start.sh at every prod start: prod's OpenBao.
storage "raft" {
  path    = "$prod_bao_dir/storage"
  node_id = "comms-prod"
}
# Loopback only, plain HTTP: nothing leaves this machine.
listener "tcp" {
  address         = "127.0.0.1:$port"
  cluster_address = "127.0.0.1:$((port + 1))"
  tls_disable     = true
}
api_addr     = "http://127.0.0.1:$port"
cluster_addr = "https://127.0.0.1:$((port + 1))"
# The web UI only when PROD_UIS=1 (it asks for a token).
ui = $ui
EOF
}

# The HTTP status of sys/health: 200 serving, 501 not initialised, 503
# sealed, 000 no answer.
prod_openbao_health() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v1/sys/health" || true
}

prod_openbao_serving() {
  [ "$(prod_openbao_health "$1")" = 200 ]
}

prod_openbao_answers() {
  [[ "$(prod_openbao_health "$1")" =~ ^(200|429|472|473|501|503)$ ]]
}

prod_openbao_open() {
  local port="$1" pid="$2" health
  health="$(prod_openbao_health "$port")"
  if [ "$health" = 501 ]; then
    if [ -e "$prod_init" ]; then
      echo "OpenBao (prod) is not initialised, yet $prod_init exists: remove $prod_dir to start afresh" >&2
      exit 1
    fi
    (umask 077 && BAO_ADDR="http://127.0.0.1:$port" "$comms_bao" operator init \
      -key-shares=1 -key-threshold=1 -format=json >"$prod_init.new") || {
      rm -f "$prod_init.new"
      echo "bao operator init failed on OpenBao (prod)" >&2
      exit 1
    }
    chmod 600 "$prod_init.new"
    mv "$prod_init.new" "$prod_init"
    cat <<EOF

OpenBao (prod) was initialised. Its unseal key and root token, shown this once,
are kept in $prod_init (mode 0600); keep a copy elsewhere:
  unseal key   $(jq -r '.unseal_keys_b64[0]' "$prod_init")
  root token   $(jq -r .root_token "$prod_init")

EOF
  elif [ ! -r "$prod_init" ]; then
    echo "OpenBao (prod) is initialised but $prod_init is missing: without its unseal key it stays sealed (start afresh without its data, losing every prod secret)" >&2
    exit 1
  fi
  if [ "$(prod_openbao_health "$port")" = 503 ]; then
    # The key goes to the server on curl's standard input.
    jq '{key: .unseal_keys_b64[0]}' "$prod_init" |
      curl -fsS -o /dev/null --max-time 10 -X PUT --data @- "http://127.0.0.1:$port/v1/sys/unseal" || {
      echo "unsealing OpenBao (prod) failed (is $prod_init its own?)" >&2
      exit 1
    }
  fi
  wait_until "OpenBao (prod)" "$pid" "$READY_TIMEOUT" \
    prod_openbao_serving "$port" || exit 1
  # A new server has no KV mount yet.
  prod_bao secrets list -format=json | jq -e 'has("secret/")' >/dev/null ||
    prod_bao secrets enable -path=secret -version=2 kv >/dev/null
}

# 32 random letters and digits: safe in URLs and SQL as they are.
prod_random() {
  local out=""
  while [ "${#out}" -lt 32 ]; do
    out+="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  done
  printf '%s' "${out:0:32}"
}

prod_secret() {
  jq -r --arg key "$1" '.[$key] // empty' <<<"$prod_secrets_json"
}

prod_secrets_load() {
  local keys=(api_token unsubscribe_key smtp_password ui_password postgres_password redis_admin_password)
  local name key made=0
  for name in "${stack_services[@]}"; do
    keys+=("redis_password_$name" "database_password_$name")
  done
  prod_secrets_json="$(prod_bao kv get -mount=secret -format=json "$prod_stack_path" 2>/dev/null |
    jq -c '.data.data')" || prod_secrets_json=""
  [ -n "$prod_secrets_json" ] && [ "$prod_secrets_json" != null ] || prod_secrets_json='{}'
  for key in "${keys[@]}"; do
    [ -z "$(prod_secret "$key")" ] || continue
    # The values reach jq on its standard input, never its command line.
    prod_secrets_json="$(
      printf '%s\n%s\n' "$prod_secrets_json" "$(prod_random)" |
        jq -Rnc --arg key "$key" 'input as $all | input as $value | ($all | fromjson) + {($key): $value}'
    )"
    made=1
  done
  if [ "$made" = 1 ]; then
    printf '%s\n' "$prod_secrets_json" | prod_bao kv put -mount=secret "$prod_stack_path" - >/dev/null || {
      echo "writing secret/$prod_stack_path to OpenBao (prod) failed" >&2
      exit 1
    }
    echo "prod secrets: made at random and kept in OpenBao (prod) at secret/$prod_stack_path"
  fi
}

prod_policies() {
  local name
  for name in "${stack_services[@]}"; do
    printf 'path "secret/data/comms/prod/%s" {\n  capabilities = ["read"]\n}\n' "$name" |
      prod_bao policy write "comms-prod-$name" - >/dev/null || {
      echo "writing the policy comms-prod-$name failed" >&2
      exit 1
    }
  done
}

prod_service_tokens() {
  local name accessor created
  if [ -f "$prod_accessors" ]; then
    while read -r accessor; do
      [ -z "$accessor" ] || prod_bao token revoke -accessor "$accessor" >/dev/null 2>&1 || true
    done <"$prod_accessors"
  fi
  (umask 077 && : >"$prod_accessors")
  for name in "${stack_services[@]}"; do
    # Lives a month (the server's longest); each start makes new ones.
    created="$(prod_bao token create -policy="comms-prod-$name" -no-default-policy -orphan \
      -ttl=768h -display-name="$name" -format=json)" || {
      echo "creating the OpenBao token of $name failed" >&2
      exit 1
    }
    prod_token[$name]="$(jq -r .auth.client_token <<<"$created")"
    jq -r .auth.accessor <<<"$created" >>"$prod_accessors"
  done
}

# The SHA-256 of $1, as Redis's ACL file takes a password.
prod_sha256() {
  printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

prod_redis_acl() {
  local file="$1" name
  (
    umask 077
    {
      echo "user default off"
      echo "user comms-admin on #$(prod_sha256 "$(prod_secret redis_admin_password)") ~* &* +@all"
      # Every key of comms is under comms:; INFO (memory) is the one
      # command of @dangerous a service runs.
      for name in "${stack_services[@]}"; do
        echo "user $name on #$(prod_sha256 "$(prod_secret "redis_password_$name")") ~comms:* &* +@all -@dangerous +info"
      done
    } >"$file"
  )
}

prod_redis_pings() {
  [ "$(REDISCLI_AUTH="$(prod_secret redis_admin_password)" timeout 2 redis-cli --user comms-admin \
    -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

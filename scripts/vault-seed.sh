#!/bin/sh
# Writes the secrets of comms into a Vault-compatible server (OpenBao's dev
# server in the stacks, prod's own OpenBao in the native prod stack): one
# KV v2 secret per environment and service, at
#
#   secret/comms/<env>/<service>      env: dev, prod
#                                     service: each service of stack.list
#
# Each secret's keys are the service's configuration keys, so a service reads
# its secret as one more configuration layer (defaults < config/<env>.toml <
# Vault < environment variables):
#
#   every service     redis_url, database_url
#   email-service     smtp_host, smtp_port, smtp_user, smtp_password, smtp_tls,
#                     smtp_allow_plaintext_auth, relays (EMAIL_RELAYS: the
#                     relay URLs with their logins, when there are
#                     several), and its DKIM key:
#                     dkim_private_key, dkim_selector, dkim_domain,
#                     dkim_algorithm
#   campaign-service  api_token (the bearer token of writes, in prod)
#   user-service      api_token (the same token: reading users needs it)
#   notification-service  api_token (the same token: reading a notification,
#                     which holds its recipient's address, needs it)
#   campaign-service, notification-service  unsubscribe_key (the key that
#                     signs each email's unsubscribe link, in
#                     notification-service, and verifies it, in
#                     campaign-service, which serves the link: the same
#                     in both; at least 32 characters)
#
# A key whose value is empty is not written (no database_url means SQLite;
# no api_token means none; no unsubscribe_key means dev's published key in
# dev, and a prod service that refuses to start), yet every service gets a secret in every
# environment: a missing secret stops a service at start. Values are strings.
# Run it again to overwrite: each run writes a new version of every secret.
#
# POSIX sh and the bao CLI only (it also runs in the openbao/openbao image,
# which has no bash, curl or jq). Settings (environment variables, with
# their defaults, good for ./start.sh's native stack):
#
#   BAO=bao                     the bao (or vault) command
#   STACK_LIST=<this script's directory>/../stack.list   the stack's
#                               manifest: its services, their port
#                               variables (USER_PORT: <SVC> is USER) and
#                               their databases
#   BAO_ADDR=http://127.0.0.1:8200   the server (VAULT_ADDR when BAO_ADDR is unset)
#   BAO_TOKEN=0000              a token that may write (VAULT_TOKEN when unset)
#   SEED_WAIT=30                seconds to wait for the server to answer
#   SEED_ENVS="dev prod"        the environments to write
#   KV_MOUNT=secret             the KV v2 mount (enabled when missing)
#   KV_PREFIX=comms             the path under it: <KV_MOUNT>/<KV_PREFIX>/<env>/<service>
#
#   per environment, <ENV> being DEV or PROD:
#   <ENV>_REDIS_URL=redis://127.0.0.1:6379
#   <ENV>_<SVC>_REDIS_URL       one service's Redis URL instead (its own
#                               Redis user and password); <SVC> as below
#   <ENV>_DATABASE_URL          a URL where {db} stands for the service's database
#                               (stack.list's: users, campaigns, ...)
#                               DEV: empty (SQLite files under data/dev/)
#                               PROD: postgres://comms:comms@127.0.0.1:5433/{db}
#   <ENV>_<SVC>_DATABASE_URL    one service's URL instead of the pattern (set
#                               and empty: SQLite); <SVC> is its port
#                               variable's prefix: CAMPAIGN, USER, ...
#   <ENV>_SMTP_HOST=127.0.0.1
#   <ENV>_SMTP_PORT=2500
#   <ENV>_SMTP_USER             DEV: empty  PROD: comms
#   <ENV>_SMTP_PASSWORD         DEV: empty  PROD: comms-smtp-example
#   <ENV>_SMTP_TLS=none         none, starttls or tls. The stacks' SMTP server
#                               (MailDev) offers no STARTTLS, so prod is seeded
#                               with none; set PROD_SMTP_TLS= (empty) to keep
#                               config/prod.toml's starttls for a real relay.
#   <ENV>_SMTP_ALLOW_PLAINTEXT_AUTH   DEV, PROD: empty (false). true lets
#                               email-service log in over SMTP without TLS
#                               (the stacks' MailDev on loopback); without it
#                               a login with smtp_tls = none stops its start
#   <ENV>_EMAIL_RELAYS          empty: the one relay above. Several relays,
#                               each a URL with its login, pool, rate and
#                               weight (smtp://user:password@host:587?name=ses&
#                               tls=starttls&rate=14, ...; see docs/sending.md)
#   <ENV>_API_TOKEN             DEV: empty  PROD: comms-prod-example-token
#   <ENV>_UNSUBSCRIBE_KEY       DEV: empty (the services use dev's key, which
#                               is published in contracts::unsubscribe)
#                               PROD: empty (required: a prod service stops
#                               at start without one; the native prod stack
#                               makes one at random, the Docker stack takes
#                               PROD_UNSUBSCRIBE_KEY)
#   <ENV>_DKIM_PRIVATE_KEY      email-service's DKIM key, PEM (signing is off
#                               without one)
#                               DEV: unset: an Ed25519 key that openssl makes
#                               at every seeding, where openssl is (not in the
#                               openbao image: the Docker stack's dev signs
#                               only when given one); set and empty: none
#                               PROD: empty
#   <ENV>_DKIM_SELECTOR         DEV: comms-dev  PROD: empty (required with a key)
#   <ENV>_DKIM_DOMAIN           empty: MAIL_FROM's domain
#   <ENV>_DKIM_ALGORITHM        empty: the key's (rsa-sha256, ed25519-sha256)
#
# The PROD example values are published, so a prod service refuses them
# (it stops at start, naming the setting): they are here only for trying
# the seeding out; a prod stack gives its own (the native one makes random
# ones, scripts/prod-stack.sh).
#
# For the Docker stack, e.g.:
#   BAO_ADDR=http://openbao:8200 DEV_REDIS_URL=redis://redis:6379 \
#   PROD_REDIS_URL=redis://redis:6379 DEV_SMTP_HOST=maildev DEV_SMTP_PORT=1025 \
#   PROD_SMTP_HOST=maildev PROD_SMTP_PORT=1025 \
#   PROD_DATABASE_URL='postgres://comms:secret@postgres:5432/{db}' vault-seed.sh
#
# Values reach bao as JSON on its standard input (never on a command line).
# Prints the path and key names it wrote, never a value.
set -eu

BAO="${BAO:-bao}"
STACK_LIST="${STACK_LIST:-$(dirname "$0")/../stack.list}"
BAO_ADDR="${BAO_ADDR:-${VAULT_ADDR:-http://127.0.0.1:8200}}"
BAO_TOKEN="${BAO_TOKEN:-${VAULT_TOKEN:-0000}}"
export BAO_ADDR BAO_TOKEN
SEED_WAIT="${SEED_WAIT:-30}"
SEED_ENVS="${SEED_ENVS:-dev prod}"
KV_MOUNT="${KV_MOUNT:-secret}"
KV_PREFIX="${KV_PREFIX:-comms}"

: "${DEV_REDIS_URL=redis://127.0.0.1:6379}"
: "${DEV_DATABASE_URL=}"
: "${DEV_SMTP_HOST=127.0.0.1}"
: "${DEV_SMTP_PORT=2500}"
: "${DEV_SMTP_USER=}"
: "${DEV_SMTP_PASSWORD=}"
: "${DEV_SMTP_TLS=none}"
: "${DEV_SMTP_ALLOW_PLAINTEXT_AUTH=}"
: "${DEV_API_TOKEN=}"
: "${DEV_UNSUBSCRIBE_KEY=}"
: "${DEV_DKIM_SELECTOR=comms-dev}"
: "${DEV_DKIM_DOMAIN=}"
: "${DEV_DKIM_ALGORITHM=}"

: "${PROD_REDIS_URL=redis://127.0.0.1:6379}"
: "${PROD_DATABASE_URL=postgres://comms:comms@127.0.0.1:5433/{db}}"
: "${PROD_SMTP_HOST=127.0.0.1}"
: "${PROD_SMTP_PORT=2500}"
: "${PROD_SMTP_USER=comms}"
: "${PROD_SMTP_PASSWORD=comms-smtp-example}"
: "${PROD_SMTP_TLS=none}"
: "${PROD_SMTP_ALLOW_PLAINTEXT_AUTH=}"
: "${PROD_API_TOKEN=comms-prod-example-token}"
: "${PROD_UNSUBSCRIBE_KEY=}"
: "${PROD_DKIM_PRIVATE_KEY=}"
: "${PROD_DKIM_SELECTOR=}"
: "${PROD_DKIM_DOMAIN=}"
: "${PROD_DKIM_ALGORITHM=}"

fail() {
  echo "vault-seed: $*" >&2
  exit 1
}

command -v "$BAO" >/dev/null 2>&1 || fail "no $BAO command (BAO names it)"
[ -r "$STACK_LIST" ] || fail "no manifest of the stack at $STACK_LIST (STACK_LIST names it)"
case "$SEED_WAIT" in '' | *[!0-9]*) fail "SEED_WAIT=$SEED_WAIT is not a number of seconds" ;; esac

# The value of the variable named $1 (names are built from the environment
# and service below, never from input).
value_of() {
  eval "printf '%s' \"\${$1-}\""
}

# True when the variable named $1 is set, even to nothing.
is_set() {
  eval "[ -n \"\${$1+set}\" ]"
}

# $1 as the inside of a JSON string: \ and " escaped, line breaks (a PEM
# key's) as \n, other control characters (none belongs in these values)
# refused. Plain sh, character by character.
newline='
'
json_escape() {
  rest="$1"
  escaped=""
  while [ -n "$rest" ]; do
    char="${rest%"${rest#?}"}"
    rest="${rest#?}"
    case "$char" in
      \\ | '"') escaped="$escaped\\$char" ;;
      "$newline") escaped="$escaped\\n" ;;
      [[:cntrl:]]) return 1 ;;
      *) escaped="$escaped$char" ;;
    esac
  done
  printf '%s' "$escaped"
}

# dev's DKIM key, unless one was given (or none, set and empty): a new
# Ed25519 key, so that dev's emails are signed (GET /api/v1/dkim on
# email-service gives its record).
if ! is_set DEV_DKIM_PRIVATE_KEY; then
  DEV_DKIM_PRIVATE_KEY=""
  case " $SEED_ENVS " in
    *" dev "*)
      if command -v openssl >/dev/null 2>&1; then
        DEV_DKIM_PRIVATE_KEY="$(openssl genpkey -algorithm ed25519 2>/dev/null)" ||
          fail "openssl could not make dev's DKIM key"
      else
        echo "no openssl here: dev's emails are not DKIM-signed (DEV_DKIM_PRIVATE_KEY gives a key)"
      fi
      ;;
  esac
fi

# In a container started beside the server, the server may still be starting.
waited=0
until "$BAO" status >/dev/null 2>&1; do
  # `bao status` exits 2 for a sealed server, which answers but cannot store.
  if [ "$waited" -ge "$SEED_WAIT" ]; then
    fail "no unsealed Vault server answers at $BAO_ADDR after ${SEED_WAIT}s (BAO_ADDR, SEED_WAIT)"
  fi
  sleep 1
  waited=$((waited + 1))
done

# A dev server mounts secret/ as KV v2 already; any other server may not.
# Enabling an existing mount fails, harmlessly: a real problem (a token that
# may not write, say) shows in the first put below.
"$BAO" secrets enable -path="$KV_MOUNT" -version=2 kv >/dev/null 2>&1 || true

for env in $SEED_ENVS; do
  case "$env" in
    dev) ENV=DEV ;;
    prod) ENV=PROD ;;
    *) fail "SEED_ENVS: $env is neither dev nor prod" ;;
  esac
  # Each service row of the manifest: kind name port variable binary ready
  # database what (comments and other rows skipped).
  while read -r kind service _port variable _binary _ready db _what <&3; do
    [ "$kind" = service ] || continue
    SVC="${variable%_PORT}"

    if is_set "${ENV}_${SVC}_DATABASE_URL"; then
      database_url="$(value_of "${ENV}_${SVC}_DATABASE_URL")"
    else
      database_url="$(value_of "${ENV}_DATABASE_URL")"
      case "$database_url" in
        *'{db}'*) database_url="${database_url%%"{db}"*}$db${database_url#*"{db}"}" ;;
      esac
    fi

    # The secret goes to bao as JSON on its standard input: no value is on a
    # command line, and none is taken for bao's @file or - syntax.
    json=""
    keys=""
    put() {
      [ -n "$2" ] || return 0
      escaped="$(json_escape "$2")" || fail "$env $service: the value of $1 holds a control character"
      json="$json${json:+,}\"$1\":\"$escaped\""
      keys="$keys $1"
    }
    if is_set "${ENV}_${SVC}_REDIS_URL"; then
      put redis_url "$(value_of "${ENV}_${SVC}_REDIS_URL")"
    else
      put redis_url "$(value_of "${ENV}_REDIS_URL")"
    fi
    put database_url "$database_url"
    if [ "$service" = email-service ]; then
      put smtp_host "$(value_of "${ENV}_SMTP_HOST")"
      put smtp_port "$(value_of "${ENV}_SMTP_PORT")"
      put smtp_user "$(value_of "${ENV}_SMTP_USER")"
      put smtp_password "$(value_of "${ENV}_SMTP_PASSWORD")"
      put smtp_tls "$(value_of "${ENV}_SMTP_TLS")"
      put smtp_allow_plaintext_auth "$(value_of "${ENV}_SMTP_ALLOW_PLAINTEXT_AUTH")"
      put relays "$(value_of "${ENV}_EMAIL_RELAYS")"
      put dkim_private_key "$(value_of "${ENV}_DKIM_PRIVATE_KEY")"
      # A selector without a key would name nothing.
      if [ -n "$(value_of "${ENV}_DKIM_PRIVATE_KEY")" ]; then
        put dkim_selector "$(value_of "${ENV}_DKIM_SELECTOR")"
        put dkim_domain "$(value_of "${ENV}_DKIM_DOMAIN")"
        put dkim_algorithm "$(value_of "${ENV}_DKIM_ALGORITHM")"
      fi
    fi
    if [ "$service" != email-service ]; then
      put api_token "$(value_of "${ENV}_API_TOKEN")"
    fi
    case "$service" in
      campaign-service | notification-service)
        put unsubscribe_key "$(value_of "${ENV}_UNSUBSCRIBE_KEY")"
        ;;
    esac

    # With no keys at all the secret is still written ({}), so that the
    # service finds it.
    path="$KV_PREFIX/$env/$service"
    printf '{%s}\n' "$json" | "$BAO" kv put -mount="$KV_MOUNT" "$path" - >/dev/null ||
      fail "could not write $KV_MOUNT/$path at $BAO_ADDR"
    echo "wrote $KV_MOUNT/$path:${keys:- (no keys)}"
  done 3<"$STACK_LIST"
done

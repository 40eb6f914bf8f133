#!/usr/bin/env bash
# What the Docker stack's end-to-end tests (tests/docker/run.sh, dev, and
# tests/docker/prod.sh) share. Sourced from the repository's root, after
# COMPOSE_PROJECT_NAME, SEED_USERS and APP_ENV are set:
#
#   - an engine of the test's own where none runs (docker.io installed and
#     dockerd started, stopped again at the end);
#   - on failure, each container's last log lines, then the project removed
#     with its volumes; a project left over by an interrupted run removed
#     first;
#   - docker_test_campaign AUTH...   a campaign to every user through the
#     API, waited for until completed, every user counted as sent (AUTH:
#     curl's arguments for the API, e.g. a bearer token); its id in
#     campaign_id
#   - docker_test_mail AUTH...       MailDev received one email per user
#   - docker_test_stop               ./stop.sh stop-docker --volumes leaves
#     no container, network, volume or listener
#   - docker_test_container SERVICE  the id of SERVICE's running container
# shellcheck source-path=SCRIPTDIR/../..
source scripts/require.sh
# The services and the ports they and the servers publish (stack.list).
source scripts/manifest.sh
# step, ok, fail and no_listener_on.
source scripts/test-steps.sh

campaign_timeout="${CAMPAIGN_TIMEOUT:-900}"
campaign_port="$(manifest_port_of CAMPAIGN_PORT)"
mail_ui_port="$(manifest_port_of MAIL_UI_PORT)"
vault_port="$(manifest_port_of VAULT_PORT)"
redis_commander_port="$(manifest_port_of REDIS_COMMANDER_PORT)"
api="http://127.0.0.1:$campaign_port/api/v1"
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

docker_test_container() {
  docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}

finished=0
on_exit() {
  local status=$?
  if [ "$finished" = 0 ]; then
    echo "--- the services' last log lines" >&2
    local service id
    for service in "${services[@]}" vault-init openbao redis; do
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

docker_test_campaign() {
  local created campaign status progress began=$SECONDS deadline=$((SECONDS + campaign_timeout))
  step "a campaign to all $SEED_USERS users"
  created="$(curl -fsS "$@" -X POST "$api/campaigns" -H 'content-type: application/json' \
    -d '{"name": "docker end-to-end", "subject": "Hello {{ name }}", "body": "Hi {{ name }}, this is for {{ email }}."}')" ||
    fail "POST $api/campaigns failed"
  campaign_id="$(jq -r '.id' <<<"$created")"
  [[ "$campaign_id" =~ ^[0-9a-zA-Z-]+$ ]] || fail "the created campaign has no id: $created"
  echo "campaign $campaign_id"
  while :; do
    campaign="$(curl -fsS "$@" "$api/campaigns/$campaign_id")" || fail "GET $api/campaigns/$campaign_id failed"
    status="$(jq -r '.status' <<<"$campaign")"
    progress="$(jq -c '.progress' <<<"$campaign")"
    [ "$status" != completed ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "campaign not completed after ${campaign_timeout}s: $status $progress"
    echo "  $status $progress"
    sleep 5
  done
  echo "completed in $((SECONDS - began))s: $progress"
  [ "$(jq -r '.progress.total' <<<"$campaign")" = "$SEED_USERS" ] || fail "progress.total is not $SEED_USERS: $progress"
  [ "$(jq -r '.progress.sent' <<<"$campaign")" = "$SEED_USERS" ] || fail "progress.sent is not $SEED_USERS: $progress"
  ok "the campaign completed: $SEED_USERS sent"
}

docker_test_mail() {
  local emails recipients file=run/docker-test-emails.json
  step "MailDev received one email per user"
  curl -fsS "$@" --compressed "http://127.0.0.1:$mail_ui_port/email" -o "$file" ||
    fail "GET /email on MailDev failed"
  emails="$(jq 'length' "$file")"
  recipients="$(jq '[.[].to[0].address] | unique | length' "$file")"
  rm -f "$file"
  [ "$emails" = "$SEED_USERS" ] || fail "MailDev holds $emails emails, not $SEED_USERS"
  [ "$recipients" = "$SEED_USERS" ] || fail "MailDev's $emails emails go to $recipients addresses, not $SEED_USERS"
  ok "$emails emails, to $recipients distinct addresses"
}

docker_test_stop() {
  local left
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
}

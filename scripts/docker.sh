#!/usr/bin/env bash
# The Docker stack of comms (compose.yaml): what ./start.sh build-docker and
# ./stop.sh stop-docker run.
#
#   scripts/docker.sh up              build, start, wait until healthy, print the URLs
#   scripts/docker.sh down [--volumes]  remove the containers and the network
#                                     (--volumes: the data volumes too)
#
# up installs what is missing from Debian's packages (docker.io,
# docker-compose, debootstrap), starts dockerd in the background when no
# engine answers (log: run/logs/dockerd.log; down stops it again, and only a
# dockerd that up started), and, for each image that is neither here nor
# pullable, builds a local stand-in (docker/standins/build.sh). It uses
# `docker compose` (v2) when there is one, else `docker-compose` (v1.29).
#
# Settings (environment variables, with their defaults):
#   APP_ENV=dev                 dev or prod (prod: scripts/docker-prod.sh)
#   COMPOSE_PROJECT_NAME=comms  the Compose project (containers, network, volumes)
#   PUBLISH_ADDRESS=127.0.0.1   the host address every published port binds
#   <SERVICE>_PORT (CAMPAIGN_PORT, ...), MAIL_UI_PORT, SMTP_PORT, VAULT_PORT,
#   REDIS_COMMANDER_PORT, REDISINSIGHT_PORT   the published ports (stack.list
#                               has their defaults)
#   REDIS_PORT, POSTGRES_PORT   publish Redis / PostgreSQL too (not by default)
#   SEED_USERS                  users to seed (dev: config/dev.toml's 100,000; prod: 1,000)
#   STANDINS=auto               auto: stand-ins for images that cannot be pulled;
#                               always: stand-ins wherever there is one; never
#   READY_TIMEOUT=300           seconds to wait for every container to be healthy
#   REDIS_IMAGE, POSTGRES_IMAGE, OPENBAO_IMAGE, MAILDEV_IMAGE,
#   REDIS_COMMANDER_IMAGE, REDISINSIGHT_IMAGE, RUST_IMAGE, RUNTIME_IMAGE
#                               use this image instead (compose.yaml has the defaults)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

docker_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$docker_root"
source scripts/require.sh
source scripts/ready.sh
source scripts/manifest.sh
source docker/standins/build.sh
source scripts/docker-prod.sh

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-comms}"
docker_run="$docker_root/run"
docker_logs="$docker_run/logs"
# The pid of the dockerd that `up` started, if it did.
dockerd_pidfile="$docker_run/dockerd.pid"

# Each published port: its variable, its default, and what listens on it
# (stack.list's): every service's, then the servers'.
docker_ports=()
for docker_name in "${manifest_services[@]}" maildev-web maildev-smtp openbao redis-commander redisinsight; do
  docker_ports+=("${manifest_variable[$docker_name]} ${manifest_port[$docker_name]} ${manifest_what[$docker_name]}")
done
unset docker_name

# Each image variable of compose.yaml, with the stand-in that replaces its
# default where it cannot be pulled ("-": none).
docker_images=(
  "REDIS_IMAGE redis"
  "POSTGRES_IMAGE postgres"
  "OPENBAO_IMAGE openbao"
  "MAILDEV_IMAGE maildev"
  "REDIS_COMMANDER_IMAGE redis-commander"
  "REDISINSIGHT_IMAGE -"
  "RUST_IMAGE rust"
  "RUNTIME_IMAGE debian"
)

# One line on stderr, then exit 1.
fail() { echo "$*" >&2 && exit 1; }

# --- the engine ---------------------------------------------------------------

docker_engine_answers() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

# The pid of the dockerd that `up` started, while it runs.
docker_own_dockerd() {
  local pid=""
  [ -f "$dockerd_pidfile" ] && read -r pid <"$dockerd_pidfile" 2>/dev/null
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{print $1}')" = dockerd ] || return 1
  echo "$pid"
}

docker_started_engine=0

# Makes sure a Docker engine answers: installs docker.io when docker or
# dockerd is missing, and starts dockerd in the background when no engine
# runs (on machines where nothing starts it at boot).
docker_require_engine() {
  docker_engine_answers && return 0
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
    # Where the package's service manager started it, it answers now.
    for _ in $(seq 10); do
      docker_engine_answers && return 0
      sleep 1
    done
  fi
  [ "$(id -u)" -eq 0 ] ||
    fail "no Docker engine answers; start one (sudo dockerd &, or sudo systemctl start docker) and run this again"
  mkdir -p "$docker_logs"
  echo "starting dockerd in the background (log: run/logs/dockerd.log)" >&2
  # A session of its own, so that a Ctrl-C in this terminal does not reach it.
  setsid dockerd >>"$docker_logs/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dockerd_pidfile"
  docker_started_engine=1
  local pid=$!
  for _ in $(seq 60); do
    docker_engine_answers && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$dockerd_pidfile"
      echo "dockerd exited while starting; the last 20 lines of run/logs/dockerd.log:" >&2
      tail -n 20 "$docker_logs/dockerd.log" | sed 's/^/  /' >&2
      exit 1
    fi
    sleep 1
  done
  fail "dockerd does not answer after 60 s; see run/logs/dockerd.log"
}

# Stops the dockerd that `up` started, if it did and it still runs.
docker_stop_own_engine() {
  local pid
  pid="$(docker_own_dockerd)" || {
    rm -f "$dockerd_pidfile"
    return 0
  }
  echo "stopping dockerd (pid $pid), which ./start.sh build-docker started"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "dockerd (pid $pid) still runs 30 s after SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dockerd_pidfile"
}

# --- Compose ------------------------------------------------------------------

compose_cmd=()
compose_name=""
# Picks `docker compose` (v2) or `docker-compose` (v1.29); installs the
# latter from Debian's packages when there is neither and $1 is "install".
docker_require_compose() {
  if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
  elif [ "${1:-}" = install ]; then
    apt_install docker-compose
    compose_cmd=(docker-compose)
  else
    fail "neither docker compose nor docker-compose is installed"
  fi
  compose_name="${compose_cmd[*]}"
  if [ "${compose_cmd[0]}" = docker-compose ]; then
    # v1 builds through the engine's API (the classic builder), which the
    # Dockerfile is written for; its other way, the docker CLI with
    # BuildKit, needs a buildx plugin that this machine may lack.
    export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
  fi
  compose_cmd+=(--project-directory "$docker_root" -f "$docker_root/compose.yaml")
  # Redis and PostgreSQL are published only when asked for.
  if [ -n "${REDIS_PORT:-}" ]; then
    compose_cmd+=(-f "$docker_root/docker/compose.redis-port.yaml")
  fi
  if [ -n "${POSTGRES_PORT:-}" ]; then
    compose_cmd+=(-f "$docker_root/docker/compose.postgres-port.yaml")
  fi
}

compose() {
  "${compose_cmd[@]}" "$@"
}

# The project's containers (all of them, running or not).
docker_project_containers() {
  docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"
}

# The services compose.yaml defines.
compose_services() {
  compose config --services
}

# The default of an image variable in compose.yaml (${VAR:-default}).
compose_default() {
  grep -o "\${$1:-[^}]*}" compose.yaml | head -n 1 | sed "s/^\${$1:-//; s/}\$//"
}

# --- images -------------------------------------------------------------------

registry_reachable=unknown
skipped_services=()
standins_needed=()

docker_image_present() {
  docker image inspect "$1" >/dev/null 2>&1
}

# Pulls an image unless the registry has already been found unreachable.
docker_try_pull() {
  local image="$1" output
  [ "$registry_reachable" != no ] || return 1
  echo "pulling $image" >&2
  if output="$(timeout 900 docker pull -q "$image" 2>&1)"; then
    registry_reachable=yes
    return 0
  fi
  if [ "$registry_reachable" = unknown ]; then
    registry_reachable=no
    echo "cannot pull $image ($(tail -n 1 <<<"$output")); building local stand-ins for what cannot be pulled" >&2
  fi
  return 1
}

# Decides, for every image variable, between the image named (by the
# environment or compose.yaml's default) and a local stand-in, and exports
# each variable. The stand-ins to build go in standins_needed; services
# whose image cannot be had at all, in skipped_services.
docker_resolve_images() {
  local entry variable standin image default mode="${STANDINS:-auto}"
  case "$mode" in auto | always | never) ;; *) fail "STANDINS=$mode: it must be auto, always or never" ;; esac
  for entry in "${docker_images[@]}"; do
    variable="${entry%% *}"
    standin="${entry#* }"
    default="$(compose_default "$variable")"
    [ -n "$default" ] || fail "compose.yaml has no default for $variable"
    if [ -n "${!variable:-}" ]; then
      # Named by the user: that image, or an error.
      image="${!variable}"
      docker_image_present "$image" || docker_try_pull "$image" ||
        fail "$variable=$image: no such image here, and it cannot be pulled"
      export "${variable?}"
      continue
    fi
    if [ "$mode" = always ] && [ "$standin" != - ]; then
      standins_needed+=("$standin")
      export "$variable=$(standin_image "$standin")"
      continue
    fi
    if docker_image_present "$default" || { [ "$mode" != always ] && docker_try_pull "$default"; }; then
      continue
    fi
    if [ "$standin" = - ] || [ "$mode" = never ]; then
      if [ "$variable" = REDISINSIGHT_IMAGE ]; then
        echo "RedisInsight is left out: its image ($default) cannot be pulled here and has no stand-in (it is not on Debian, PyPI or npm)" >&2
        skipped_services+=(redisinsight)
        continue
      fi
      fail "$variable: $default cannot be pulled (STANDINS=never)"
    fi
    standins_needed+=("$standin")
    export "$variable=$(standin_image "$standin")"
  done
}

# Builds the stand-ins that docker_resolve_images found needed.
docker_build_standins() {
  [ "${#standins_needed[@]}" -gt 0 ] || return 0
  if ! standin_current debian && ! command -v debootstrap >/dev/null 2>&1; then
    apt_install debootstrap
  fi
  STANDIN_LOG_DIR="$docker_logs" standin_build "${standins_needed[@]}"
}

# --- up -----------------------------------------------------------------------

# Fails, naming the variable, when a port to publish is not a port number,
# is given twice, or is taken.
docker_check_ports() {
  local entry variable default port extra=() what
  declare -A owner=()
  [ -z "${REDIS_PORT:-}" ] || extra+=("REDIS_PORT - Redis")
  [ -z "${POSTGRES_PORT:-}" ] || extra+=("POSTGRES_PORT - PostgreSQL")
  for entry in "${docker_ports[@]}" "${extra[@]}"; do
    read -r variable default what <<<"$entry"
    [[ " ${skipped_services[*]} " != *" redisinsight "* ]] || [ "$variable" != REDISINSIGHT_PORT ] || continue
    port="${!variable:-$default}"
    if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
      fail "$variable=$port is not a port number"
    fi
    if [ -n "${owner[$port]:-}" ]; then
      fail "$variable and ${owner[$port]} are both $port; set one of them to another port"
    fi
    owner[$port]="$variable"
    require_free_port "$port" "$variable" "$what"
  done
}

# Waits until every container of the project is healthy (or, for a one-shot
# step, has exited with 0), with scripts/ready.sh's await_ready; names the
# first one that failed, with its log.
docker_wait_healthy() {
  local timeout="${READY_TIMEOUT:-300}"
  [[ "$timeout" =~ ^[0-9]+$ ]] || fail "READY_TIMEOUT=$timeout is not a number of seconds"
  printf 'waiting until every container is healthy:' >&2
  docker_pending=()
  docker_failed=()
  # A dot each check, every 2 s, on stderr.
  if ! ready_dots=1 ready_poll=2 await_ready "the containers of $COMPOSE_PROJECT_NAME" - "$timeout" - \
    docker_settled >&2; then
    fail "not healthy yet: ${docker_pending[*]} (READY_TIMEOUT sets the wait; their logs: $compose_name -p $COMPOSE_PROJECT_NAME logs)"
  fi
  [ "${#docker_failed[@]}" -eq 0 ] || docker_died "${docker_failed[@]}"
  echo " all healthy" >&2
}

# The check of docker_wait_healthy: true once every container is healthy
# (docker_pending: those that are not yet), or once one has failed
# (docker_failed: its service and what happened to it).
docker_settled() {
  local line service status health code ids=()
  docker_pending=()
  mapfile -t ids < <(docker_project_containers)
  if [ "${#ids[@]}" -eq 0 ]; then
    docker_failed=(-)
    return 0
  fi
  while read -r line; do
    read -r service status code health <<<"$line"
    case "$status/$health" in
      exited/*)
        if [ "$service" = vault-init ] && [ "$code" = 0 ]; then
          continue
        fi
        docker_failed=("$service" "exited with status $code")
        ;;
      running/ | running/healthy) ;;
      */unhealthy) docker_failed=("$service" "is unhealthy") ;;
      dead/* | removing/*) docker_failed=("$service" "is $status") ;;
      *) docker_pending+=("$service") ;;
    esac
    [ "${#docker_failed[@]}" -eq 0 ] || return 0
  done < <(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "${ids[@]}")
  [ "${#docker_pending[@]}" -eq 0 ]
}

docker_died() {
  local service="$1" why="${2:-}" id
  echo >&2
  [ "$service" != - ] || fail "no container of the project $COMPOSE_PROJECT_NAME runs"
  echo "$service $why; the last 20 lines of its log:" >&2
  id="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$service" | head -n 1)"
  docker logs --tail 20 "$id" 2>&1 | sed 's/^/  /' >&2
  echo "$(docker_stop_command) removes what was started" >&2
  exit 1
}

# How to stop this project.
docker_stop_command() {
  if [ "$COMPOSE_PROJECT_NAME" = comms ]; then
    echo "./stop.sh stop-docker"
  else
    echo "COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME ./stop.sh stop-docker"
  fi
}

docker_up() {
  case "${APP_ENV:=dev}" in
    dev | prod) export APP_ENV ;;
    *) fail "APP_ENV=$APP_ENV: it must be dev or prod" ;;
  esac
  [ $# -eq 0 ] || fail "scripts/docker.sh up takes no arguments (settings are environment variables)"
  # config/prod.toml seeds no users (a deployment has its own); this stack
  # in prod seeds a thousand, as the native one does, so that a campaign
  # has someone to email. Its browsing UIs do not run in prod.
  unset MAILDEV_INCOMING_USER MAILDEV_INCOMING_PASS
  if [ "$APP_ENV" = prod ]; then
    export SEED_USERS="${SEED_USERS:-1000}"
    skipped_services+=(redis-commander redisinsight)
  fi
  mkdir -p "$docker_logs"
  command -v docker >/dev/null 2>&1 || apt_install docker.io
  trap docker_up_failed EXIT
  docker_require_engine
  docker_require_compose install

  local running services=() service build=()
  running="$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
  docker_resolve_images
  # Before any long build. Ports held by this project's own containers are
  # not in the way.
  [ -n "$running" ] || docker_check_ports
  docker_build_standins

  for service in $(compose_services); do
    [[ " ${skipped_services[*]} " == *" $service "* ]] || services+=("$service")
  done
  # The services' images (stack.list's services); one build stage compiles
  # all of them.
  for service in "${services[@]}"; do
    [ -z "${manifest_binary[$service]:-}" ] || [ "${manifest_binary[$service]}" = - ] || build+=("$service")
  done
  local log="$docker_logs/docker-build.log" started=$SECONDS
  echo "building the services' images (the first build compiles the workspace: many minutes; log: run/logs/docker-build.log)" >&2
  if ! compose build "${build[@]}" >"$log" 2>&1; then
    echo "the build failed; the last 30 lines of run/logs/docker-build.log:" >&2
    tail -n 30 "$log" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "  built in $((SECONDS - started))s" >&2
  [ "$APP_ENV" != prod ] || docker_prod_open
  echo "starting: ${services[*]}" >&2
  if ! compose up -d --remove-orphans "${services[@]}" >"$docker_logs/docker-up.log" 2>&1; then
    echo "docker compose up failed; the last 20 lines of run/logs/docker-up.log:" >&2
    tail -n 20 "$docker_logs/docker-up.log" | sed 's/^/  /' >&2
    echo "$(docker_stop_command) removes what was started" >&2
    exit 1
  fi
  docker_wait_healthy
  trap - EXIT
  docker_print_urls
}

# When up fails before any container exists, a dockerd that it started
# is stopped again; once containers exist, all stays for a look at their
# logs, and stop-docker removes it.
docker_up_failed() {
  [ "$docker_started_engine" = 1 ] || return 0
  [ -z "$(docker_project_containers 2>/dev/null)" ] || return 0
  docker_stop_own_engine >&2
}

docker_print_urls() {
  local host="${PUBLISH_ADDRESS:-127.0.0.1}" stop campaign_port
  campaign_port="$(manifest_port_of CAMPAIGN_PORT)"
  case "$host" in 127.0.0.1 | 0.0.0.0 | "") host=localhost ;; esac
  stop="$(docker_stop_command)"
  local create="curl http://$host:$campaign_port/api/v1/campaign/create" mail=""
  local secrets="http://$host:$(manifest_port_of VAULT_PORT)/ui/   (token ${VAULT_TOKEN:-0000})"
  local commander="http://$host:$(manifest_port_of REDIS_COMMANDER_PORT)/" insight="http://$host:$(manifest_port_of REDISINSIGHT_PORT)/"
  [[ " ${skipped_services[*]} " != *" redisinsight "* ]] || insight="(left out: its image cannot be pulled here)"
  if [ "$APP_ENV" = prod ]; then
    # Every write takes the bearer token that OpenBao holds.
    create="$create, with the bearer token of secret/comms/prod/campaign-service"
    mail=", login comms and secret/comms-stack/prod's ui_password"
    secrets="http://$host:$(manifest_port_of VAULT_PORT)/   (no UI; root token in ${prod_init#"$docker_root"/})"
    commander="(off in prod)" insight="(off in prod)"
  fi
  cat <<EOF

comms is running in Docker ($APP_ENV; Compose project $COMPOSE_PROJECT_NAME, run by $compose_name)
  dashboard and API   http://$host:$campaign_port/
  emails              http://$host:$(manifest_port_of MAIL_UI_PORT)/   (SMTP on port $(manifest_port_of SMTP_PORT)$mail)
  secrets (OpenBao)   $secrets
  Redis Commander     $commander
  RedisInsight        $insight
  create a campaign   $create
  its progress        curl http://$host:$campaign_port/api/v1/campaigns
  logs                $compose_name -p $COMPOSE_PROJECT_NAME logs -f
  stop                $stop
EOF
}

# --- down ---------------------------------------------------------------------

docker_down() {
  local volumes=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -v | --volumes) volumes=(--volumes) ;;
      *) fail "unknown argument: $1 (stop-docker takes --volumes, to remove the data volumes too)" ;;
    esac
    shift
  done
  if ! docker_engine_answers; then
    rm -f "$dockerd_pidfile"
    echo "no Docker engine answers: nothing of comms runs in Docker"
    return 0
  fi
  docker_require_compose
  compose down --remove-orphans "${volumes[@]}"
  [ "${#volumes[@]}" = 0 ] || docker_prod_forget
  docker_stop_own_engine
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up)
      shift
      docker_up "$@"
      ;;
    down)
      shift
      docker_down "$@"
      ;;
    *)
      sed -n '2,30s/^# \{0,1\}//p' "$0" >&2
      exit 2
      ;;
  esac
fi

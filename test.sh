#!/usr/bin/env bash
# Runs every test of comms: unit tests, and integration tests against real
# servers (redis-server, SMTP) that the tests start themselves on free
# loopback ports, and the dashboard in headless chromium. Installs what is
# missing first. The shell helpers' tests (tests/shell/) run first.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/require.sh
require_redis
require_node_tools
require_postgres
require_faketime
require_postfix_tools
require_openssl
require_openbao
require_dkimpy
require_chromium
for shell_test in tests/shell/*.sh; do
  bash "$shell_test"
done
cargo build --workspace --bins --quiet
cargo test --workspace --quiet "$@"

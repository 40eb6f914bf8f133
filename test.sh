#!/usr/bin/env bash
# Runs every test of comms: unit tests, and integration tests against real
# servers (redis-server, SMTP) that the tests start themselves on free
# loopback ports, and the dashboard in headless chromium. Installs what is
# missing first.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/require.sh
require_redis
require_node_tools
require_postgres
require_postfix_tools
require_openssl
require_openbao
require_chromium
cargo build --workspace --bins --quiet
cargo test --workspace --quiet "$@"

#!/usr/bin/env bash
# Tests every service's HTTP API against its own OpenAPI document with
# Schemathesis (PyPI, installed into tools/schemathesis when missing):
# generated requests, valid and invalid, to every documented operation,
# with every check (`--checks all`): a run fails on any 5xx, on any answer
# that its document does not describe (the status's body must match its
# schema, errors included, `{"error": "..."}`; each event of the live
# channel its event schema), on a request valid by the document that the
# server refuses and on one invalid by it that the server takes. Its
# settings are in tests/api/schemathesis.toml; tests/api/hooks.py adds the
# serializers of the bodies that are not JSON (an import's CSV and NDJSON).
#
# The stack, on free loopback ports: a private redis-server, chaos-smtp (the
# harness's recording SMTP server) and the four debug binaries, in dev (no
# API token: writes are open), with a few users; email-service signs with
# an Ed25519 DKIM key made for the run, so that its record is served. Each service is tested in
# turn, from `http://127.0.0.1:<port>/api-docs/openapi.json`.
#
#   tests/api/schemathesis.sh               # the CI run (under a minute once built)
#   MAX_EXAMPLES=200 tests/api/schemathesis.sh
#
# Settings: MAX_EXAMPLES (test cases per operation and phase, 50), SEED
# (Schemathesis's random seed, 1; `random` for a new one each run), KEEP=1
# keeps the work directory (logs, each service's report).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
# (bench/lib.sh's settings are set here and read there, and the other way:)
# shellcheck disable=SC2034,SC2154

max_examples="${MAX_EXAMPLES:-50}"
seed="${SEED:-1}"
require_whole_numbers max_examples
require_redis
require_curl
require_schemathesis
require_openssl

echo "building the services and chaos-smtp (debug)..." >&2
cargo build --workspace --bins --quiet
bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"
for name in "${services[@]}" chaos-smtp; do
  binary="${manifest_binary[$name]:-$name}"
  [ -x "$bin_dir/$binary" ] || { echo "$bin_dir/$binary was not built" >&2; exit 1; }
done

run=schemathesis
make_workdir
rundir="$workdir"
users=50
smtp_pool=4
# On one line (a variable a line), its line breaks written \n.
dkim_pem="$(openssl genpkey -algorithm ed25519 2>/dev/null)"
service_extra_env+=("EMAIL_DKIM_PRIVATE_KEY=${dkim_pem//$'\n'/\\n}" EMAIL_DKIM_SELECTOR=schemathesis)
read -r redis_port smtp_port ports <<<"$(free_ports $((2 + ${#services[@]})))"
# shellcheck disable=SC2086 # one port each
service_ports $ports

start_redis
: >"$workdir/control"
launch chaos-smtp "$bin_dir/chaos-smtp" "$smtp_port" "$workdir/message-ids" "$workdir/control" 0
ready_or_fail chaos-smtp 30 smtp_greets "$smtp_port"
seed_users
start_other_services

seed_option=()
[ "$seed" = random ] || seed_option=(--seed "$seed")
failed=()
for name in "${services[@]}"; do
  url="http://127.0.0.1:${port[$name]}/api-docs/openapi.json"
  echo "--- $name: schemathesis run $url" >&2
  # From the work directory, where Schemathesis keeps its example database.
  if ! (cd "$workdir" && PYTHONPATH="$root/tests/api" SCHEMATHESIS_HOOKS=hooks "$comms_schemathesis" --config-file "$root/tests/api/schemathesis.toml" run "$url" \
    --checks all \
    --max-examples "$max_examples" "${seed_option[@]}" \
    --request-timeout 20 --max-failures 20 \
    --report junit --report-dir "$workdir/report-$name"); then
    failed+=("$name")
  fi
  pid_alive "${pid[$name]}" || fail "$name exited during its run"
done

if [ "${#failed[@]}" -gt 0 ]; then
  fail "Schemathesis found failures in: ${failed[*]}"
fi
echo "schemathesis: every service answers as its OpenAPI document says" >&2

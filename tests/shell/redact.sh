#!/usr/bin/env bash
# redact_url (scripts/redact.sh), which start.sh uses to print the Redis
# URL: no password ever shows, and the rest of the URL does. Run by test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/redact.sh
source scripts/redact.sh

failures=0
expect() {
  local url="$1" expected="$2" actual
  actual="$(redact_url "$url")"
  if [ "$actual" != "$expected" ]; then
    echo "redact_url '$url': got '$actual', expected '$expected'" >&2
    failures=$((failures + 1))
  fi
}

expect 'redis://:a:b@127.0.0.1:6379' 'redis://:***@127.0.0.1:6379'
expect 'redis://:p@ss:w@127.0.0.1:6379/0' 'redis://:***@127.0.0.1:6379/0'
expect 'redis://comms:s3cret@redis.example.com:6380' 'redis://comms:***@redis.example.com:6380'
expect 'redis://comms:p@ss:w@redis.example.com' 'redis://comms:***@redis.example.com'
expect 'redis://127.0.0.1:6379' 'redis://127.0.0.1:6379'
expect 'redis://localhost/2' 'redis://localhost/2'
expect 'rediss://comms:s3cret@redis.example.com:6380' 'rediss://comms:***@redis.example.com:6380'
expect 'rediss://redis.example.com:6380' 'rediss://redis.example.com:6380'
expect 'redis://secret@127.0.0.1:6379' 'redis://***@127.0.0.1:6379'

if [ "$failures" -gt 0 ]; then
  echo "tests/shell/redact.sh: $failures failed" >&2
  exit 1
fi
echo "tests/shell/redact.sh: ok"

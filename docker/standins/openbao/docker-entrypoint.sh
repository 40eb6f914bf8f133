#!/bin/sh
# The part of the upstream openbao image's entrypoint that compose.yaml
# relies on: `server …` runs bao server with the configuration directory,
# the dev root token from BAO_DEV_ROOT_TOKEN_ID and the dev listen address
# from BAO_DEV_LISTEN_ADDRESS (0.0.0.0:8200 by default); a bao subcommand
# runs as bao's; anything else runs as it is.
set -e
case "${1:-}" in
  -*) set -- bao "$@" ;;
esac
if [ "${1:-}" = server ]; then
  shift
  set -- bao server \
    -config=/openbao/config \
    -dev-root-token-id="${BAO_DEV_ROOT_TOKEN_ID:-}" \
    -dev-listen-address="${BAO_DEV_LISTEN_ADDRESS:-0.0.0.0:8200}" \
    "$@"
elif [ -n "${1:-}" ] && [ "$1" != bao ] && ! command -v "$1" >/dev/null 2>&1; then
  set -- bao "$@"
fi
exec "$@"

#!/bin/sh
# As the upstream image's entrypoint: a command line of options alone
# (`--appendonly yes`) is redis-server's. Protected mode is off, as upstream
# builds it: in a container, Redis is reached over the container's network,
# never from outside unless a port is published.
set -e
case "${1:-}" in
  -*) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    "" | -*) set -- redis-server --protected-mode no "$@" ;;
    # A configuration file comes first.
    *)
      conf="$1"
      shift
      set -- redis-server "$conf" --protected-mode no "$@"
      ;;
  esac
fi
exec "$@"

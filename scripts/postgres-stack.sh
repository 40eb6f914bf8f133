#!/usr/bin/env bash
# The native prod stack's private PostgreSQL cluster: found, made on first
# use, and given one database per service, each owned by a role of its own
# that only it logs in as. Sourced by start.sh, which sets pg_data (the
# cluster's directory) and gives the passwords: the superuser `comms`'s
# and each service's, all made at random on the first prod start and kept
# in prod's OpenBao (scripts/prod-stack.sh). scripts/docker-prod.sh gives
# the Docker stack's prod the same roles, with postgres_provision_sql.
#
#   postgres_find             sets pg_bin (Debian's server binaries) and
#                             pg_as (run as the postgres user when root)
#   postgres_make_cluster PASSWORD   initdb in pg_data unless done before
#   postgres_database_role SERVICE   the role of SERVICE's database (comms_users)
#   postgres_provision SUPERPASSWORD PORT SERVICE=PASSWORD...
#                             each service's role (its password set again,
#                             so that a changed one takes) and database
#   postgres_provision_sql SUFFIX SERVICE=PASSWORD...
#                             the SQL of that, for databases named
#                             <db>SUFFIX (the Docker stack's users_prod)

pg_bin=""
pg_as=()

postgres_find() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && pg_bin="$dir"
  done
  [ -n "$pg_bin" ] || {
    echo "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
  }
  # PostgreSQL refuses to run as root: as root, the server runs as the
  # `postgres` user of Debian's package.
  if [ "$(id -u)" = 0 ]; then
    pg_as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
}

postgres_make_cluster() {
  local password="$1" pwfile
  [ ! -f "$pg_data/PG_VERSION" ] || return 0
  echo "creating the PostgreSQL cluster in $pg_data"
  rm -rf "$pg_data"
  mkdir -p "$pg_data"
  chmod 700 "$pg_data"
  [ "${#pg_as[@]}" = 0 ] || chown postgres: "$pg_data"
  if ! "${pg_as[@]}" test -w "$pg_data"; then
    echo "the postgres user cannot reach $pg_data: every directory above it must be searchable (chmod o+x), or set POSTGRES_DATA to a directory it can reach" >&2
    exit 1
  fi
  # The password reaches initdb in a file only its user reads (never on a
  # command line; another user cannot reopen this script's stdin).
  pwfile="$(mktemp)"
  printf '%s\n' "$password" >"$pwfile"
  [ "${#pg_as[@]}" = 0 ] || chown postgres: "$pwfile"
  if ! "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_data" -U comms --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --no-locale >"$(stack_log postgres-initdb)" 2>&1; then
    rm -f "$pwfile"
    rm -rf "$pg_data"
    echo "initdb failed; see run/logs/postgres-initdb.log" >&2
    exit 1
  fi
  rm -f "$pwfile"
}

postgres_database_role() {
  echo "comms_${manifest_database[$1]}"
}

postgres_provision_sql() {
  local suffix="$1" pair service password role db
  shift
  for pair in "$@"; do
    service="${pair%%=*}"
    password="${pair#*=}"
    role="$(postgres_database_role "$service")"
    db="${manifest_database[$service]}$suffix"
    # Names come from stack.list, passwords are letters and digits
    # (prod-stack.sh makes them so): nothing here needs quoting beyond this.
    [[ "$password" =~ ^[A-Za-z0-9]+$ ]] || {
      echo "the database password of $service holds more than letters and digits" >&2
      return 1
    }
    cat <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role')\gexec
ALTER ROLE $role LOGIN PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$db', '$role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db')\gexec
ALTER DATABASE $db OWNER TO $role;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO $role;
SQL
  done
}

postgres_provision() {
  local superpassword="$1" port="$2" sql
  shift 2
  sql="$(postgres_provision_sql "" "$@")" || exit 1
  # The SQL, passwords included, goes on psql's standard input.
  printf '%s\n' "$sql" | PGPASSWORD="$superpassword" "$pg_bin/psql" -h 127.0.0.1 -p "$port" \
    -U comms -d postgres -v ON_ERROR_STOP=1 -q -f - >"$(stack_log postgres-provision)" 2>&1 || {
    echo "creating the services' databases failed; see run/logs/postgres-provision.log" >&2
    exit 1
  }
}

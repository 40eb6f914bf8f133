#!/bin/sh
# Run once by the postgres image on its first start (from
# /docker-entrypoint-initdb.d): one database per service and environment,
# <db>_<env>, owned by POSTGRES_USER. <db> is each service's database in the
# stack's manifest (stack.list, which compose.yaml mounts at STACK_LIST's
# default), the name scripts/vault-seed.sh puts in place of {db} in the
# database URL it writes for each service.
set -eu
STACK_LIST="${STACK_LIST:-/usr/local/share/comms/stack.list}"
for env in dev prod; do
  # Each service row: kind name port variable binary ready database what.
  while read -r kind _name _port _variable _binary _ready db _what <&3; do
    [ "$kind" = service ] || continue
    echo "creating database ${db}_${env}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-psqlrc \
      --set db="${db}_${env}" <<'SQL'
CREATE DATABASE :"db";
SQL
  done 3<"$STACK_LIST"
done

#!/bin/sh
# Run once by the postgres image on its first start (from
# /docker-entrypoint-initdb.d): one database per service and environment,
# <db>_<env>, owned by POSTGRES_USER. <db> is the name scripts/vault-seed.sh
# puts in place of {db} in the database URL it writes for each service.
set -eu
for env in dev prod; do
  for db in users campaigns notifications email; do
    echo "creating database ${db}_${env}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-psqlrc \
      --set db="${db}_${env}" <<'SQL'
CREATE DATABASE :"db";
SQL
  done
done

#!/bin/sh
# Creates (or updates the password of) grafana_reader, the read-only role Grafana's
# PostgreSQL datasource logs in as, then grants it reader-grants.sql. Run once per
# `docker compose up` by the grafana-db-reader service, after the app has applied its
# migrations (the grants name the app's tables). Connection from PG* variables.
set -eu
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD is not set}"
here=$(dirname "$0")
psql -v ON_ERROR_STOP=1 -v reader_password="$GRAFANA_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE grafana_reader LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader')
\gexec
ALTER ROLE grafana_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';
SQL
psql -v ON_ERROR_STOP=1 -f "$here/reader-grants.sql"
echo "grafana_reader is ready"

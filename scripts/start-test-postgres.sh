#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package) for the PostgreSQL test cases
# and prints the connection URL to export as ROUTEWEILER_TEST_POSTGRES_URL. Run as root (or as the postgres user).
#
#   export ROUTEWEILER_TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)"
#
# Environment: PGPORT_TEST (default 54329), PGDATA_TEST (default /tmp/routeweiler-pg-<port>).
set -euo pipefail
port="${PGPORT_TEST:-54329}"
data="${PGDATA_TEST:-/tmp/routeweiler-pg-$port}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
password="routeweiler-test"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! as_postgres "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
        chmod 700 "$data"
        pwfile="$(mktemp)"; echo "postgres" >"$pwfile"; [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
        as_postgres "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$pwfile" -E UTF8 >/dev/null
        rm -f "$pwfile"
    fi
    as_postgres "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=300 -c fsync=off" start >/dev/null
fi

psql_admin() { as_postgres "$bindir/psql" -h "$data" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'routeweiler'")" != 1 ]; then
    psql_admin -c "CREATE ROLE routeweiler LOGIN PASSWORD '$password'" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'routeweiler_test'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE routeweiler_test OWNER routeweiler" >/dev/null
fi
echo "postgres://routeweiler:$password@127.0.0.1:$port/routeweiler_test"

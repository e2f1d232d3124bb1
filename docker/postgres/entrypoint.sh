#!/bin/sh
# First start: a cluster in $PGDATA with the role `iai` (password IAI_DB_PASSWORD) owning the database `iai`,
# reached by password (scram-sha-256) from the compose network. Every start: the server in the foreground.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${IAI_DB_PASSWORD:-}" ]; then
        echo "iai-postgres: IAI_DB_PASSWORD is empty: set it in docker/.env (letters and digits)" >&2
        exit 1
    fi
    initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    password=$(printf '%s' "$IAI_DB_PASSWORD" | sed "s/'/''/g")
    printf "CREATE ROLE iai LOGIN PASSWORD '%s';\nCREATE DATABASE iai OWNER iai;\n" "$password" \
        | postgres --single -D "$PGDATA" postgres >/dev/null
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
max_connections = 200
CONF
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "iai-postgres: a new cluster with the database iai" >&2
fi
exec postgres -D "$PGDATA"

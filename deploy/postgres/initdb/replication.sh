#!/usr/bin/env bash
# Run once by the postgres image, on its first start with an empty volume
# (/docker-entrypoint-initdb.d): the role streaming replicas copy the primary and read its log
# as, with its password, and the pg_hba.conf line that lets it in for replication, with that
# password, from the networks the server is on. docker-compose.yml's `postgres-replica` uses it.
#
# The image may source this file rather than run it: no `set`, no `exit` on success.

: "${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD}"

# A psql variable, so that the password is quoted by psql and never spliced into SQL by hand.
psql --no-psqlrc --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" \
    --set=password="$POSTGRES_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE panoptic_replicator WITH LOGIN REPLICATION PASSWORD :'password';
SQL

# The image's own line (`host all all all scram-sha-256`) does not cover replication
# connections: those match only lines naming the `replication` database.
cat >> "$PGDATA/pg_hba.conf" <<'HBA'

# Streaming replicas (deploy/postgres/initdb/replication.sh)
host replication panoptic_replicator samenet scram-sha-256
HBA

#!/usr/bin/env bash
# The entrypoint of docker-compose.yml's `postgres-replica`. On the first start, with an empty
# volume, it copies the primary with pg_basebackup as the replication role: `-R` writes
# primary_conninfo and standby.signal, so that PostgreSQL starts as a hot standby streaming from
# the primary, and `-C -S` creates the replica's own replication slot, so that the primary keeps
# the log until the replica has it. Then, and on every later start, it runs the command given
# (PostgreSQL).
#
# The primary is PGHOST:PGPORT, the role PGUSER with POSTGRES_REPLICATION_PASSWORD (libpq's
# variables), the slot REPLICATION_SLOT; the copy goes to PGDATA (the image's).
set -euo pipefail
: "${PGDATA:?}" "${REPLICATION_SLOT:?set REPLICATION_SLOT}"
export PGPASSWORD="${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # A slot of this name left by a copy whose volume is gone would keep the primary's log for
    # a reader that never comes back, and would make `--create-slot` fail: drop it. (Dropping
    # fails harmlessly when there is none; a slot still in use is not dropped, and the copy
    # below then says why it cannot create it.)
    pg_receivewal --drop-slot --slot="$REPLICATION_SLOT" --no-password 2>/dev/null || true
    echo "replica: copying the primary at ${PGHOST:-localhost}:${PGPORT:-5432} (slot $REPLICATION_SLOT)"
    # On failure pg_basebackup removes what it wrote, so the next start copies again.
    pg_basebackup --pgdata="$PGDATA" --wal-method=stream --write-recovery-conf \
        --create-slot --slot="$REPLICATION_SLOT" --checkpoint=fast --no-password
fi
exec "$@"

#!/bin/sh
# Restore a dump made by backup.sh into the (empty or new) database DATABASE_URL.
#   usage: DATABASE_URL=postgresql://... restore.sh /backups/kades-YYYYMMDDTHHMMSSZ.dump
# With TimescaleDB the extension is created first and put in restore mode, as Timescale
# documents; on plain PostgreSQL the dump is restored as it is.
set -eu
: "${DATABASE_URL:?set DATABASE_URL}"
dump="${1:?usage: restore.sh DUMP_FILE}"
if pg_restore --list "$dump" | grep -q ' EXTENSION - timescaledb'; then
  psql --no-psqlrc -v ON_ERROR_STOP=1 "$DATABASE_URL" \
    -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' -c 'SELECT timescaledb_pre_restore()'
  list="$(mktemp)"
  pg_restore --list "$dump" | grep -v -e ' EXTENSION - timescaledb' -e 'COMMENT - EXTENSION timescaledb' > "$list"
  pg_restore --no-owner --exit-on-error --use-list="$list" --dbname="$DATABASE_URL" "$dump"
  rm -f "$list"
  psql --no-psqlrc -v ON_ERROR_STOP=1 "$DATABASE_URL" -c 'SELECT timescaledb_post_restore()'
else
  pg_restore --no-owner --exit-on-error --dbname="$DATABASE_URL" "$dump"
fi
echo "restored $dump"

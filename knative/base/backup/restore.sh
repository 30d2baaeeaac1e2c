#!/bin/sh
# Restore a dump made by backup.sh into the (empty or new) database DATABASE_URL.
#   usage: DATABASE_URL=postgresql://... restore.sh /backups/kades-YYYYMMDDTHHMMSSZ.dump
# A TimescaleDB dump is restored as Timescale documents for logical backups: the extension is
# created first, at the version the dump was made with (read from the dump's own catalogue;
# the target server must have that version installed), put in restore mode
# (timescaledb_pre_restore), the rest restored, and restore mode ended
# (timescaledb_post_restore). A plain PostgreSQL dump is restored as it is.
# Afterwards the background jobs run as on the source: retention drops what is older than its
# horizon at once, as the source would have within the day.
set -eu
: "${DATABASE_URL:?set DATABASE_URL}"
dump="${1:?usage: restore.sh DUMP_FILE}"
sql() { psql --no-psqlrc -v ON_ERROR_STOP=1 --quiet --tuples-only --no-align "$DATABASE_URL" "$@"; }
if pg_restore --list "$dump" | grep -q ' EXTENSION - timescaledb'; then
  version="$(pg_restore --data-only --schema=_timescaledb_catalog --table=metadata --file=- "$dump" |
             awk -F '\t' '$1 == "timescaledb_version" { print $2 }')"
  if [ -z "$version" ]; then
    echo "restore.sh: $dump holds TimescaleDB but names no version" >&2; exit 1
  fi
  if [ -z "$(sql -c "SELECT 1 FROM pg_available_extension_versions
                      WHERE name = 'timescaledb' AND version = '$version'")" ]; then
    echo "restore.sh: the dump was made with TimescaleDB $version, which this server does not" \
         "have; install that version first (a restore needs the same version)" >&2; exit 1
  fi
  sql -c "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION '$version'"
  installed="$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")"
  if [ "$installed" != "$version" ]; then
    echo "restore.sh: the target has TimescaleDB $installed, the dump $version" >&2; exit 1
  fi
  sql -c 'SELECT timescaledb_pre_restore()' > /dev/null
  list="$(mktemp)"
  pg_restore --list "$dump" | grep -v -e ' EXTENSION - timescaledb' -e 'COMMENT - EXTENSION timescaledb' > "$list"
  pg_restore --no-owner --exit-on-error --use-list="$list" --dbname="$DATABASE_URL" "$dump"
  rm -f "$list"
  sql -c 'SELECT timescaledb_post_restore()' > /dev/null
  echo "restored $dump (TimescaleDB $version)"
else
  pg_restore --no-owner --exit-on-error --dbname="$DATABASE_URL" "$dump"
  echo "restored $dump"
fi

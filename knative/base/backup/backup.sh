#!/bin/sh
# Dump the KADES database in pg_dump's custom format and keep KEEP_DAYS days of dumps.
#   DATABASE_URL  libpq URL of the database          BACKUP_DIR  where dumps go
#   KEEP_DAYS     dumps older than this are deleted (default 7)
set -eu
: "${DATABASE_URL:?set DATABASE_URL}" "${BACKUP_DIR:?set BACKUP_DIR}"
keep_days="${KEEP_DAYS:-7}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$BACKUP_DIR/kades-$stamp.dump"
pg_dump --format=custom --no-owner --file="$target.partial" "$DATABASE_URL"
mv "$target.partial" "$target"   # a dump only counts once it is complete
pg_restore --list "$target" > /dev/null   # fail now, not on the day of the restore
find "$BACKUP_DIR" -maxdepth 1 -name 'kades-*.dump' -mtime +"$((keep_days - 1))" -print -delete
echo "backup written: $target"

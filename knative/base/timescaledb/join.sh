#!/bin/sh
# Init container of each TimescaleDB pod: the pod starts as the primary, or as a standby of
# the pod that is the primary now; never as a second primary beside it.
#
# Another pod answers as a primary (not in recovery):
#   - no data here: clone it (pg_basebackup -R writes standby.signal and primary_conninfo);
#   - a standby's data: follow it (primary_conninfo's host set to it);
#   - a primary's data on an older timeline (this pod was the primary, and another was
#     promoted while it was down): it may hold writes the new primary never got, so it
#     cannot stream from it. It is moved aside (PGDATA.demoted-<time>, on the same volume,
#     for an operator to read and delete) and the primary cloned;
#   - a primary's data on a timeline as new or newer (the other is the stale one: this pod
#     was promoted, and the old primary started first after a whole restart): fail, keeping
#     both, for an operator to decide (docs/operations.md, "TimescaleDB failover").
# No pod answers as a primary:
#   - data here: start as it was (a whole restart: the primary comes back as the primary);
#   - no data, first peer (pod 0), and no other pod answering at all: the entrypoint's
#     initdb makes a new primary (the first start);
#   - otherwise (no data on another pod, a standby answering: a database exists, or the file
#     FOLLOW_ONLY beside PGDATA, an operator's "this pod must follow, never lead", which a
#     rejoin also leaves until its clone is done): fail, and the kubelet runs this again
#     until a primary answers. The file is removed once the pod has cloned one.
# A pod that does not answer counts as no primary: one that is down, or a primary still in
# crash recovery (docs/operations.md, "TimescaleDB failover").
set -eu

: "${PGDATA:?}" "${PGPASSWORD:?}"
# Every pod of the StatefulSet, host[:port] (the headless Service names them), and this one.
PEERS="${TIMESCALEDB_PEERS:-timescaledb-0.timescaledb timescaledb-1.timescaledb timescaledb-2.timescaledb}"
SELF="${TIMESCALEDB_SELF:-${HOSTNAME}.timescaledb}"
FOLLOW_ONLY="$(dirname "$PGDATA")/follow-only"

host_of() { echo "${1%%:*}"; }
port_of() { case "$1" in *:*) echo "${1##*:}" ;; *) echo 5432 ;; esac; }

primary=""
answered=""
for peer in $PEERS; do
  [ "$peer" = "$SELF" ] && continue
  recovering=$(psql "host=$(host_of "$peer") port=$(port_of "$peer") user=postgres dbname=postgres connect_timeout=3" \
    -tAc "SELECT pg_is_in_recovery()" 2>/dev/null) || continue
  answered="$peer"
  if [ "$recovering" = f ]; then
    primary="$peer"
    break
  fi
done

clone() {
  # into a directory beside PGDATA, moved into place once whole: a clone cut short (the
  # pod deleted mid-way) leaves no half a database that looks like one
  echo "cloning the primary ${primary}"
  rm -rf "${PGDATA}.cloning"
  pg_basebackup -h "$(host_of "$primary")" -p "$(port_of "$primary")" -U postgres \
    -D "${PGDATA}.cloning" -R -X stream
  if [ -e "$PGDATA" ] && ! rmdir "$PGDATA" 2>/dev/null; then
    echo "${PGDATA} holds files but no database (no PG_VERSION): move it away" >&2
    exit 1
  fi
  mv "${PGDATA}.cloning" "$PGDATA"
  rm -f "$FOLLOW_ONLY"
}

if [ -n "$primary" ]; then
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    clone
  elif [ -f "$PGDATA/standby.signal" ]; then
    echo "a standby: following the primary ${primary}"
    sed -i "/^primary_conninfo/ { s/\([ ']\)host=[^ ']*/\1host=$(host_of "$primary")/;
      s/\([ ']\)port=[0-9]*/\1port=$(port_of "$primary")/; }" "$PGDATA/postgresql.auto.conf"
  else
    ours=$(pg_controldata "$PGDATA" | awk -F: '/Latest checkpoint.s TimeLineID/ { print $2 + 0 }')
    # the peer's current timeline: its WAL file names begin with it (8 hex digits)
    theirs=$(printf '%d' "0x$(psql "host=$(host_of "$primary") port=$(port_of "$primary") user=postgres dbname=postgres connect_timeout=3" \
      -tAc "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")")
    if [ -z "$ours" ] || [ -z "$theirs" ]; then
      echo "could not read the timelines (this pod's '${ours}', ${primary}'s '${theirs}')" >&2
      exit 1
    fi
    if [ "$ours" -ge "$theirs" ]; then
      echo "two primaries: this pod's timeline ${ours} is not older than ${primary}'s" \
        "${theirs}; not starting (docs/operations.md, TimescaleDB failover)" >&2
      exit 1
    fi
    aside="${PGDATA}.demoted-$(date +%s)"
    echo "this pod's data is a primary's, but ${primary} is the primary now: moved to ${aside}"
    [ -f "$FOLLOW_ONLY" ] || touch "$FOLLOW_ONLY"  # until the clone is whole: never a primary
    mv "$PGDATA" "$aside"
    clone
  fi
elif [ -f "$FOLLOW_ONLY" ] || { [ ! -s "$PGDATA/PG_VERSION" ] && {
        [ -n "$answered" ] || [ "$SELF" != "$(set -- $PEERS; echo "$1")" ]; }; }; then
  echo "no primary answers, and this pod may not start as one (no data${answered:+ while ${answered} answers as a standby}, or ${FOLLOW_ONLY}):" \
    "trying again" >&2
  exit 1
else
  echo "no other pod answers as a primary: starting as this pod's data is"
fi

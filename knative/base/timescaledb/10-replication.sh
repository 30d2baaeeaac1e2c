#!/bin/sh
# Runs once, at initdb of the primary: standbys (pod 1..) may stream WAL with the
# postgres password (the entrypoint's "host all all all" line does not cover replication).
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

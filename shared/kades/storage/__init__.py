"""Storage of metrics, anomalies and risk scores in PostgreSQL (TimescaleDB where available).

- `kades.storage.migrate`: `migrate(database_url)` creates the schema from the SQL files in
  `migrations/`; `main_migrate(argv)` is `kades migrate`.
- `kades.storage.repository`: reads and writes, plain functions over a psycopg connection.

Nothing is re-exported here, so `kades.storage.migrate` always names the module.
"""

-- 0006 TimescaleDB for temporal_scores (see 0002): a hypertable kept 90 days, compressed
-- per token after 7 days. Applied only where the timescaledb extension can be loaded.

CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('temporal_scores', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT add_retention_policy('temporal_scores', INTERVAL '90 days', if_not_exists => TRUE);
ALTER TABLE temporal_scores SET (timescaledb.compress, timescaledb.compress_segmentby = 'token',
                                 timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('temporal_scores', INTERVAL '7 days', if_not_exists => TRUE);

-- 0002 TimescaleDB: hypertables, retention, compression and the daily continuous aggregate.
-- Applied only where the timescaledb extension can be loaded; on plain PostgreSQL the runner
-- leaves it pending and applies it once the extension becomes available (existing rows are
-- moved into chunks by migrate_data). Everything runs in one transaction, so the continuous
-- aggregate is created WITH NO DATA and filled by its refresh policy.

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('token_metrics', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('anomaly_events', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('risk_scores', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);

SELECT add_retention_policy('token_metrics', INTERVAL '90 days', if_not_exists => TRUE);
SELECT add_retention_policy('anomaly_events', INTERVAL '90 days', if_not_exists => TRUE);
SELECT add_retention_policy('risk_scores', INTERVAL '90 days', if_not_exists => TRUE);

-- Compressed chunks still honour the unique keys (ON CONFLICT DO NOTHING needs
-- TimescaleDB >= 2.11 there); chunks are compressed once a redelivery is unlikely.
ALTER TABLE token_metrics SET (timescaledb.compress, timescaledb.compress_segmentby = 'token',
                               timescaledb.compress_orderby = 'time DESC');
ALTER TABLE anomaly_events SET (timescaledb.compress, timescaledb.compress_segmentby = 'token',
                                timescaledb.compress_orderby = 'time DESC, id DESC');
ALTER TABLE risk_scores SET (timescaledb.compress, timescaledb.compress_segmentby = 'token',
                             timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('token_metrics', INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_compression_policy('anomaly_events', INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_compression_policy('risk_scores', INTERVAL '7 days', if_not_exists => TRUE);

-- Same name and columns as the plain view of 0001.
DROP VIEW IF EXISTS token_metrics_daily;
CREATE MATERIALIZED VIEW token_metrics_daily WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 day', time)   AS bucket,
       token,
       first(price, time)                    AS open,
       max(price)                            AS high,
       min(price)                            AS low,
       last(price, time)                     AS close,
       sum(volume)                           AS volume,
       avg(liquidity)                        AS avg_liquidity
FROM token_metrics
GROUP BY time_bucket(INTERVAL '1 day', time), token
WITH NO DATA;
ALTER MATERIALIZED VIEW token_metrics_daily SET (timescaledb.materialized_only = false);
SELECT add_continuous_aggregate_policy('token_metrics_daily',
                                       start_offset => INTERVAL '3 days',
                                       end_offset => INTERVAL '1 hour',
                                       schedule_interval => INTERVAL '1 hour',
                                       if_not_exists => TRUE);

-- 0007 TimescaleDB in either edition: the time-series tables become hypertables.
-- On the community edition 0002 and 0006 did this already, with their policies (if_not_exists
-- makes this a no-op there); on the Apache-2 edition those files stay pending, because
-- retention, compression and continuous aggregates need the Timescale License, and this file
-- gives the hypertables alone. Existing rows move into chunks (migrate_data).

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('token_metrics', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('anomaly_events', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('risk_scores', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('temporal_scores', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);

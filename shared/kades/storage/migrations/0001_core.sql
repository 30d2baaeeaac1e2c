-- 0001 core tables: plain PostgreSQL, so they work with or without TimescaleDB.
-- Every unique key includes `time`, as a TimescaleDB hypertable requires (0002 converts them).
-- Every unique key also includes the event's (source, id): a redelivered event inserts nothing.

CREATE TABLE token_metrics (
    time        timestamptz      NOT NULL,
    token       text             NOT NULL,
    source      text             NOT NULL,   -- which feed measured it (e.g. 'raydium', 'jupiter')
    price       double precision,
    volume      double precision,
    liquidity   double precision,
    event_source text            NOT NULL DEFAULT '',
    event_id    text             NOT NULL DEFAULT '',
    PRIMARY KEY (token, time, source)
);
CREATE INDEX token_metrics_token_time_idx ON token_metrics (token, time DESC);

CREATE TABLE anomaly_events (
    id           bigint GENERATED ALWAYS AS IDENTITY,  -- tie-break for keyset pagination
    time         timestamptz      NOT NULL,
    token        text             NOT NULL,
    anomaly_type text             NOT NULL,
    score        double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    severity     text,
    detector     text             NOT NULL,
    details      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    event_source text             NOT NULL,
    event_id     text             NOT NULL,
    -- tells apart several anomalies of one type and token raised by one event
    -- (e.g. the wallet or the transaction signature); '' when there is only one
    anomaly_key  text             NOT NULL DEFAULT '',
    UNIQUE (time, token, anomaly_type, event_source, event_id, anomaly_key)
);
CREATE INDEX anomaly_events_time_idx ON anomaly_events (time DESC, id DESC);
CREATE INDEX anomaly_events_token_time_idx ON anomaly_events (token, time DESC, id DESC);
CREATE INDEX anomaly_events_type_time_idx ON anomaly_events (anomaly_type, time DESC, id DESC);
CREATE INDEX anomaly_events_score_idx ON anomaly_events (score DESC, time DESC);

CREATE TABLE risk_scores (
    time         timestamptz      NOT NULL,
    token        text             NOT NULL,
    score        double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    level        text             NOT NULL CHECK (level IN ('low', 'medium', 'high', 'critical')),
    components   jsonb            NOT NULL DEFAULT '{}'::jsonb,
    explanation  jsonb            NOT NULL DEFAULT '[]'::jsonb,
    event_source text             NOT NULL,
    event_id     text             NOT NULL,
    UNIQUE (time, token, event_source, event_id)
);
CREATE INDEX risk_scores_token_time_idx ON risk_scores (token, time DESC);

-- Daily candles per token. A plain view here; 0002 replaces it with a TimescaleDB continuous
-- aggregate of the same name and columns, so queries work the same everywhere.
CREATE VIEW token_metrics_daily AS
SELECT date_trunc('day', time, 'UTC') AS bucket,
       token,
       (array_agg(price ORDER BY time ASC) FILTER (WHERE price IS NOT NULL))[1] AS open,
       max(price) AS high,
       min(price) AS low,
       (array_agg(price ORDER BY time DESC) FILTER (WHERE price IS NOT NULL))[1] AS close,
       sum(volume) AS volume,
       avg(liquidity) AS avg_liquidity
FROM token_metrics
GROUP BY 1, token;

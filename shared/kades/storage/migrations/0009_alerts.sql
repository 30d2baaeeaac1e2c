-- 0009 the alerts risk-scoring raised, as alert-dispatch received them, so that the API can
-- show recent alerts (the dashboard on load) after the 5-minute Redis stream has moved on.
-- A plain table on every edition: alerts come on changes of level, a few per token a day,
-- so chunking would buy nothing. The unique key holds `time`, as elsewhere, and the event's
-- (source, id): a redelivered alert inserts nothing.

CREATE TABLE alerts (
    id           bigint GENERATED ALWAYS AS IDENTITY,  -- tie-break for keyset pagination
    time         timestamptz      NOT NULL,   -- the time of the risk score that raised it
    token        text             NOT NULL,
    kind         text             NOT NULL CHECK (kind IN ('raised', 'escalated', 'cleared')),
    level        text             NOT NULL CHECK (level IN ('low', 'medium', 'high', 'critical')),
    score        double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    data         jsonb            NOT NULL,   -- the alert event's data, whole
    event_source text             NOT NULL,
    event_id     text             NOT NULL,
    UNIQUE (time, token, event_source, event_id)
);
CREATE INDEX alerts_time_idx ON alerts (time DESC, id DESC);
CREATE INDEX alerts_token_time_idx ON alerts (token, time DESC, id DESC);

-- Retention: what 0008's function removes, and old alerts (a plain table: rows deleted).
ALTER FUNCTION kades_apply_retention(interval) RENAME TO kades_apply_retention_0008;
CREATE FUNCTION kades_apply_retention(keep interval DEFAULT INTERVAL '90 days')
RETURNS TABLE (table_name text, removed bigint, unit text)
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM alerts WHERE time < now() - keep RETURNING 1)
    SELECT * FROM kades_apply_retention_0008(keep)
    UNION ALL
    SELECT 'alerts'::text, count(*), 'rows'::text FROM gone
$$;

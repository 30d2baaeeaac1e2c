-- 0013 An index led by the column retention deletes by, on every table it deletes rows from
-- (kades_apply_retention: 0008, 0009, 0011). On plain PostgreSQL token_metrics and
-- temporal_scores had their keys led by the token, so every hourly `kades retention` read
-- the whole of the largest tables (a row per token and second) to find what was old. A
-- hypertable has its own time index (create_hypertable's default), and its chunks are
-- dropped, not scanned: a table that has an index led by `time` gets none more. Settled
-- webhook deliveries are found by when they were last touched.

DO $$
DECLARE
    target text;
BEGIN
    FOREACH target IN ARRAY ARRAY['token_metrics', 'temporal_scores', 'anomaly_events',
                                  'risk_scores', 'alerts'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_index i
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = target::regclass AND a.attname = 'time') THEN
            EXECUTE format('CREATE INDEX %I ON %I ("time")', target || '_retention_idx', target);
        END IF;
    END LOOP;
END
$$;

CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (updated_at)
    WHERE status <> 'pending';

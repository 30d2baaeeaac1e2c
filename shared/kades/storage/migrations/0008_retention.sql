-- 0008 Retention wherever TimescaleDB's policies cannot run (plain PostgreSQL, the Apache-2
-- edition): `SELECT * FROM kades_apply_retention()` removes what is older than the horizon,
-- whole chunks with drop_chunks on a hypertable, a DELETE on a plain table. The CronJob
-- `kades-retention` (knative/base/520-retention.yaml) runs it as `kades retention` every hour;
-- on the community edition the retention policies of 0002/0006 do the same (90 days), and
-- running it there as well is harmless.

CREATE OR REPLACE FUNCTION kades_apply_retention(keep interval DEFAULT INTERVAL '90 days')
RETURNS TABLE (table_name text, removed bigint, unit text)
LANGUAGE plpgsql AS $$
DECLARE
    target text;
    is_hypertable boolean;
BEGIN
    FOREACH target IN ARRAY ARRAY['token_metrics', 'anomaly_events', 'risk_scores',
                                  'temporal_scores'] LOOP
        is_hypertable := to_regclass('timescaledb_information.hypertables') IS NOT NULL;
        IF is_hypertable THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables'
                    ' WHERE hypertable_schema = current_schema() AND hypertable_name = $1)'
              INTO is_hypertable USING target;
        END IF;
        table_name := target;
        IF is_hypertable THEN
            EXECUTE 'SELECT count(*) FROM drop_chunks($1::regclass, older_than => now() - $2)'
              INTO removed USING target, keep;
            unit := 'chunks';
        ELSE
            EXECUTE format('DELETE FROM %I WHERE time < now() - $1', target) USING keep;
            GET DIAGNOSTICS removed = ROW_COUNT;
            unit := 'rows';
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

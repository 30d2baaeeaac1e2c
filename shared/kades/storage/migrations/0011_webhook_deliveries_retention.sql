-- 0011 Retention of webhook deliveries: a row per webhook and alert, kept until now for
-- ever (a webhook on every alert of a busy deployment added rows without end). A delivery
-- that is settled (delivered or dead) and was last touched before the horizon is deleted
-- with the alerts of that age (0009); a pending one is still being retried and stays.

ALTER FUNCTION kades_apply_retention(interval) RENAME TO kades_apply_retention_0009;
CREATE FUNCTION kades_apply_retention(keep interval DEFAULT INTERVAL '90 days')
RETURNS TABLE (table_name text, removed bigint, unit text)
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM webhook_deliveries
                  WHERE status <> 'pending' AND updated_at < now() - keep RETURNING 1)
    SELECT * FROM kades_apply_retention_0009(keep)
    UNION ALL
    SELECT 'webhook_deliveries'::text, count(*), 'rows'::text FROM gone
$$;

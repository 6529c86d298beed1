-- platform_health pipeline: metrics from the run history (dp_meta) into
-- marts.platform_health_metrics, one row per metric, dimension and time.
CREATE OR REPLACE TABLE marts.platform_health_metrics AS
WITH runs AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY recorded_at DESC, CASE WHEN state = 'running' THEN 0 ELSE 1 END DESC) AS rn
        FROM dp_meta.pipeline_runs
    ) WHERE rn = 1
), last_runs AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY pipeline ORDER BY started_at DESC) AS rn2 FROM runs WHERE state <> 'running'
    ) WHERE rn2 = 1
), tries AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id, task, try_number ORDER BY recorded_at DESC) AS rn FROM dp_meta.task_runs
    ) WHERE rn = 1
)
SELECT now() AS metric_time, 'pipeline_last_status' AS metric, pipeline AS dimension, CASE WHEN state = 'success' THEN 1.0 ELSE 0.0 END AS value FROM last_runs
UNION ALL
SELECT now(), 'pipeline_last_duration_seconds', pipeline, CAST(duration_ms AS DOUBLE) / 1000.0 FROM last_runs
UNION ALL
SELECT now(), 'task_failures_24h', pipeline, CAST(count(*) AS DOUBLE) FROM tries WHERE state = 'failed' AND started_at > now() - INTERVAL '24 hours' GROUP BY pipeline;

-- migrate: no-transaction (TimescaleDB creates continuous aggregates outside transactions)
-- Hourly vitals per resident; the same name and columns as the rollup table
-- that ingest maintains on plain PostgreSQL. Real-time: unmaterialised recent
-- hours are computed on read.
CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT resident_id,
       time_bucket(INTERVAL '1 hour', time) AS bucket,
       count(*) AS readings,
       count(hr) AS hr_n, coalesce(sum(hr), 0)::bigint AS hr_sum, min(hr) AS hr_min, max(hr) AS hr_max,
       count(spo2) AS spo2_n, coalesce(sum(spo2), 0)::bigint AS spo2_sum,
       min(spo2) AS spo2_min, max(spo2) AS spo2_max,
       count(bp_sys) AS sys_n, coalesce(sum(bp_sys), 0)::bigint AS sys_sum,
       min(bp_sys) AS sys_min, max(bp_sys) AS sys_max,
       count(bp_dia) AS dia_n, coalesce(sum(bp_dia), 0)::bigint AS dia_sum,
       min(bp_dia) AS dia_min, max(bp_dia) AS dia_max,
       count(skin_temp_c) AS temp_n, coalesce(sum(skin_temp_c), 0)::double precision AS temp_sum,
       min(skin_temp_c) AS temp_min, max(skin_temp_c) AS temp_max,
       max(steps) AS steps_max
FROM telemetry
WHERE resident_id IS NOT NULL
GROUP BY resident_id, time_bucket(INTERVAL '1 hour', time)
WITH NO DATA;

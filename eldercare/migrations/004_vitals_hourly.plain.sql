-- Hourly vitals per resident, maintained by ingest in each batch's
-- transaction. Same name and columns as the TimescaleDB continuous aggregate.
CREATE TABLE IF NOT EXISTS vitals_hourly (
    resident_id bigint NOT NULL,
    bucket      timestamptz NOT NULL,
    readings    bigint NOT NULL,
    hr_n        bigint NOT NULL, hr_sum   bigint NOT NULL, hr_min   smallint, hr_max   smallint,
    spo2_n      bigint NOT NULL, spo2_sum bigint NOT NULL, spo2_min smallint, spo2_max smallint,
    sys_n       bigint NOT NULL, sys_sum  bigint NOT NULL, sys_min  smallint, sys_max  smallint,
    dia_n       bigint NOT NULL, dia_sum  bigint NOT NULL, dia_min  smallint, dia_max  smallint,
    temp_n      bigint NOT NULL, temp_sum double precision NOT NULL, temp_min real, temp_max real,
    steps_max   integer,
    PRIMARY KEY (resident_id, bucket)
) WITH (fillfactor = 70);  -- updated by every batch: leave room for HOT updates

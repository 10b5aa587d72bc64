-- Telemetry on plain PostgreSQL: one wide row per reading, declaratively
-- partitioned by day. The service creates partitions ahead (and on demand for
-- late readings) and drops those past retention.
CREATE TABLE IF NOT EXISTS telemetry (
    time        timestamptz NOT NULL,
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    resident_id bigint,
    hr          smallint,
    spo2        smallint,
    bp_sys      smallint,
    bp_dia      smallint,
    skin_temp_c real,
    steps       integer,
    battery_pct smallint,
    worn        boolean,
    lat         double precision,
    lon         double precision,
    loc_acc_m   real,
    loc_src     text,
    extra       jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, time, seq)
) PARTITION BY RANGE (time);
CREATE INDEX IF NOT EXISTS telemetry_resident_time ON telemetry (resident_id, time DESC);

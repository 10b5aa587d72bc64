-- Telemetry on TimescaleDB: a hypertable with daily chunks, compressed by
-- device after a configurable age (policies are set by the service from
-- Settings), and a continuous aggregate of hourly vitals per resident.
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
);
SELECT create_hypertable('telemetry', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => true);
CREATE INDEX IF NOT EXISTS telemetry_resident_time ON telemetry (resident_id, time DESC);
ALTER TABLE telemetry SET (timescaledb.compress,
                           timescaledb.compress_segmentby = 'device_id',
                           timescaledb.compress_orderby = 'time DESC, seq');

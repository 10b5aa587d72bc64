-- What ingest keeps besides telemetry: device events, accelerometer windows,
-- the per-device latest state, and rejected messages.
CREATE TABLE IF NOT EXISTS device_events (
    time        timestamptz NOT NULL,
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    resident_id bigint,
    type        text NOT NULL,
    lat         double precision,
    lon         double precision,
    loc_acc_m   real,
    loc_src     text,
    data        jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, time, seq)
);
CREATE INDEX IF NOT EXISTS device_events_resident_time ON device_events (resident_id, time DESC);

CREATE TABLE IF NOT EXISTS imu_windows (
    time        timestamptz NOT NULL,              -- first sample
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    resident_id bigint,
    trigger     text,
    t_ms        integer[] NOT NULL,
    ax          real[] NOT NULL,
    ay          real[] NOT NULL,
    az          real[] NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, time, seq)
);

-- Kept current in the same transaction as each batch, so a family's status
-- view reads one row and never scans telemetry. Each group of fields carries
-- the device time it was measured at, so late (store-and-forward) readings
-- never overwrite newer ones.
CREATE TABLE IF NOT EXISTS device_state (
    device_id   text PRIMARY KEY,
    resident_id bigint,
    last_seen   timestamptz NOT NULL,
    last_seq    bigint,
    online      boolean,
    status_at   timestamptz,
    interval_s  integer,
    firmware    text,
    vitals_at   timestamptz,
    hr          smallint,
    spo2        smallint,
    bp_sys      smallint,
    bp_dia      smallint,
    skin_temp_c real,
    steps_at    timestamptz,
    steps       integer,
    battery_at  timestamptz,
    battery_pct smallint,
    charging    boolean,
    worn_at     timestamptz,
    worn        boolean,
    loc_at      timestamptz,
    lat         double precision,
    lon         double precision,
    loc_acc_m   real,
    loc_src     text,
    updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);  -- room on each page for HOT updates: every batch rewrites these rows
CREATE INDEX IF NOT EXISTS device_state_resident ON device_state (resident_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, received_at DESC);

-- Daily per-resident summaries for the alert engine's personal baselines
-- (alerts/daily_summary.py): each complete local day's telemetry is read once,
-- instead of the last 7 days of raw telemetry at every hourly reload. Plain
-- tables on both storage paths (on TimescaleDB too: written once a day, read
-- once an hour, a few rows per resident and day).

-- Histogram of each vital sign per resident, local day and part of the day.
CREATE TABLE IF NOT EXISTS resident_daily_vitals (
    resident_id bigint NOT NULL,
    day         date NOT NULL,      -- local day, in daily_summary_days.tz
    waking      boolean NOT NULL,   -- waking hours (07:00-22:00 local) or night
    param       text NOT NULL,      -- hr, spo2, sbp, temp (wrist skin)
    value       real NOT NULL,
    n           integer NOT NULL,
    PRIMARY KEY (resident_id, day, waking, param, value)
);
CREATE INDEX IF NOT EXISTS resident_daily_vitals_day ON resident_daily_vitals (day);

-- Movement (new steps) per resident and local day: for the inactivity routine.
CREATE TABLE IF NOT EXISTS resident_daily_activity (
    resident_id     bigint NOT NULL,
    day             date NOT NULL,
    first_move_at   timestamptz NOT NULL,
    last_move_at    timestamptz NOT NULL,
    longest_still_s real NOT NULL,  -- longest waking-hours stretch between two movements that day
    PRIMARY KEY (resident_id, day)
);
CREATE INDEX IF NOT EXISTS resident_daily_activity_day ON resident_daily_activity (day);

-- Which days are summarised (all residents at once), in which time zone, when.
CREATE TABLE IF NOT EXISTS daily_summary_days (
    day           date PRIMARY KEY,
    tz            text NOT NULL,
    summarised_at timestamptz NOT NULL,
    residents     integer NOT NULL
);

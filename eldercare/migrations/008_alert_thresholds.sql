-- Per-resident alert thresholds a clinician overrides (alerts/thresholds.py gives the
-- JSON form and validates it). One current row per resident; every change is also
-- appended to the history with who set it and when. The engine reloads the current
-- rows with the profiles (every 30 s), so a change applies without a restart.
CREATE TABLE IF NOT EXISTS resident_alert_thresholds (
    resident_id bigint PRIMARY KEY REFERENCES residents (resident_id) ON DELETE CASCADE,
    overrides   jsonb NOT NULL CHECK (jsonb_typeof(overrides) = 'object'),
    set_by      text NOT NULL CHECK (length(set_by) BETWEEN 1 AND 200),
    set_at      timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS resident_alert_threshold_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id bigint NOT NULL REFERENCES residents (resident_id) ON DELETE CASCADE,
    overrides   jsonb,                     -- NULL: the overrides were removed
    set_by      text NOT NULL CHECK (length(set_by) BETWEEN 1 AND 200),
    set_at      timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS resident_alert_threshold_changes_by_resident
    ON resident_alert_threshold_changes (resident_id, set_at DESC);

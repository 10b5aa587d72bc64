-- Alerts: the lifecycle of what the detectors raised, and every transition with who and when.
-- One alert per resident and type may be open (not closed) at a time: the partial unique
-- index alerts_one_open makes a repeat an update (INSERT ... ON CONFLICT), even when two
-- engine processes race.
CREATE TABLE IF NOT EXISTS alerts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id   bigint NOT NULL REFERENCES residents (resident_id),
    device_id     text,
    type          text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    state         text NOT NULL DEFAULT 'open' CHECK (state IN (
        'open', 'acknowledged', 'dispatched', 'resolved', 'false_alarm', 'auto_cleared')),
    outcome       text CHECK (outcome IN ('actionable', 'false', 'technical')),
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    detail        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    repeat_count  integer NOT NULL DEFAULT 1 CHECK (repeat_count >= 1),
    CONSTRAINT alerts_closed_iff_final CHECK (
        (state IN ('resolved', 'false_alarm', 'auto_cleared')) = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open
    ON alerts (resident_id, type) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_open_by_time ON alerts (opened_at) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_by_resident ON alerts (resident_id, opened_at DESC);

CREATE TABLE IF NOT EXISTS alert_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    from_state  text,                    -- NULL: the alert was raised
    to_state    text NOT NULL,
    actor       text NOT NULL,           -- 'engine', 'operator:<id>', 'escalation'
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alert_transitions_by_alert ON alert_transitions (alert_id, at);

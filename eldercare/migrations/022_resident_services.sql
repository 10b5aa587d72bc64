-- A resident's standing services: meal delivery on weekdays at 11:00-12:30, a bath every
-- Wednesday afternoon. The recurring run (dispatch/day.py, make_recurring) books each
-- day's visits from them, in the city's local time; weekdays 0 = Monday.
CREATE TABLE IF NOT EXISTS resident_services (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id   bigint NOT NULL REFERENCES residents (resident_id),
    service_type  text NOT NULL REFERENCES service_types (code),
    weekdays      smallint[] NOT NULL
                  CHECK (cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ '{0,1,2,3,4,5,6}'),
    window_start  time NOT NULL,
    window_end    time NOT NULL CHECK (window_end > window_start),
    starts_on     date NOT NULL,
    ends_on       date CHECK (ends_on IS NULL OR ends_on >= starts_on - 1),
    notes         text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS resident_services_by_resident ON resident_services (resident_id);

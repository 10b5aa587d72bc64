-- Dispatch: service workers, the service catalogue, work orders and every change to them.
-- Double booking is impossible by construction: an exclusion constraint forbids two live
-- orders of one worker whose booked intervals overlap, and an order changes state only by
-- an UPDATE guarded by its current state (two dispatchers cannot both win; see dispatch/store.py).
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE IF NOT EXISTS service_types (
    code           text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,39}$'),
    name           text NOT NULL,
    duration_min   integer NOT NULL CHECK (duration_min BETWEEN 1 AND 720),
    skills         text[] NOT NULL DEFAULT '{}',
    interruptible  boolean NOT NULL DEFAULT false,
    emergency      boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS service_workers (
    worker_id      text PRIMARY KEY CHECK (worker_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name           text NOT NULL,
    district       text NOT NULL DEFAULT '',
    skills         text[] NOT NULL DEFAULT '{}',
    certificates   text[] NOT NULL DEFAULT '{}',
    mode           text NOT NULL DEFAULT 'ebike' CHECK (mode IN ('walk', 'bike', 'ebike', 'car')),
    home_lat       double precision NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lon       double precision NOT NULL CHECK (home_lon BETWEEN -180 AND 180),
    max_orders_per_day integer NOT NULL DEFAULT 10 CHECK (max_orders_per_day BETWEEN 0 AND 100),
    status         text NOT NULL DEFAULT 'off_shift'
                   CHECK (status IN ('available', 'en_route', 'on_site', 'off_shift')),
    lat            double precision CHECK (lat BETWEEN -90 AND 90),
    lon            double precision CHECK (lon BETWEEN -180 AND 180),
    location_at    timestamptz,
    status_at      timestamptz NOT NULL DEFAULT now(),
    active         boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS service_workers_district ON service_workers (district) WHERE active;

CREATE TABLE IF NOT EXISTS worker_shifts (
    worker_id      text NOT NULL REFERENCES service_workers (worker_id) ON DELETE CASCADE,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    EXCLUDE USING gist (worker_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
);

CREATE TABLE IF NOT EXISTS work_orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('emergency', 'booked', 'recurring')),
    resident_id      bigint NOT NULL REFERENCES residents (resident_id),
    service_type     text NOT NULL REFERENCES service_types (code),
    district         text NOT NULL DEFAULT '',
    priority         smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),  -- 1 highest
    state            text NOT NULL DEFAULT 'created' CHECK (state IN (
        'created', 'offered', 'accepted', 'en_route', 'on_site',
        'completed', 'cancelled', 'failed')),
    worker_id        text REFERENCES service_workers (worker_id),
    alert_id         bigint REFERENCES alerts (id),
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    duration_min     integer NOT NULL CHECK (duration_min BETWEEN 1 AND 720),
    sla_due_at       timestamptz,             -- emergencies: arrive by then
    booked_from      timestamptz,             -- the worker's booked interval (live orders)
    booked_until     timestamptz,
    offer_expires_at timestamptz,
    declined_by      text[] NOT NULL DEFAULT '{}',  -- workers who rejected or let it time out
    idempotency_key  text UNIQUE,
    recurrence       text,                    -- e.g. 'weekly:welfare_visit'
    notes            text NOT NULL DEFAULT '',
    outcome          text,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    arrived_at       timestamptz,
    completed_at     timestamptz,
    CHECK (window_end >= window_start),
    CONSTRAINT work_orders_live_has_worker CHECK (
        state NOT IN ('offered', 'accepted', 'en_route', 'on_site')
        OR (worker_id IS NOT NULL AND booked_from IS NOT NULL AND booked_until > booked_from)),
    CONSTRAINT work_orders_no_double_booking EXCLUDE USING gist (
        worker_id WITH =, tstzrange(booked_from, booked_until) WITH &&)
        WHERE (state IN ('offered', 'accepted', 'en_route', 'on_site'))
);
-- one live emergency order per alert: the second dispatcher's insert fails
CREATE UNIQUE INDEX IF NOT EXISTS work_orders_one_per_alert ON work_orders (alert_id)
    WHERE alert_id IS NOT NULL AND state NOT IN ('completed', 'cancelled', 'failed');
CREATE INDEX IF NOT EXISTS work_orders_by_worker ON work_orders (worker_id, window_start);
CREATE INDEX IF NOT EXISTS work_orders_by_resident ON work_orders (resident_id, window_start);
CREATE INDEX IF NOT EXISTS work_orders_by_window ON work_orders (window_start);
CREATE INDEX IF NOT EXISTS work_orders_offers ON work_orders (offer_expires_at) WHERE state = 'offered';

CREATE TABLE IF NOT EXISTS work_order_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    kind        text NOT NULL,           -- created, offered, accepted, rejected, timed_out, ...
    from_state  text,
    to_state    text NOT NULL,
    worker_id   text,
    actor       text NOT NULL,           -- 'dispatcher', 'worker:<id>', 'operator:<id>', ...
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS work_order_events_by_order ON work_order_events (order_id, at);

-- How far the dispatch service has published work_order_events (the outbox), so a
-- restart publishes what happened while it was down.
CREATE TABLE IF NOT EXISTS dispatch_outbox (
    name           text PRIMARY KEY,
    last_event_id  bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

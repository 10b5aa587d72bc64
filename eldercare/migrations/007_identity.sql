-- Identity and access for the API: users and roles, login sessions (refresh
-- token families, revocable), machine API keys with scopes, family <-> resident
-- links, resident geofences, idempotency keys, and the audit log of health reads.
CREATE TABLE IF NOT EXISTS users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    display_name  text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('admin', 'supervisor', 'operator', 'worker', 'family')),
    password_hash text NOT NULL,                 -- argon2id (argon2-cffi's encoded form)
    district      text,                          -- operators and supervisors: their district
    worker_id     text,                          -- service workers: their dispatch worker id
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    CONSTRAINT users_district_for_operators CHECK (
        role NOT IN ('operator', 'supervisor') OR district IS NOT NULL),
    CONSTRAINT users_worker_link CHECK ((role = 'worker') = (worker_id IS NOT NULL))
);

CREATE TABLE IF NOT EXISTS family_links (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resident_id bigint NOT NULL REFERENCES residents (resident_id) ON DELETE CASCADE,
    relation    text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, resident_id)
);
CREATE INDEX IF NOT EXISTS family_links_resident ON family_links (resident_id);

-- One row per login: the refresh-token family. Refresh tokens rotate; only the
-- hash of the current one is kept, so a replayed old one is detected and the
-- whole family revoked. Access tokens carry the session id and die with it.
CREATE TABLE IF NOT EXISTS auth_sessions (
    id              uuid PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash    text NOT NULL,               -- sha256 of the current refresh token
    created_at      timestamptz NOT NULL DEFAULT now(),
    refreshed_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE IF NOT EXISTS api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix      text NOT NULL UNIQUE,            -- shown to people; the key starts with it
    key_hash    text NOT NULL,                   -- sha256 of the whole key (256 random bits)
    name        text NOT NULL,
    scopes      text[] NOT NULL CHECK (scopes <@ ARRAY[
        'residents:read', 'telemetry:read', 'alerts:read', 'alerts:write', 'orders:read',
        'orders:write', 'audit:read']::text[]),
    district    text,                            -- NULL: every district
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE IF NOT EXISTS resident_geofences (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id bigint NOT NULL REFERENCES residents (resident_id) ON DELETE CASCADE,
    name        text NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_m    real NOT NULL CHECK (radius_m > 0 AND radius_m <= 50000)
);
CREATE INDEX IF NOT EXISTS resident_geofences_resident ON resident_geofences (resident_id);

-- POSTs that create things take an Idempotency-Key: the first answer is kept
-- and replayed for a repeat of the same request; a different body is refused.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    principal     text NOT NULL,                 -- 'user:<id>' or 'key:<id>'
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status        smallint NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

-- Who read or changed what, and when. Health data and locations are never
-- copied here: the row names the resource, not its content.
CREATE TABLE IF NOT EXISTS audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,                  -- 'user:<id>' or 'key:<id>'
    role         text NOT NULL,
    action       text NOT NULL,                  -- e.g. 'read_status', 'read_telemetry'
    resource     text NOT NULL,                  -- e.g. 'resident:42', 'alert:7'
    resident_id  bigint,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_resident ON audit_log (resident_id, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at DESC);

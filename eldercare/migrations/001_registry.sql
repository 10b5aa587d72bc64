-- Registries: the residents the city cares for, and their wristbands.
CREATE TABLE IF NOT EXISTS residents (
    resident_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_ref       text UNIQUE,                 -- the city's own record number
    name               text NOT NULL,
    birth_year         smallint NOT NULL CHECK (birth_year BETWEEN 1900 AND 2100),
    sex                text CHECK (sex IN ('female', 'male')),
    address            text NOT NULL DEFAULT '',
    district           text NOT NULL DEFAULT '',
    home_lat           double precision CHECK (home_lat BETWEEN -90 AND 90),
    home_lon           double precision CHECK (home_lon BETWEEN -180 AND 180),
    living_alone       boolean NOT NULL DEFAULT false,
    conditions         text[] NOT NULL DEFAULT '{}' CHECK (conditions <@ ARRAY[
        'hypertension', 'copd', 'copd_hypercapnic', 'heart_failure', 'dementia',
        'frailty', 'diabetes', 'parkinsons', 'stroke_history']::text[]),
    emergency_contacts jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(emergency_contacts) = 'array'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS residents_district ON residents (district);

CREATE TABLE IF NOT EXISTS wristbands (
    device_id          text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    model              text NOT NULL DEFAULT '',
    firmware           text NOT NULL DEFAULT '',
    resident_id        bigint REFERENCES residents (resident_id) ON DELETE SET NULL,
    secret_hash        text,                        -- MQTT credential, PBKDF2 (Mosquitto's $7$ format)
    expected_interval_s integer NOT NULL DEFAULT 60 CHECK (expected_interval_s BETWEEN 1 AND 86400),
    provisioned_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS wristbands_one_active_per_resident
    ON wristbands (resident_id) WHERE revoked_at IS NULL AND resident_id IS NOT NULL;

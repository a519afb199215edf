-- Notification, first part: subscribers kept in step with the registry's events, their channels and
-- preferences, and versioned message templates. Deliveries, triggers and broadcasts come next.

-- One row per resident of the street, as the registry's events describe them (no ID number, no phone).
CREATE TABLE subscribers (
    resident_id    bigint PRIMARY KEY,
    name           text NOT NULL,
    community_code text NOT NULL CHECK (community_code ~ '^[0-9]{12}$'),
    grid_code      text,
    household_id   bigint,
    tags           text[] NOT NULL DEFAULT '{}',
    roles          text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL CHECK (status IN ('active', 'left', 'deceased')),
    -- The registry's record version: an older event arriving late never overwrites a newer one.
    version        integer NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscribers_community ON subscribers (community_code) WHERE status = 'active';

-- Where a subscriber is reached, per channel (the in-app inbox needs no address).
CREATE TABLE subscriber_channels (
    resident_id bigint NOT NULL REFERENCES subscribers (resident_id),
    channel     text NOT NULL CHECK (channel IN ('sms', 'wechat', 'email', 'webhook')),
    address     text NOT NULL CHECK (length(address) BETWEEN 3 AND 500),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, channel)
);

CREATE TABLE preferences (
    resident_id bigint PRIMARY KEY REFERENCES subscribers (resident_id),
    opted_out   text[] NOT NULL DEFAULT '{}',   -- 'category:channel' or 'category:*'
    quiet_start time,
    quiet_end   time,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE templates (
    code       text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,59}$'),
    category   text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{1,39}$'),
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Versions are added, never edited: a delivery names the version it was rendered from.
CREATE TABLE template_versions (
    code       text NOT NULL REFERENCES templates (code),
    version    integer NOT NULL,
    locale     text NOT NULL CHECK (locale IN ('zh', 'en')),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    actor      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version, locale)
);

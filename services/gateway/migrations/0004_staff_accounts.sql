-- Staff accounts for the console: people sign in with a user name and password (argon2id hash only),
-- each with the role and node scope a token has. Sessions are kept as the SHA-256 of a random cookie
-- (256-bit, so a slow hash adds nothing), with the CSRF token the console sends back on every change.
CREATE TABLE staff_accounts (
    account_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,39}$'),
    display_name    text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('community_worker', 'street_admin', 'district_analyst', 'operator',
                                                  'organization_leader')),
    node_prefix     text NOT NULL CHECK (node_prefix ~ '^[0-9]+$'),
    organization_id bigint CHECK (organization_id > 0),
    must_change_password boolean NOT NULL DEFAULT true,
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    disabled_at     timestamptz,
    last_sign_in_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    CONSTRAINT staff_accounts_organization_for_leaders CHECK ((role = 'organization_leader') = (organization_id IS NOT NULL))
);
CREATE UNIQUE INDEX staff_accounts_username ON staff_accounts (username);

CREATE TABLE staff_sessions (
    session_hash  text PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES staff_accounts (account_id),
    csrf_token    text NOT NULL,
    address       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX staff_sessions_account ON staff_sessions (account_id) WHERE ended_at IS NULL;

-- The sign-in audit: every sign-in, failure, lock, refusal (one a minute per address), sign-out and
-- account change. Failures by address are counted from it, so the per-address limit holds across every
-- gateway replica.
CREATE TABLE sign_in_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text NOT NULL,
    username   text NOT NULL,
    account_id bigint REFERENCES staff_accounts (account_id),
    address    text NOT NULL,
    actor      text NOT NULL
);
CREATE INDEX sign_in_events_failures ON sign_in_events (address, at) WHERE event = 'failed';
CREATE INDEX sign_in_events_refusals ON sign_in_events (address, at) WHERE event LIKE 'refused%';
CREATE INDEX sign_in_events_account ON sign_in_events (account_id, event_id);

-- Names no account has, by a keyed hash (what was typed is not kept: it is sometimes a password typed
-- into the wrong box), with the same failure count and lock as an account: a lock says nothing of
-- which names exist.
CREATE TABLE unknown_names (
    name_key        text PRIMARY KEY,
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_failed_at  timestamptz NOT NULL DEFAULT now()
);

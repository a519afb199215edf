-- API tokens, stored as SHA-256 only; a token reaches its node prefix and below.
CREATE TABLE api_tokens (
    token_id    text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('community_worker', 'street_admin', 'district_analyst',
                                              'department_feed', 'operator')),
    node_prefix text NOT NULL CHECK (node_prefix ~ '^\d+$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- The aggregator: batches received, the facts log, roll-ups for this instance's subtree, and the
-- children whose batches it trusts.

-- Instances below this one (a district's streets, a city's districts) and the key each signs with.
CREATE TABLE children (
    code         text PRIMARY KEY CHECK (code ~ '^([0-9]{6}|[0-9]{9})$'),
    public_key   text NOT NULL,
    amqp_uri     text,
    added_at     timestamptz NOT NULL DEFAULT now(),
    last_fact_at timestamptz
);

-- Every batch taken, once: a redelivered batch finds its id here and changes nothing.
CREATE TABLE batches (
    batch_id    text PRIMARY KEY,
    source_code text NOT NULL,
    service     text,
    facts       integer NOT NULL,
    fresh       integer NOT NULL,          -- facts not seen before (a relayed copy adds none)
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The facts log, append-only: what roll-ups are rebuilt from and what the feed pages through.
CREATE TABLE facts_log (
    seq         bigserial PRIMARY KEY,      -- the feed's cursor
    fact_id     text NOT NULL UNIQUE,
    batch_id    text NOT NULL,
    source_code text NOT NULL,
    type        text NOT NULL,
    v           integer NOT NULL,
    node        text NOT NULL,
    occurred_on date NOT NULL,
    subject     text,
    delta       integer NOT NULL,
    dims        jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facts_log_node ON facts_log (node text_pattern_ops, seq);
CREATE INDEX facts_log_type ON facts_log (type, seq);

-- node x period x metric x dimension: n is the sum of deltas, total the sum of the measure.
CREATE TABLE rollups (
    node         text NOT NULL,
    period       text NOT NULL CHECK (period IN ('day', 'month', 'year')),
    period_start date NOT NULL,
    metric       text NOT NULL,
    dim          text NOT NULL,             -- '' for the total
    value        text NOT NULL,
    n            bigint NOT NULL,
    total        numeric NOT NULL,           -- exact: hours have two decimals
    PRIMARY KEY (node, metric, period, period_start, dim, value)
) WITH (fillfactor = 80);

-- Batches refused (bad signature, a node outside the sender's subtree, an unknown sender): kept
-- once with the reason, counted once, dead-lettered once, never aggregated.
CREATE TABLE rejected_batches (
    key         text PRIMARY KEY,             -- the batch id, or a hash of a body without one
    source_code text,
    reason      text NOT NULL,
    body        jsonb,
    received_at timestamptz NOT NULL DEFAULT now()
);

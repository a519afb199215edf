-- Service points (党员/志愿服务积分): a catalogue of versioned rules, service records, a double-entry
-- ledger, rewards and redemptions, year-end evaluations and balances handed over between streets.
-- The application checks every rule first and answers with field-level errors; the constraints and
-- triggers below are the last word when two requests race past those checks.

CREATE TABLE categories (
    code       text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A rule applies to service done on or after valid_from, until the next version's valid_from.
-- Versions are only ever added: a posted record keeps the version and the points it was given.
CREATE TABLE rule_versions (
    category_code   text NOT NULL REFERENCES categories (code),
    version         integer NOT NULL CHECK (version > 0),
    valid_from      date NOT NULL,
    unit            text NOT NULL CHECK (unit IN ('hour', 'occasion')),
    points_per_unit integer NOT NULL CHECK (points_per_unit BETWEEN 1 AND 1000),
    daily_cap       integer CHECK (daily_cap > 0),
    yearly_cap      integer CHECK (yearly_cap > 0),
    verifier_roles  text[] NOT NULL CHECK (cardinality(verifier_roles) > 0
                                           AND verifier_roles <@ ARRAY['community_worker', 'organization_leader']),
    note            text CHECK (length(note) <= 500),
    actor           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category_code, version),
    UNIQUE (category_code, valid_from)
);

-- person and organization accounts belong to someone; the others are the ledger's own:
-- issuance (one per community, goes negative as points are awarded), held (points reserved by
-- pending redemptions), redeemed, emigrated (balances handed to another street) and immigrated
-- (balances received from one; goes negative).
CREATE TABLE accounts (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('person', 'organization', 'issuance', 'held', 'redeemed',
                                                  'emigrated', 'immigrated')),
    resident_id     bigint UNIQUE,
    organization_id bigint UNIQUE,
    community_code  text NOT NULL CHECK (community_code ~ '^[0-9]{9,15}$'),
    name            text,
    pseudonym       text,
    member_category text CHECK (member_category IN ('party_member', 'volunteer', 'resident', 'organization')),
    party_org_id    bigint,
    party_org_name  text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
    carried_hours   numeric(9, 2) NOT NULL DEFAULT 0 CHECK (carried_hours >= 0),
    balance         bigint NOT NULL DEFAULT 0,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_never_negative CHECK (kind IN ('issuance', 'immigrated') OR balance >= 0),
    CHECK ((kind = 'person') = (resident_id IS NOT NULL)),
    CHECK ((kind = 'organization') = (organization_id IS NOT NULL))
) WITH (fillfactor = 80);  -- room on each page, so a balance update is HOT (no index touched)
CREATE UNIQUE INDEX accounts_one_system ON accounts (kind, community_code)
    WHERE kind NOT IN ('person', 'organization');

-- A transfer moves `amount` points from the debit account to the credit account. transfer_id is the
-- client's: the same id twice is one transfer. A correction is a reversal (`reverses`), never an edit.
CREATE TABLE transfers (
    id                bigserial PRIMARY KEY,
    transfer_id       text NOT NULL UNIQUE CHECK (length(transfer_id) BETWEEN 1 AND 100),
    kind              text NOT NULL CHECK (kind IN ('posting', 'hold', 'release', 'fulfilment', 'reversal',
                                                    'emigration', 'immigration')),
    debit_account     bigint NOT NULL REFERENCES accounts (id),
    credit_account    bigint NOT NULL REFERENCES accounts (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    service_record_id bigint,
    redemption_id     bigint,
    reverses          bigint REFERENCES transfers (id),
    memo              text CHECK (length(memo) <= 500),
    actor             text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account <> credit_account)
);
-- A transfer is reversed at most once (partial: most transfers reverse nothing, and postings are the hot path).
CREATE UNIQUE INDEX transfers_reversed_once ON transfers (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX transfers_record ON transfers (service_record_id) WHERE service_record_id IS NOT NULL;
CREATE INDEX transfers_redemption ON transfers (redemption_id) WHERE redemption_id IS NOT NULL;

-- Two entries per transfer: -amount on the debit account, +amount on the credit account, each with
-- the account's balance right after it (so a statement needs no window over the whole history).
-- No foreign keys here: entries are written only by the ledger, in the transaction that inserted the
-- transfer and locked both accounts, and a per-row key check would cost a third of a posting. The
-- trial balance (every transfer has two entries that cancel out, every balance is its entries' sum)
-- is what tests check after each test.
CREATE TABLE entries (
    account_id    bigint NOT NULL,
    transfer_pk   bigint NOT NULL,
    amount        bigint NOT NULL CHECK (amount <> 0),
    balance_after bigint NOT NULL,
    PRIMARY KEY (account_id, transfer_pk)
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: correct them with a reversing transfer', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE service_records (
    id              bigserial PRIMARY KEY,
    request_id      text CHECK (length(request_id) BETWEEN 1 AND 100),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    community_code  text NOT NULL,
    category_code   text NOT NULL REFERENCES categories (code),
    served_at       timestamptz NOT NULL,
    served_on       date NOT NULL,
    hours           numeric(5, 2) NOT NULL CHECK (hours > 0 AND hours <= 24),
    description     text NOT NULL CHECK (length(description) BETWEEN 1 AND 1000),
    links           text[] NOT NULL DEFAULT '{}',
    organization_id bigint,
    source          text NOT NULL CHECK (source IN ('claimed', 'logged')),
    recorded_by     text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'posted', 'voided', 'expired',
                                                                      'reversed')),
    expires_at      timestamptz NOT NULL,
    rule_version    integer,
    points          integer CHECK (points >= 0),
    capped_from     integer,
    transfer_pk     bigint REFERENCES transfers (id),
    decided_by      text,
    decided_role    text,
    decided_at      timestamptz,
    reason          text CHECK (length(reason) <= 500),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'pending' OR decided_at IS NOT NULL),
    CHECK (status NOT IN ('posted', 'reversed') OR (points IS NOT NULL AND rule_version IS NOT NULL))
);
CREATE UNIQUE INDEX service_records_request ON service_records (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX service_records_pending ON service_records (expires_at) WHERE status = 'pending';
CREATE INDEX service_records_account ON service_records (account_id, category_code, served_on)
    WHERE status = 'posted';

CREATE TABLE rewards (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    kind             text NOT NULL CHECK (kind IN ('material', 'honorary')),
    points_cost      integer NOT NULL CHECK (points_cost BETWEEN 1 AND 1000000),
    stock            integer CHECK (stock >= 0),
    per_person_limit integer CHECK (per_person_limit > 0),
    active           boolean NOT NULL DEFAULT true,
    description      text CHECK (length(description) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rewards_active_name ON rewards (name) WHERE active;

CREATE TABLE redemptions (
    id                bigserial PRIMARY KEY,
    request_id        text UNIQUE CHECK (length(request_id) BETWEEN 1 AND 100),
    account_id        bigint NOT NULL REFERENCES accounts (id),
    reward_id         bigint NOT NULL REFERENCES rewards (id),
    quantity          integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    points            bigint NOT NULL CHECK (points > 0),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
    hold_transfer_pk  bigint NOT NULL REFERENCES transfers (id),
    close_transfer_pk bigint REFERENCES transfers (id),
    requested_by      text NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    closed_by         text,
    closed_at         timestamptz,
    reason            text CHECK (length(reason) <= 500),
    CHECK ((status = 'pending') = (closed_at IS NULL))
);
CREATE INDEX redemptions_account ON redemptions (account_id, reward_id);

-- Year-end evaluation: written once, then immutable.
CREATE TABLE evaluations (
    year     integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    taken_at timestamptz NOT NULL DEFAULT now(),
    taken_by text NOT NULL,
    people   integer NOT NULL
);
CREATE TABLE evaluation_rows (
    year             integer NOT NULL REFERENCES evaluations (year),
    account_id       bigint NOT NULL REFERENCES accounts (id),
    community_code   text NOT NULL,
    party_org_id     bigint,
    party_org_name   text,
    name             text,
    member_category  text,
    points           bigint NOT NULL,
    hours            numeric(9, 2) NOT NULL,
    cumulative_hours numeric(9, 2) NOT NULL,
    stars            integer NOT NULL CHECK (stars BETWEEN 0 AND 5),
    community_rank   integer NOT NULL,
    branch_rank      integer,
    PRIMARY KEY (year, account_id)
);
CREATE TRIGGER evaluations_immutable BEFORE UPDATE OR DELETE ON evaluations
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER evaluation_rows_immutable BEFORE UPDATE OR DELETE ON evaluation_rows
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Balances sent after residents who left the street, kept (signed) so an operator can send one again
-- (`linli handovers resend`): the receiving street applies a transfer id once, however often it comes.
CREATE TABLE handovers_out (
    transfer_id text PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    amount      bigint NOT NULL CHECK (amount >= 0),
    hours       numeric(9, 2) NOT NULL CHECK (hours >= 0),
    message     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resent_at   timestamptz
);
CREATE INDEX handovers_out_account ON handovers_out (account_id);

-- Balances arriving from another street (or coming back to this one), keyed by the sender's transfer
-- id (a redelivery is a no-op). person_key is a city-wide keyed hash of the ID number: the receiving
-- street's registry matches it; most streets never do, as handovers reach every street of the city.
CREATE TABLE handovers_in (
    transfer_id  text PRIMARY KEY,
    person_key   text NOT NULL,
    from_street  text NOT NULL,
    amount       bigint NOT NULL CHECK (amount >= 0),
    hours        numeric(9, 2) NOT NULL CHECK (hours >= 0),
    status       text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'credited')),
    account_id   bigint REFERENCES accounts (id),
    received_at  timestamptz NOT NULL DEFAULT now(),
    last_tried_at timestamptz,
    credited_at  timestamptz
);
CREATE INDEX handovers_in_waiting ON handovers_in (person_key) WHERE status = 'waiting';
CREATE INDEX handovers_in_next_try ON handovers_in (last_tried_at NULLS FIRST) WHERE status = 'waiting';

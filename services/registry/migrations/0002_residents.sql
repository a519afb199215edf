-- Where people live and who they are. The only personal data in Linli lives in these tables.
-- ID numbers and phones are stored sealed (AES-GCM) with a keyed hash beside them for look-up
-- and de-duplication; the plaintext is never written anywhere in the database.

CREATE TABLE buildings (
    id             bigserial PRIMARY KEY,
    community_code text NOT NULL REFERENCES nodes (code),
    grid_code      text REFERENCES nodes (code),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_code, name),
    CHECK (grid_code IS NULL OR starts_with(grid_code, community_code))
);

CREATE TABLE units (
    id          bigserial PRIMARY KEY,
    building_id bigint NOT NULL REFERENCES buildings (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    UNIQUE (building_id, name)
);

CREATE TABLE rooms (
    id      bigserial PRIMARY KEY,
    unit_id bigint NOT NULL REFERENCES units (id),
    number  text NOT NULL CHECK (length(number) BETWEEN 1 AND 32),
    UNIQUE (unit_id, number)
);

CREATE TABLE households (
    id               bigserial PRIMARY KEY,
    household_no     text NOT NULL UNIQUE CHECK (length(household_no) BETWEEN 1 AND 40),
    community_code   text NOT NULL REFERENCES nodes (code),
    room_id          bigint REFERENCES rooms (id),
    head_resident_id bigint,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX households_community ON households (community_code);
CREATE INDEX households_room ON households (room_id);

CREATE TABLE residents (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    id_cipher      bytea NOT NULL,
    id_hash        bytea NOT NULL,
    phone_cipher   bytea,
    phone_hash     bytea,
    sex            char(1) NOT NULL CHECK (sex IN ('M', 'F')),
    birth_date     date NOT NULL,
    community_code text NOT NULL REFERENCES nodes (code),
    grid_code      text REFERENCES nodes (code),
    household_id   bigint REFERENCES households (id),
    relation       text CHECK (relation IN ('self', 'spouse', 'child', 'parent', 'grandchild', 'sibling', 'other')),
    residence_type text NOT NULL CHECK (residence_type IN ('registered', 'permanent', 'floating', 'lodging')),
    tags           text[] NOT NULL DEFAULT '{}',
    moved_in       date,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left', 'deceased')),
    status_on      date,
    pseudonym      text NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (grid_code IS NULL OR starts_with(grid_code, community_code)),
    CHECK ((status = 'active') = (status_on IS NULL)),
    CHECK ((household_id IS NULL) = (relation IS NULL))
);
-- The same person is on the active register of a street at most once; people who left keep their
-- old record (history) and may be registered again.
CREATE UNIQUE INDEX residents_one_active_person ON residents (id_hash) WHERE status = 'active';
CREATE INDEX residents_deceased ON residents (id_hash) WHERE status = 'deceased';
CREATE INDEX residents_phone_hash ON residents (phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX residents_community ON residents (community_code, id);
CREATE INDEX residents_household ON residents (household_id);
CREATE INDEX residents_tags ON residents USING gin (tags);
-- A household has at most one head among its active members.
CREATE UNIQUE INDEX residents_one_head ON residents (household_id) WHERE relation = 'self' AND status = 'active';

ALTER TABLE households ADD FOREIGN KEY (head_resident_id) REFERENCES residents (id) DEFERRABLE INITIALLY DEFERRED;

-- Registration, moves, departures and deaths are kept; the resident row holds only the present.
CREATE TABLE resident_history (
    resident_id bigint NOT NULL REFERENCES residents (id),
    version     integer NOT NULL,
    change      text NOT NULL CHECK (change IN ('registered', 'updated', 'moved', 'left', 'died')),
    effective   date NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    actor       text,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, version)
);

-- Who read which personal record, and when (DESIGN §5). Appended only.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    action         text NOT NULL,
    record_type    text NOT NULL,
    record_id      bigint NOT NULL,
    community_code text,
    correlation_id text
);
CREATE INDEX audit_log_record ON audit_log (record_type, record_id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

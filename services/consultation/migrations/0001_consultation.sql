-- "Three up, three down" (三上三下): matters raised by residents, screened by the committee, deliberated
-- in consultation meetings with a stakeholder roster, decided, carried out, published and rated.
-- The application checks every rule first and answers with field-level errors; the constraints
-- below are the last word when two requests race past those checks.

-- Trigram similarity finds a reworded matter already open in the same community and category (a
-- community's open matters of one category are few, so the comparison needs no trigram index).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- Screening and settling deadlines per category and urgency; '*' is the default for any category.
CREATE TABLE deadlines (
    category        text NOT NULL,
    urgency         text NOT NULL CHECK (urgency IN ('normal', 'urgent', 'emergency')),
    screening_hours integer NOT NULL CHECK (screening_hours BETWEEN 1 AND 720),
    settle_days     integer NOT NULL CHECK (settle_days BETWEEN 1 AND 365),
    PRIMARY KEY (category, urgency)
);
INSERT INTO deadlines VALUES ('*', 'emergency', 2, 7), ('*', 'urgent', 24, 30), ('*', 'normal', 72, 60);

CREATE TABLE matters (
    id                bigserial PRIMARY KEY,
    request_id        text CHECK (length(request_id) BETWEEN 1 AND 100),
    community_code    text NOT NULL CHECK (community_code ~ '^[0-9]{12}$'),
    building          text CHECK (length(building) BETWEEN 1 AND 40),
    category          text NOT NULL,
    urgency           text NOT NULL CHECK (urgency IN ('normal', 'urgent', 'emergency')),
    channel           text NOT NULL CHECK (channel IN ('reception_day', 'suggestion_box', 'discussion_book',
                                                       'online', 'hotline', 'grid_patrol')),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    description       text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    raiser_resident_id bigint,
    attachments       text[] NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'raised',
    duplicate_of      bigint REFERENCES matters (id),
    similar_to        bigint REFERENCES matters (id),   -- raised anyway although like this open one: a repeat
    backers           integer NOT NULL DEFAULT 0 CHECK (backers >= 0),
    level_code        text NOT NULL,          -- who handles it now: the community, or the street above it
    raised_at         timestamptz NOT NULL DEFAULT now(),
    screening_due_at  timestamptz NOT NULL,
    settle_due_at     timestamptz NOT NULL,
    screened_at       timestamptz,
    screened_by       text,
    screen_note       text CHECK (length(screen_note) <= 1000),
    referred_to       text CHECK (length(referred_to) <= 100),
    escalated_at      timestamptz,
    agenda_item_id    bigint,
    settled_at        timestamptz,
    version           integer NOT NULL DEFAULT 1,
    CHECK (status IN ('raised', 'escalated', 'answered', 'deliberating', 'referred', 'rejected', 'merged',
                      'decided', 'implementing', 'published', 'settled'))
);
CREATE UNIQUE INDEX matters_request ON matters (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX matters_community ON matters (community_code, category, status);

CREATE TABLE matter_history (
    matter_id  bigint NOT NULL REFERENCES matters (id),
    version    integer NOT NULL,
    status     text NOT NULL,
    note       text,
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (matter_id, version)
);

CREATE TABLE backers (
    matter_id   bigint NOT NULL REFERENCES matters (id),
    resident_id bigint NOT NULL,
    backed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (matter_id, resident_id)
);

-- An agenda item gathers matters to be deliberated together; options are drafted and voted on.
CREATE TABLE agenda_items (
    id             bigserial PRIMARY KEY,
    community_code text NOT NULL,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'decided')),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE matters ADD FOREIGN KEY (agenda_item_id) REFERENCES agenda_items (id);

CREATE TABLE options (
    id             bigserial PRIMARY KEY,
    agenda_item_id bigint NOT NULL REFERENCES agenda_items (id),
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    description    text CHECK (length(description) <= 2000),
    budget         numeric(12, 2) CHECK (budget >= 0),
    UNIQUE (agenda_item_id, title)
);

CREATE TABLE meetings (
    id             bigserial PRIMARY KEY,
    request_id     text UNIQUE CHECK (length(request_id) BETWEEN 1 AND 100),
    community_code text NOT NULL,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    starts_at      timestamptz NOT NULL,
    place          text NOT NULL CHECK (length(place) BETWEEN 1 AND 100),
    quorum         integer NOT NULL CHECK (quorum BETWEEN 1 AND 500),
    status         text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'open', 'closed', 'cancelled')),
    minutes        text CHECK (length(minutes) <= 20000),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    version        integer NOT NULL DEFAULT 1
);

CREATE TABLE meeting_items (
    meeting_id     bigint NOT NULL REFERENCES meetings (id),
    agenda_item_id bigint NOT NULL REFERENCES agenda_items (id),
    PRIMARY KEY (meeting_id, agenda_item_id)
);

-- The roster by stakeholder role. A participant is a resident of the street or someone from outside
-- (the police station, the property company, an expert) named here only.
CREATE TABLE participants (
    id          bigserial PRIMARY KEY,
    meeting_id  bigint NOT NULL REFERENCES meetings (id),
    role        text NOT NULL CHECK (role IN ('resident_rep', 'party_member', 'building_captain', 'community_police',
                                              'property_company', 'owners_committee', 'social_org', 'expert',
                                              'street_department')),
    resident_id bigint,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    affiliation text CHECK (length(affiliation) <= 100),
    attended    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX participants_resident ON participants (meeting_id, resident_id) WHERE resident_id IS NOT NULL;

-- A priority score (1-5) for an agenda item, or approve / oppose / abstain on an option.
CREATE TABLE votes (
    meeting_id     bigint NOT NULL REFERENCES meetings (id),
    participant_id bigint NOT NULL REFERENCES participants (id),
    agenda_item_id bigint NOT NULL REFERENCES agenda_items (id),
    option_id      bigint REFERENCES options (id),
    score          integer CHECK (score BETWEEN 1 AND 5),
    choice         text CHECK (choice IN ('approve', 'oppose', 'abstain')),
    cast_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((option_id IS NULL) = (score IS NOT NULL) AND (option_id IS NULL) = (choice IS NULL))
);
-- One priority score per participant and item, one choice per participant and option.
CREATE UNIQUE INDEX votes_one_score ON votes (meeting_id, participant_id, agenda_item_id) WHERE option_id IS NULL;
CREATE UNIQUE INDEX votes_one_choice ON votes (meeting_id, participant_id, option_id) WHERE option_id IS NOT NULL;

CREATE TABLE decisions (
    id             bigserial PRIMARY KEY,
    agenda_item_id bigint NOT NULL UNIQUE REFERENCES agenda_items (id),
    meeting_id     bigint NOT NULL REFERENCES meetings (id),
    option_id      bigint NOT NULL REFERENCES options (id),
    approve        integer NOT NULL,
    oppose         integer NOT NULL,
    abstain        integer NOT NULL,
    attended       integer NOT NULL,
    responsible    text NOT NULL CHECK (length(responsible) BETWEEN 1 AND 100),
    budget         numeric(12, 2) CHECK (budget >= 0),
    deadline       date NOT NULL,
    decided_by     text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    summary        text CHECK (length(summary) <= 2000),
    -- What goes on the public notice (公示), written for it: the internal summary stays internal.
    public_summary text CHECK (length(public_summary) <= 2000)
);

CREATE TABLE tasks (
    id          bigserial PRIMARY KEY,
    request_id  text UNIQUE CHECK (length(request_id) BETWEEN 1 AND 100),
    decision_id bigint NOT NULL REFERENCES decisions (id),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    responsible text NOT NULL CHECK (length(responsible) BETWEEN 1 AND 100),
    due_on      date NOT NULL,
    progress    integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE task_updates (
    id       bigserial PRIMARY KEY,
    task_id  bigint NOT NULL REFERENCES tasks (id),
    progress integer NOT NULL CHECK (progress BETWEEN 0 AND 100),
    note     text NOT NULL CHECK (length(note) BETWEEN 1 AND 1000),
    actor    text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);

-- Satisfaction: the raiser, a backer or a participant rates a published or answered matter once.
CREATE TABLE ratings (
    matter_id   bigint NOT NULL REFERENCES matters (id),
    resident_id bigint NOT NULL,
    score       integer NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     text CHECK (length(comment) <= 500),
    rated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (matter_id, resident_id)
);

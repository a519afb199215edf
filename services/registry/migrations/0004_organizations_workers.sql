-- Social organisations and volunteer teams (社会组织、志愿服务队) and community workers (社区工作者).
-- The application checks every rule first and answers with field-level errors; the constraints
-- below are the last word when two requests race past those checks.

CREATE TABLE organizations (
    id                 bigserial PRIMARY KEY,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    category           text NOT NULL CHECK (category IN ('interest_culture', 'public_service', 'party_building',
                                                         'online_community', 'volunteer_team')),
    -- A code such as security_patrol or civility_patrol, never prose: facts count by it.
    subcategory        text CHECK (subcategory ~ '^[a-z][a-z0-9_]{0,39}$'),
    status             text NOT NULL CHECK (status IN ('filed', 'active', 'suspended', 'dissolved')),
    status_on          date NOT NULL,
    leader_resident_id bigint NOT NULL REFERENCES residents (id),
    community_code     text NOT NULL REFERENCES nodes (code),
    activities         text[] NOT NULL DEFAULT '{}',
    founded_on         date NOT NULL,
    filing_no          text CHECK (length(filing_no) BETWEEN 1 AND 40),
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (status_on >= founded_on)
);
-- A dissolved organisation keeps its name in the books; a new one may take it up again.
CREATE UNIQUE INDEX organizations_one_name ON organizations (community_code, name) WHERE status <> 'dissolved';
-- Filing numbers are issued by the street, so they are unique within its instance.
CREATE UNIQUE INDEX organizations_filing_no ON organizations (filing_no) WHERE filing_no IS NOT NULL;
CREATE INDEX organizations_community ON organizations (community_code, id);

CREATE TABLE organization_members (
    id              bigserial PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations (id),
    resident_id     bigint NOT NULL REFERENCES residents (id),
    role            text NOT NULL CHECK (role IN ('member', 'deputy', 'leader')),
    joined_on       date NOT NULL,
    left_on         date,
    CHECK (left_on IS NULL OR left_on >= joined_on)
);
-- Past memberships stay; a person holds at most one open membership per organisation.
CREATE UNIQUE INDEX organization_members_open ON organization_members (organization_id, resident_id)
    WHERE left_on IS NULL;
CREATE UNIQUE INDEX organization_members_one_leader ON organization_members (organization_id)
    WHERE role = 'leader' AND left_on IS NULL;
CREATE INDEX organization_members_resident ON organization_members (resident_id);

-- Government-purchased services and other contracts (政府购买服务项目).
CREATE TABLE organization_projects (
    id              bigserial PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    funder          text NOT NULL CHECK (length(funder) BETWEEN 1 AND 100),
    budget          numeric(14, 2) NOT NULL CHECK (budget >= 0),
    starts_on       date NOT NULL,
    ends_on         date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on),
    CONSTRAINT organization_projects_once UNIQUE (organization_id, name, starts_on)
);

CREATE TABLE organization_history (
    organization_id bigint NOT NULL REFERENCES organizations (id),
    version         integer NOT NULL,
    change          text NOT NULL CHECK (change IN ('registered', 'updated', 'status_changed', 'member_joined',
                                                    'member_left', 'project_contracted')),
    effective       date NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',
    actor           text,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, version)
);

-- A community worker often lives outside the street, so the record carries its own name and
-- sealed ID number and phone (as residents do); resident_id links them when they live here.
CREATE TABLE workers (
    id             bigserial PRIMARY KEY,
    resident_id    bigint REFERENCES residents (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    id_cipher      bytea NOT NULL,
    id_hash        bytea NOT NULL,
    phone_cipher   bytea,
    phone_hash     bytea,
    role           text NOT NULL CHECK (role IN ('secretary', 'director', 'member', 'grid_worker')),
    community_code text NOT NULL REFERENCES nodes (code),
    grid_code      text REFERENCES nodes (code),
    origin         text NOT NULL CHECK (origin IN ('kept_on', 'recruited', 'seconded')),
    started_on     date NOT NULL,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left')),
    left_on        date,
    left_reason    text CHECK (left_reason IN ('resigned', 'retired', 'transferred', 'dismissed', 'assessment',
                                               'other')),
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (grid_code IS NULL OR starts_with(grid_code, community_code)),
    CHECK (role <> 'grid_worker' OR grid_code IS NOT NULL),
    CHECK ((status = 'active') = (left_on IS NULL)),
    CHECK ((left_on IS NULL) = (left_reason IS NULL)),
    CHECK (left_on IS NULL OR left_on >= started_on)
);
-- One secretary and one director per community at a time.
CREATE UNIQUE INDEX workers_one_seat ON workers (community_code, role)
    WHERE status = 'active' AND role IN ('secretary', 'director');
-- One active appointment per person and role: the same person may be secretary and director
-- at once (书记、主任"一肩挑"), but not secretary twice.
CREATE UNIQUE INDEX workers_one_appointment ON workers (id_hash, role) WHERE status = 'active';
CREATE INDEX workers_community ON workers (community_code, id);
CREATE INDEX workers_resident ON workers (resident_id) WHERE resident_id IS NOT NULL;

-- Rolling management (滚动管理): one assessment per worker and year.
CREATE TABLE worker_assessments (
    worker_id   bigint NOT NULL REFERENCES workers (id),
    year        smallint NOT NULL CHECK (year BETWEEN 1949 AND 9999),
    score       numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    outcome     text NOT NULL CHECK (outcome IN ('kept', 'improved', 'let_go')),
    assessed_on date NOT NULL,
    note        text CHECK (length(note) BETWEEN 1 AND 500),
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker_id, year)
);

CREATE TABLE worker_history (
    worker_id  bigint NOT NULL REFERENCES workers (id),
    version    integer NOT NULL,
    change     text NOT NULL CHECK (change IN ('appointed', 'assessed', 'left')),
    effective  date NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    actor      text,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker_id, version)
);

-- Party members under dual management (双重管理): a member belongs to the party organisation that
-- holds their membership (often their employer's) and also reports (报到) to the community they
-- live in, which places them in its own structure: committee → branches → building groups.

CREATE TABLE party_orgs (
    id             bigserial PRIMARY KEY,
    community_code text NOT NULL REFERENCES nodes (code),
    kind           text NOT NULL CHECK (kind IN ('committee', 'branch', 'group')),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    parent_id      bigint,
    -- The kind a parent must have, so the foreign key below enforces the shape of the tree
    -- (and that a parent lies in the same community) in the database, not only in code.
    parent_kind    text GENERATED ALWAYS AS (CASE kind WHEN 'branch' THEN 'committee'
                                                       WHEN 'group' THEN 'branch' END) STORED,
    building_id    bigint REFERENCES buildings (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_code, name),
    UNIQUE (id, community_code, kind),
    FOREIGN KEY (parent_id, community_code, parent_kind) REFERENCES party_orgs (id, community_code, kind),
    CHECK ((kind = 'committee') = (parent_id IS NULL)),
    CHECK (building_id IS NULL OR kind = 'group')
);
CREATE UNIQUE INDEX party_orgs_one_committee ON party_orgs (community_code) WHERE kind = 'committee';
CREATE INDEX party_orgs_parent ON party_orgs (parent_id);

CREATE TABLE party_members (
    resident_id    bigint PRIMARY KEY REFERENCES residents (id),
    -- The community the member reports to: the resident's at registration and at each report.
    community_code text NOT NULL REFERENCES nodes (code),
    category       text NOT NULL CHECK (category IN ('on_the_job', 'retired', 'mobile', 'student')),
    membership_org text NOT NULL CHECK (length(membership_org) BETWEEN 1 AND 100),
    joined_party   date NOT NULL,
    report_status  text NOT NULL DEFAULT 'unreported' CHECK (report_status IN ('unreported', 'reported', 'withdrawn')),
    reported_on    date,
    posts          text[] NOT NULL DEFAULT '{}',
    withdrawn_on   date,
    party_org_id   bigint,
    -- Set with party_org_id; lets the key below refuse a committee or another community's org.
    org_kind       text CHECK (org_kind IN ('branch', 'group')),
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (party_org_id, community_code, org_kind) REFERENCES party_orgs (id, community_code, kind),
    CHECK ((party_org_id IS NULL) = (org_kind IS NULL)),
    CHECK ((report_status = 'reported') = (reported_on IS NOT NULL)),
    CHECK ((report_status = 'reported') = (cardinality(posts) BETWEEN 1 AND 5)),
    CHECK ((report_status = 'withdrawn') = (withdrawn_on IS NOT NULL)),
    CHECK (report_status <> 'withdrawn' OR party_org_id IS NULL),
    CHECK (reported_on IS NULL OR reported_on >= joined_party)
);
CREATE INDEX party_members_community ON party_members (community_code, report_status);
CREATE INDEX party_members_org ON party_members (party_org_id);

-- Registration, reports, placements, withdrawals and relocations are kept; the member row holds the present.
CREATE TABLE party_member_history (
    resident_id bigint NOT NULL REFERENCES party_members (resident_id),
    version     integer NOT NULL,
    change      text NOT NULL CHECK (change IN ('registered', 'reported', 'placed', 'withdrawn', 'relocated')),
    effective   date NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    actor       text,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, version)
);

-- The administrative hierarchy under (and including the ancestors of) this instance's node.
CREATE TABLE nodes (
    code             text PRIMARY KEY CHECK (code ~ '^\d+$' AND length(code) IN (4, 6, 9, 12, 15)),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    level            text NOT NULL CHECK (level IN ('city', 'district', 'street', 'community', 'grid')),
    parent_code      text REFERENCES nodes (code),
    valid_from       date NOT NULL,
    valid_to         date,
    predecessor_code text REFERENCES nodes (code),
    successor_codes  text[] NOT NULL DEFAULT '{}',
    retired_reason   text,
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (parent_code IS NULL OR starts_with(code, parent_code))
);
CREATE INDEX nodes_parent ON nodes (parent_code);
CREATE INDEX nodes_code_prefix ON nodes (code text_pattern_ops);

-- Every change kept; a rename or retirement never overwrites what the node was.
CREATE TABLE node_changes (
    code       text NOT NULL REFERENCES nodes (code),
    version    integer NOT NULL,
    change     text NOT NULL CHECK (change IN ('created', 'renamed', 'split', 'retired')),
    name       text NOT NULL,
    effective  date NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    actor      text,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);

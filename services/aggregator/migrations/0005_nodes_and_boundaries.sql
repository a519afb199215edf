-- The nodes of this instance's subtree as their streets describe them (`node_changed` facts): names
-- for the dashboards, and the splits and merges a community's series continues through. One row per
-- node at its latest version; rebuilt with the roll-ups from the facts log.
CREATE TABLE nodes (
    code          text PRIMARY KEY,
    name          text NOT NULL,
    level         text NOT NULL,
    valid_from    date NOT NULL,
    valid_to      date,
    successors    text[] NOT NULL DEFAULT '{}',
    predecessor   text,
    version       integer NOT NULL
);

-- Node boundaries for the dashboards' maps, imported once from GeoJSON (`linli nodes boundaries import`).
-- Drawn by hand or by a surveying office; nobody's personal data.
CREATE TABLE boundaries (
    code         text PRIMARY KEY,
    name         text,
    geometry     jsonb NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);

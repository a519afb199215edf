-- What this street has reported upward of each directive's acknowledgements, per community: the
-- next report sends only the difference, as facts whose deltas the levels above can sum.
CREATE TABLE acknowledgement_reports (
    broadcast_id   bigint NOT NULL REFERENCES broadcasts (id),
    community_code text NOT NULL,
    targeted       integer NOT NULL DEFAULT 0,
    reached        integer NOT NULL DEFAULT 0,
    read           integer NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast_id, community_code)
);

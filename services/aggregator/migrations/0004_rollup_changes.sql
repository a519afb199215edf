-- The department feed (figures.feed) is a feed of roll-ups, not of facts: which (node, metric,
-- period) figures changed, in the order they changed, read back under the small-cell rule. One row
-- per figure, stamped with a new number each time a batch changes it, so the table holds at most
-- one row per figure however long the instance runs, and a reader who fell behind reads each
-- changed figure once, at its latest value.
CREATE SEQUENCE rollup_changes_seq;
CREATE TABLE rollup_changes (
    node          text NOT NULL,
    metric        text NOT NULL,
    period        text NOT NULL,
    period_start  date NOT NULL,
    seq           bigint NOT NULL DEFAULT nextval('rollup_changes_seq'),
    changed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, metric, period, period_start)
);
CREATE UNIQUE INDEX rollup_changes_by_seq ON rollup_changes (seq);
-- A department that read the feed when it was the facts log holds a cursor from it: the new numbers
-- start above it, so its next page brings what changes from now on instead of nothing for a long while.
SELECT setval('rollup_changes_seq', greatest((SELECT max(seq) FROM facts_log), 1));

-- How far the feed has been published to the departments' AMQP queues (aggregator service, timer).
CREATE TABLE feed_published (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL
);


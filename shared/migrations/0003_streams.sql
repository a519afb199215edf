-- Sequenced messages between levels (shared/streams.py), in every service schema.
-- Sender: a message that crosses a level carries a gapless number per stream, taken in the
-- transaction that writes it; the outbox keeps the row (sent or not) for its retention period, so
-- a number the receiver never got can be sent again as it was.
ALTER TABLE outbox ADD COLUMN stream text, ADD COLUMN seq bigint;
CREATE UNIQUE INDEX outbox_stream_seq ON outbox (stream, seq) WHERE stream IS NOT NULL;
CREATE TABLE stream_heads (
    stream text PRIMARY KEY,
    seq    bigint NOT NULL
);
-- Receiver: per sender (instance, service, stream), the highest number below which nothing is
-- missing, the highest seen, and the numbers seen above the contiguous one (the gaps are the rest).
CREATE TABLE stream_positions (
    source          text NOT NULL,
    service         text NOT NULL,
    stream          text NOT NULL,
    contiguous      bigint NOT NULL,
    highest         bigint NOT NULL,
    gap_since       timestamptz,
    next_request_at timestamptz,
    requested       integer NOT NULL DEFAULT 0,
    answered        integer NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, service, stream)
);
CREATE TABLE stream_seen (
    source  text NOT NULL,
    service text NOT NULL,
    stream  text NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (source, service, stream, seq)
);

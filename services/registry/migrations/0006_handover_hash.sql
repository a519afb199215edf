-- A city-wide keyed hash of the ID number, so that when a resident arrives from another street of the
-- city, that street's points handover can be matched to them (services/points/handover.py). Rows
-- registered before this migration have none and are matched once their ID number is re-entered.
ALTER TABLE residents ADD COLUMN handover_hash bytea;
CREATE INDEX residents_handover_hash ON residents (handover_hash) WHERE status = 'active';

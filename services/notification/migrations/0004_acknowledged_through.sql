-- A directive's acknowledgements are reported up for as long as they change, not only in the first
-- seven days of its broadcast: a resident who reads the message a month later is counted at the
-- district as at the street (issue 16: the figures of every level agree). The reporter looks at a
-- broadcast after its first week only when one of its deliveries changed since it last looked
-- (`acknowledged_through`), an index probe per broadcast.
ALTER TABLE broadcasts ADD COLUMN acknowledged_through timestamptz;
CREATE INDEX deliveries_notice_changed ON deliveries (notice_id, updated_at);

-- Every view reads a path of nodes and their children (figures._cells): `node = ANY(path) OR
-- parent = ANY(path)`. The children half used to be a CASE on length(node) computed per row, which
-- no index covers, so each read - per request, and every 30 s for the gauges - scanned the whole
-- table (a district with years of roll-ups: a Seq Scan removing 98% of its rows). Stored, the parent
-- is indexed beside the primary key, and the OR becomes a BitmapOr of two index scans.
--
-- The parent of a code by the code lengths of rules.CODE_LENGTHS (4, 6, 9, 12, 15: city, district,
-- street, community, grid); a city's own rows have none. Adding a stored column rewrites the table
-- once, under this migration's lock.
ALTER TABLE rollups ADD COLUMN parent text GENERATED ALWAYS AS (
    CASE length(node) WHEN 6 THEN left(node, 4) WHEN 9 THEN left(node, 6) WHEN 12 THEN left(node, 9)
                      WHEN 15 THEN left(node, 12) END) STORED;
-- The primary key's order after the parent: a read names metrics, one period and a range of starts.
CREATE INDEX rollups_parent ON rollups (parent, metric, period, period_start, dim);

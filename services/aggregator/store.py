"""SQL of the aggregator, in one place."""

CHILD_KEYS = "SELECT code, public_key FROM children"
CHILD_KEY = "SELECT public_key FROM children WHERE code = %s"
CHILDREN = "SELECT code, public_key, amqp_uri, added_at, last_fact_at FROM children ORDER BY code"
ADD_CHILD = ("INSERT INTO children (code, public_key, amqp_uri) VALUES (%s, %s, %s) ON CONFLICT (code) DO UPDATE "
             "SET public_key = excluded.public_key, amqp_uri = excluded.amqp_uri")
REMOVE_CHILD = "DELETE FROM children WHERE code = %s"
TOUCH_CHILD = "UPDATE children SET last_fact_at = now() WHERE code = %s"

ADD_BATCHES = ("INSERT INTO batches (batch_id, source_code, service, facts, fresh) "
               "SELECT *, 0 FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[]) "
               "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id")
SET_FRESHES = ("UPDATE batches b SET fresh = u.fresh FROM unnest(%s::text[], %s::int[]) AS u(batch_id, fresh) "
               "WHERE b.batch_id = u.batch_id")
# Facts not logged before (a fact relayed back, or in two batches, is logged once), returned to be rolled up.
LOG_FACTS = """
INSERT INTO facts_log (fact_id, batch_id, source_code, type, v, node, occurred_on, delta, dims)
SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::int[], %b::text[], %b::date[],
                     %b::int[], %b::jsonb[])
ON CONFLICT (fact_id) DO NOTHING
RETURNING fact_id
"""
ADD_ROLLUPS = """
INSERT INTO rollups AS r (node, period, period_start, metric, dim, value, n, total)
SELECT * FROM unnest(%b::text[], %b::text[], %b::date[], %b::text[], %b::text[], %b::text[], %b::bigint[],
                     %b::numeric[])
ON CONFLICT (node, metric, period, period_start, dim, value)
DO UPDATE SET n = r.n + excluded.n, total = r.total + excluded.total
"""
FACTS_FROM = ("SELECT seq, fact_id, type, node, occurred_on, delta, dims FROM facts_log WHERE seq > %s "
              "ORDER BY seq LIMIT %s")
CLEAR_ROLLUPS = "TRUNCATE rollups"
# After a rebuild every figure counts as changed: one the rebuild corrected reaches the feed's readers.
ALL_CHANGED = """
INSERT INTO rollup_changes AS c (node, metric, period, period_start)
SELECT DISTINCT node, metric, period, period_start FROM rollups ORDER BY 1, 2, 3, 4
ON CONFLICT (node, metric, period, period_start)
DO UPDATE SET seq = nextval('rollup_changes_seq'), changed_at = now()
"""

METRIC_NAMES = "SELECT DISTINCT metric FROM rollups WHERE node = %s ORDER BY 1"
# Whether this instance knows a node it holds no cells of in a view (figures._known): a registered child,
# or a node some fact named (a roll-up of any metric, or a fact of a type no roll-up counts). Each an index probe.
KNOWN_NODE = ("SELECT EXISTS (SELECT 1 FROM children WHERE code = %(node)s) "
              "OR EXISTS (SELECT 1 FROM rollups WHERE node = %(node)s) "
              "OR EXISTS (SELECT 1 FROM facts_log WHERE node = %(node)s) AS known")
ADD_REJECTED = ("INSERT INTO rejected_batches (key, source_code, reason, body) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING key")
REJECTED = "SELECT key, source_code, reason, received_at FROM rejected_batches ORDER BY received_at DESC LIMIT %s"
LOG_PAGE = ("SELECT seq, fact_id, type, v, node, occurred_on, delta, dims FROM facts_log WHERE seq > %s "
            "ORDER BY seq LIMIT %s")
# The cells small-cell protection judges (suppression.py): one metric family under a path of nodes,
# the path's nodes and their children. `parent` is stored and indexed (migration 0002), so each half
# of the OR is an index scan (a BitmapOr), never a scan of the whole table.
CELLS = """
SELECT node, period_start, metric, dim, value, n, total FROM rollups
WHERE metric = ANY(%(metrics)s) AND period = %(period)s AND period_start BETWEEN %(first)s AND %(last)s
  AND dim = ANY(%(dims)s) AND (node = ANY(%(nodes)s) OR parent = ANY(%(parents)s))
"""
# A stock's level before the first period shown, for the same cells. Every fact is rolled up by day,
# month and year alike, so the level is the sum of the years before, this year's months before this
# month and this month's days before `first`: some dozens of rows per cell, not one per day of the
# whole history. One SELECT per period, so that each is an index range of its own.
CELLS_BEFORE = """
SELECT node, metric, dim, value, sum(n) AS n, sum(total) AS total FROM (
  SELECT node, metric, dim, value, n, total FROM rollups
  WHERE metric = ANY(%(metrics)s) AND period = 'year' AND period_start < %(year_start)s
    AND dim = ANY(%(dims)s) AND (node = ANY(%(nodes)s) OR parent = ANY(%(parents)s))
  UNION ALL
  SELECT node, metric, dim, value, n, total FROM rollups
  WHERE metric = ANY(%(metrics)s) AND period = 'month' AND period_start >= %(year_start)s
    AND period_start < %(month_start)s
    AND dim = ANY(%(dims)s) AND (node = ANY(%(nodes)s) OR parent = ANY(%(parents)s))
  UNION ALL
  SELECT node, metric, dim, value, n, total FROM rollups
  WHERE metric = ANY(%(metrics)s) AND period = 'day' AND period_start >= %(month_start)s
    AND period_start < %(first)s
    AND dim = ANY(%(dims)s) AND (node = ANY(%(nodes)s) OR parent = ANY(%(parents)s))
) before_first
GROUP BY 1, 2, 3, 4
"""

# A directive's acknowledgement counts under this instance, per node, over every year it was reported in.
DIRECTIVE_FIGURES = """
SELECT node, metric, sum(n) AS n FROM rollups
WHERE period = 'year' AND dim = 'directive' AND value = %(directive)s AND metric = ANY(%(metrics)s)
  AND starts_with(node, %(root)s) AND length(node) <= 12
GROUP BY 1, 2
"""

# -- the feed of changed roll-ups (migration 0004, figures.feed) ----------------------------------
# One row per figure, numbered anew each time a batch changes it. The rows come deduplicated and
# sorted (ingest._note_changes): one statement may not touch a row twice, and concurrent ingests
# lock rows in one order.
# Writers take numbers one at a time and keep the lock until they commit, so numbers become visible in
# the order they were taken: a reader past number 101 never later finds a 100 committed behind it.
NOTE_CHANGES_LOCK = "SELECT pg_advisory_xact_lock(7406461001)"
NOTE_CHANGES = """
INSERT INTO rollup_changes AS c (node, metric, period, period_start)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::date[])
ON CONFLICT (node, metric, period, period_start)
DO UPDATE SET seq = nextval('rollup_changes_seq'), changed_at = now()
"""
CHANGES = """
SELECT seq, node, metric, period, period_start, changed_at FROM rollup_changes
WHERE seq > %(after)s AND starts_with(node, %(prefix)s) AND (%(metric)s::text IS NULL OR metric = %(metric)s)
ORDER BY seq LIMIT %(limit)s
"""
FEED_SEEN = "SELECT seq FROM feed_published"
ANY_CHANGE_AFTER = "SELECT EXISTS (SELECT 1 FROM rollup_changes WHERE seq > %s) AS any"
# The row is made on first use and locked either way: one publisher at a time.
FEED_PUBLISHED = ("INSERT INTO feed_published (seq) VALUES (0) ON CONFLICT (id) DO UPDATE SET seq = feed_published.seq "
                  "RETURNING seq")
SET_FEED_PUBLISHED = "UPDATE feed_published SET seq = %s"

# The dashboard's reads (dashboard.py): no JIT compiling, and a plan for each call's own nodes and periods.
READ_PLANNED = "SET LOCAL jit = off; SET LOCAL plan_cache_mode = force_custom_plan"

# -- nodes and boundaries (migration 0005) ---------------------------------------------------------
# A node's latest description wins by its register's version; rows come one per code (ingest._nodes).
DESCRIBE_NODES = """
INSERT INTO nodes AS n (code, name, level, valid_from, valid_to, successors, predecessor, version)
SELECT r.code, r.name, r.level, r.valid_from, r.valid_to, ARRAY(SELECT jsonb_array_elements_text(r.successors)),
       r.predecessor, r.version
FROM jsonb_to_recordset(%s::jsonb) AS r(code text, name text, level text, valid_from date, valid_to date,
                                         successors jsonb, predecessor text, version int)
ORDER BY r.code
ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, valid_from = excluded.valid_from,
  valid_to = excluded.valid_to, successors = excluded.successors, predecessor = excluded.predecessor,
  version = excluded.version
WHERE excluded.version >= n.version
"""
CLEAR_NODES = "TRUNCATE nodes"
NODE_FACTS_FROM = ("SELECT seq, node, dims FROM facts_log WHERE seq > %s AND type = %s ORDER BY seq LIMIT %s")
NODES_UNDER = ("SELECT code, name, level, valid_from, valid_to, successors, predecessor FROM nodes "
               "WHERE starts_with(code, %s) ORDER BY code")
NODE_NAMES = "SELECT code, name FROM nodes WHERE code = ANY(%s)"
IMPORT_BOUNDARY = ("INSERT INTO boundaries (code, name, geometry) VALUES (%s, %s, %s) ON CONFLICT (code) DO UPDATE "
                   "SET name = excluded.name, geometry = excluded.geometry, imported_at = now()")
BOUNDARY_CODES_UNDER = "SELECT code FROM boundaries WHERE starts_with(code, %s) AND length(code) = %s"
BOUNDARIES_OF = ("SELECT b.code, coalesce(n.name, b.name) AS name, b.geometry FROM boundaries b "
                 "LEFT JOIN nodes n USING (code) WHERE b.code = ANY(%s) ORDER BY b.code")
# Freshness of the children (figures.freshness): refused batches per sender.
REJECTED_BY_SOURCE = ("SELECT source_code, count(*) AS n, max(received_at) AS last_at FROM rejected_batches "
                      "GROUP BY source_code")

# The median days to settle of a node and its children at some periods, worked out where the distribution
# lies (figures.settled_medians): the k-th matter is the first value whose running count passes k, and
# the median the mean of the two middle ones (rules.middle_mean), as rules.median_from has it.
# Sorting every value of a district's year (46,000) cost more than the rest of its dashboard together:
# the values are first counted per whole day (a hash, no sort), which finds the day or two the middle
# matters fall on, and only the values of those days are sorted. The days are floats, not integers, so
# that nothing a sender got into the roll-ups before batches were checked (rules.refusal: NaN,
# 3000000000) fails the query; testing every value against a pattern cost 18 ms of a district's year.
SETTLED_MEDIANS = """
WITH c AS MATERIALIZED (
  SELECT node, period_start, value, n, floor(value::float8) AS day FROM rollups
  WHERE metric = 'matters_settled' AND dim = 'days_to_settle' AND period = %(period)s
    AND period_start = ANY(%(starts)s) AND (node = %(node)s OR parent = %(parent)s) AND n > 0
), days AS (
  SELECT node, period_start, day, sum(n) AS n FROM c GROUP BY 1, 2, 3
), running AS (
  SELECT node, period_start, day, sum(n) OVER w - n AS below, sum(n) OVER w AS upto,
         sum(n) OVER (PARTITION BY node, period_start) AS total
  FROM days WINDOW w AS (PARTITION BY node, period_start ORDER BY day)
), middle AS (
  SELECT node, period_start, min(day) AS first_day, max(day) AS last_day, min(below) AS below, min(total) AS total
  FROM running WHERE upto > (total - 1) / 2 AND below <= total / 2 GROUP BY 1, 2
), ranked AS (
  SELECT c.node, c.period_start, c.value::numeric AS v, m.total,
         m.below + sum(c.n) OVER (PARTITION BY c.node, c.period_start ORDER BY c.value::numeric) AS upto
  FROM c JOIN middle m ON m.node = c.node AND m.period_start = c.period_start
   AND c.day BETWEEN m.first_day AND m.last_day
)
SELECT node, period_start, min(v) FILTER (WHERE upto > (total - 1) / 2) AS low,
       min(v) FILTER (WHERE upto > total / 2) AS high
FROM ranked GROUP BY node, period_start
"""

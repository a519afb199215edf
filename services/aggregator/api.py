"""The aggregator's HTTP operations (shared/api.py): the gateway serves and documents exactly these.

These are what superior departments read: de-identified figures of this instance's subtree. The
gateway checks the role and the node the request names (a roll-up's `node`, the feed's `prefix`,
both the token's scope by default); the aggregator checks the same again and, for district
analysts' and department feeds' tokens, hides small counts and whatever would give one back by the
one rule of services/aggregator/suppression.py, which is why the caller carries the token's role.
"""
from services.aggregator import schemas as s
from shared.api import Operation

TAG = "aggregates"
TAGS = {TAG: "De-identified roll-ups of this instance's subtree and the feed of their changes, for superior "
             "departments"}
READERS = "(district analysts, department feeds, street admins, operators)"
# Rebuilding replays the whole facts log into fresh roll-ups in one transaction.
REBUILD_TIMEOUT = 300
# 404: a node (or feed prefix) the query names that this instance knows nothing of (figures._known);
# 422: a bad field, or a metric or grouping no fact feeds.
KNOWN = (404, 422)

OPERATIONS = [
    Operation("GET", "/api/v1/rollups", "aggregator", "rollups", "aggregates:read",
              f"One metric under a node in the token's scope, per day, month or year, in total, per child node or "
              f"per dimension value {READERS}", TAG, query=s.RollupQuerySchema, reply=s.RollupsSchema,
              scope="query:node", name="aggregate_rollups", problems=KNOWN),
    Operation("GET", "/api/v1/rollups.csv", "aggregator", "rollups_csv", "aggregates:read",
              f"The same roll-up as a CSV download {READERS}", TAG, query=s.RollupQuerySchema, scope="query:node",
              custom=True, name="aggregate_rollups_csv", reply_type="text/csv", problems=KNOWN,
              extra={"responses": {"200": {
                  "description": "UTF-8 CSV with a BOM, Chinese column labels; "
                                 'Content-Disposition: attachment; filename="rollups-<metric>-<node>.csv"',
                  "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}}}),
    Operation("GET", "/api/v1/rollups/headlines", "aggregator", "headline_figures", "aggregates:read",
              f"A node's headline figures: residents by residence type and age band, party members and report "
              f"rate, organisations, points, service hours, matters raised and settled, settlement, on-time and "
              f"satisfaction rates, median days to settle {READERS}", TAG, query=s.HeadlineQuerySchema,
              reply=s.HeadlinesSchema, scope="query:node", name="aggregate_headlines", problems=KNOWN),
    Operation("GET", "/api/v1/rollups/dashboard", "aggregator", "dashboard", "aggregates:read",
              f"A node's headline figures in a month or year beside the period before, and the same for each of "
              f"its child nodes, for the console's dashboard {READERS}", TAG, query=s.DashboardQuerySchema,
              reply=s.DashboardSchema, scope="query:node", name="aggregate_dashboard", problems=KNOWN),
    Operation("GET", "/api/v1/rollups/nodes", "aggregator", "nodes", "aggregates:read",
              f"The nodes of a subtree as this instance knows them from its streets' facts: names, and the "
              f"splits and merges a series continues through {READERS}", TAG, query=s.NodesQuerySchema,
              reply=s.SubtreeNodeSchema, many=True, scope="query:node", name="aggregate_nodes", problems=KNOWN),
    Operation("GET", "/api/v1/rollups/boundaries", "aggregator", "boundaries", "aggregates:read",
              f"The boundaries of a node's children as a GeoJSON FeatureCollection, for the dashboard's map "
              f"(imported with `linli nodes boundaries import`) {READERS}", TAG, query=s.NodesQuerySchema,
              reply=s.BoundariesSchema, scope="query:node", name="aggregate_boundaries", problems=KNOWN),
    Operation("GET", "/api/v1/rollups/freshness", "aggregator", "freshness", "aggregates:read",
              f"Each child instance's freshness: its last fact, its federation link, refused batches and gaps "
              f"in what it sent, so a quiet child can be told from a cut one {READERS}", TAG,
              reply=s.FreshnessSchema, many=True, name="aggregate_freshness", problems=()),
    Operation("GET", "/api/v1/feed", "aggregator", "feed", "aggregates:feed",
              f"The roll-ups that changed after a cursor, each figure (node, metric, period) once at its latest "
              f"value under the same small-cell rule as /rollups, by metric and node prefix in the token's scope "
              f"(its default), a page at a time; never facts {READERS}", TAG, query=s.FeedQuerySchema, reply=s.FeedPageSchema, scope="query:prefix",
              name="aggregate_feed", problems=KNOWN),
    Operation("GET", "/api/v1/children", "aggregator", "children", "aggregates:admin",
              "The child instances registered here, when each last sent facts, and whether anything it sent is "
              "missing (street admins, operators)", TAG, reply=s.ChildInstanceSchema, many=True, custom=True,
              name="aggregate_children", problems=()),
    Operation("POST", "/api/v1/rollups/rebuild", "aggregator", "rebuild", "aggregates:admin",
              "Rebuild every roll-up from the facts log (street admins, operators)", TAG,
              reply=s.RebuildResultSchema, caller=False, timeout=REBUILD_TIMEOUT, name="rebuild_rollups",
              problems=()),
]

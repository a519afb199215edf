"""The aggregator's schemas: what its HTTP operations take (queries) and answer (replies)."""
from datetime import date

from marshmallow import Schema, fields, validate

from services.aggregator import rules
from shared.api import page_schema
from shared.fields import CODE, one_of


class RollupQuerySchema(Schema):
    metric = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,59}\Z"),
                           metadata={"example": "residents"})
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})
    period = fields.String(load_default="month", validate=one_of(rules.PERIODS))
    start = fields.Date(metadata={"description": "default: 1 January this year"})
    end = fields.Date(metadata={"description": "default: today; at most a year ahead"})
    group = fields.String(load_default="none", validate=validate.Regexp(r"^(none|child|dim:[a-z_]{1,40})\Z"),
                          metadata={"description": "none, child (per child node) or dim:<name>, e.g. dim:age_band"})


class HeadlineQuerySchema(Schema):
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})
    year = fields.Integer(validate=validate.Range(2000, 2100), metadata={"description": "default: this year"})


class FeedQuerySchema(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(0, 2 ** 63 - 1),
                           metadata={"description": "cursor: `next` of the previous page"})
    # Each item is read back through the roll-ups under the rule: pages are smaller than a log's.
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))
    metric = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,59}\Z"),
                           metadata={"description": "only this metric's figures"})
    prefix = fields.String(validate=CODE)


class RollupPointSchema(Schema):
    period_start = fields.Date()
    n = fields.Integer(allow_none=True, metadata={"description": "null when suppressed"})
    suppressed = fields.Boolean(metadata={"description": "hidden from analysts' and feeds' tokens by the one "
                                                         "small-cell rule: a count of 1 to 4, or one that a "
                                                         "difference or rate with shown figures would give back"})
    total = fields.Float(allow_none=True, metadata={"description": "the measure's sum (points, hours, ...); null "
                                                                   "when suppressed"})


class RollupSeriesSchema(Schema):
    key = fields.String(metadata={"description": "'' without grouping, else the child node code or the dimension "
                                                 "value"})
    points = fields.List(fields.Nested(RollupPointSchema))


class RollupsSchema(Schema):
    metric = fields.String()
    node = fields.String()
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    group = fields.String()
    stock = fields.Boolean(metadata={"description": "true: the level at the end of each period; false: what "
                                                    "happened in it"})
    series = fields.List(fields.Nested(RollupSeriesSchema))


def _count(description):
    return fields.Integer(allow_none=True, metadata={"description": description + "; null where the small-cell "
                                                                   "rule hides it"})


def _rate(description):
    return fields.Float(allow_none=True, metadata={"description": description + "; null with no whole, or where "
                                                                   "a count it is made of is hidden"})


class FiguresSchema(Schema):
    """A node's headline figures in a period. For district analysts' and department feeds' tokens, counts
    follow the one small-cell rule of every aggregate view (services/aggregator/suppression.py)."""
    residents = _count("residents now")
    residents_by_residence_type = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    residents_by_age_band = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    party_members = _count("party members now")
    party_members_reported = _count("of them, reported to their community")
    report_rate = _rate("reported / party members")
    organizations = _count("organisations now")
    organizations_by_category = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    workers = _count("community workers now")
    points_posted = fields.Float(allow_none=True, metadata={"description": "points posted in the period; null "
                                                                           "where the count of postings is hidden"})
    points_redeemed = fields.Float(allow_none=True)
    service_hours = fields.Float(allow_none=True)
    matters_raised = _count("matters raised in the period")
    matters_settled = _count("matters settled in the period; hidden too where raised - settled is 1 to 4")
    matters_rated = _count("matters rated by residents in the period")
    settlement_rate = _rate("settled / raised")
    on_time_rate = _rate("settled on time / settled")
    satisfaction_rate = _rate("rated 4 or 5 / rated")
    median_days_to_settle = fields.Float(allow_none=True)
    broadcast_targeted = _count("people emergency broadcasts from above were for, in the period")
    broadcast_reached = _count("of them, reached")
    broadcast_read = _count("of those reached, who read it")
    reach_rate = _rate("reached / targeted")
    read_rate = _rate("read / reached")


class HeadlinesSchema(FiguresSchema):
    """A node's headline figures: stocks now, flows in the year."""
    node = fields.String()
    year = fields.Integer()
    as_of = fields.Date(metadata={"description": "the day stocks are counted at (today in the instance's zone)"})


class DashboardQuerySchema(Schema):
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})
    period = fields.String(load_default="year", validate=one_of(("month", "year")))
    start = fields.Date(validate=validate.Range(min=date(2000, 1, 1), error="must be 2000-01-01 or later"),
                        metadata={"description": "any day of the period (default: today, the period under way); "
                                                 "not after today"})


class NodeNamingSchema(Schema):
    name = fields.String(allow_none=True, metadata={"description": "null: no fact has described the node yet"})
    level = fields.String(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True, metadata={"description": "the day it was split, merged or retired"})
    successors = fields.List(fields.String(), metadata={"description": "the nodes its figures continue on after "
                                                                      "valid_to (a split's parts, a merge's node)"})
    predecessor = fields.String(allow_none=True, metadata={"description": "the node it was split from"})


class DashboardFiguresSchema(FiguresSchema):
    """The headline figures as the dashboard shows them: without the age bands, which its composition
    chart reads from /rollups (dim:age_band) for the node alone rather than for every child."""
    class Meta:
        exclude = ("residents_by_age_band",)


class DashboardChildSchema(NodeNamingSchema):
    code = fields.String()
    figures = fields.Nested(DashboardFiguresSchema, metadata={"description": "in the period"})
    previous = fields.Nested(DashboardFiguresSchema, metadata={"description": "in the period before"})


class DashboardSchema(NodeNamingSchema):
    node = fields.String()
    period = fields.String(metadata={"description": "month or year"})
    start = fields.Date()
    end = fields.Date()
    previous_start = fields.Date()
    previous_end = fields.Date()
    as_of = fields.Date(metadata={"description": "the day stocks are counted at: the period's end, or today"})
    current = fields.Boolean(metadata={"description": "the period holds today: its flows are so far"})
    figures = fields.Nested(DashboardFiguresSchema, metadata={"description": "stocks at the period's end, flows in it"})
    previous = fields.Nested(DashboardFiguresSchema, metadata={"description": "the same for the period before"})
    children = fields.List(fields.Nested(DashboardChildSchema), metadata={
        "description": "each child node (a street's communities, a district's streets) with the same figures"})


class NodesQuerySchema(Schema):
    node = fields.String(validate=CODE, metadata={"description": "default: the token's scope"})


class SubtreeNodeSchema(NodeNamingSchema):
    code = fields.String()
    predecessors = fields.List(fields.String(), metadata={
        "description": "the nodes whose figures continue on this one (split from, or merged into it)"})


class GeometrySchema(Schema):
    type = fields.String(metadata={"example": "Polygon"})
    coordinates = fields.List(fields.Raw(), metadata={"description": "GeoJSON positions, WGS 84 [lon, lat]"})


class FeaturePropertiesSchema(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)


class FeatureSchema(Schema):
    type = fields.String(metadata={"example": "Feature"})
    properties = fields.Nested(FeaturePropertiesSchema)
    geometry = fields.Nested(GeometrySchema)


class BoundariesSchema(Schema):
    type = fields.String(metadata={"example": "FeatureCollection"})
    node = fields.String()
    features = fields.List(fields.Nested(FeatureSchema))


class FreshnessSchema(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)
    last_fact_at = fields.DateTime(allow_none=True)
    seconds_since_last_fact = fields.Float(allow_none=True)
    link = fields.String(metadata={"description": "running, starting, down (some link of the child's is not "
                                                  "running), absent (no link), unknown (the broker's management "
                                                  "API did not answer)"})
    refused_batches = fields.Integer(metadata={"description": "batches from it refused here (bad signature, "
                                                              "outside its subtree, ...)"})
    last_refused_at = fields.DateTime(allow_none=True)
    missing = fields.Integer(metadata={"description": "numbers missing in what it sent, over its streams"})
    oldest_gap_seconds = fields.Float()


class FeedItemSchema(Schema):
    seq = fields.Integer(metadata={"description": "the cursor: the figure's place in the order of changes"})
    node = fields.String()
    metric = fields.String()
    period = fields.String(metadata={"description": "day, month or year"})
    period_start = fields.Date()
    stock = fields.Boolean(metadata={"description": "a stock's n is its level at the end of the period; a "
                                                    "flow's, what happened in it"})
    n = fields.Integer()
    total = fields.Float(metadata={"description": "the measure's total (points, hours)"})
    changed_at = fields.DateTime()


FeedPageSchema = page_schema(FeedItemSchema, fields.Integer(
    metadata={"description": "pass as `after` for the next page (unchanged when none came)"}), name="FeedPage")


class StreamPositionSchema(Schema):
    service = fields.String(metadata={"description": "the child's service that numbers the stream"})
    stream = fields.String(metadata={"example": "facts", "description": "`facts` (every service) or `cases` (consultation)"})
    contiguous = fields.Integer(metadata={"description": "highest number below which nothing is missing"})
    highest = fields.Integer(metadata={"description": "highest number seen or announced"})
    missing = fields.Integer(metadata={"description": "numbers missing above `contiguous`"})
    oldest_gap_seconds = fields.Float(metadata={"description": "age of the oldest open gap (0: none)"})
    resends_requested = fields.Integer()
    resends_answered = fields.Integer(metadata={"description": "gaps closed after a request"})


class ChildInstanceSchema(Schema):
    code = fields.String()
    public_key = fields.String()
    amqp_uri = fields.String(allow_none=True, metadata={"description": "any password masked"})
    added_at = fields.DateTime()
    last_fact_at = fields.DateTime(allow_none=True)
    streams = fields.List(fields.Nested(StreamPositionSchema), metadata={
        "description": "completeness of what the child sends, per service's stream"})


class RebuildResultSchema(Schema):
    facts = fields.Integer(metadata={"description": "facts replayed from the log"})

"""Gateway routes for the aggregator: roll-ups (JSON or CSV), the facts feed with a cursor, child instances, rebuild.

These are what superior departments read: de-identified figures of this instance's subtree. The
gateway checks the role and the node the request names (a roll-up's `node`, the feed's `prefix`,
both the token's scope by default); the aggregator checks the same again and, for district
analysts' and department feeds' tokens, hides small counts and whatever would give one back by the
one rule of services/aggregator/suppression.py, which is why the caller it is sent carries the
token's role.

The CSV is built here from the roll-up the service answers (`figures.csv_rows`), with a BOM so Excel
on a Chinese Windows opens it as UTF-8.
"""
import csv
import io
import re
from urllib.parse import urlsplit, urlunsplit

from werkzeug.wrappers import Response

from services.aggregator.figures import csv_rows
from services.gateway.http import api, as_json

ROLLUPS = "/api/v1/rollups"
FEED = "/api/v1/feed"
CHILDREN = "/api/v1/children"
# Rebuilding replays the whole facts log into fresh roll-ups in one transaction.
REBUILD_TIMEOUT = 300
UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
# A cell starting so is a formula to Excel; text from facts (dimension values) must never become one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _code(query, key):
    """The node code a query names, or None for the token's scope (an empty value is left to the service's schema)."""
    return query.get(key) or None


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(result):
    out = io.StringIO()
    writer = csv.writer(out)
    for row in csv_rows(result):
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()


def _without_password(uri):
    """A child's AMQP URI with any password masked: the list is for reading, not for connecting."""
    if not isinstance(uri, str):
        return uri
    try:
        parts = urlsplit(uri)
        if parts.password is None:
            return uri
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:  # not a URI we can take apart: show none of it
        return "***"
    return urlunsplit(parts._replace(netloc=netloc))


class AggregateRoutes:

    def _aggregator(self, method, *args, **kwargs):
        return self._call(method, *args, service="aggregator", **kwargs)

    def _rollups(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "aggregates:read", _code(query, "node"), field="node")
        return self._aggregator("rollups", query, self._caller(principal))

    @api("GET", ROLLUPS)
    def aggregate_rollups(self, request):
        return as_json(self._rollups(request))

    @api("GET", f"{ROLLUPS}.csv")
    def aggregate_rollups_csv(self, request):
        result = self._rollups(request)
        # The name goes into a header: keep it to characters that need no quoting in any browser.
        filename = UNSAFE_FILENAME.sub("_", f"rollups-{result['metric']}-{result['node']}.csv")
        return Response(to_csv(result), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @api("GET", f"{ROLLUPS}/headlines")
    def aggregate_headlines(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "aggregates:read", _code(query, "node"), field="node")
        return as_json(self._aggregator("headline_figures", query, self._caller(principal)))

    @api("GET", FEED)
    def aggregate_feed(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "aggregates:feed", _code(query, "prefix"), field="prefix")
        return as_json(self._aggregator("feed", query, self._caller(principal)))

    @api("GET", CHILDREN)
    def aggregate_children(self, request):
        self._principal(request, "aggregates:admin")
        children = self._aggregator("children")
        # Cases a child escalates are numbered and counted by this instance's consultation service.
        cases = {}
        for p in self._call("stream_positions", service="consultation"):
            cases.setdefault(p["source"], []).append({k: v for k, v in p.items() if k != "source"})
        return as_json([{**c, "amqp_uri": _without_password(c.get("amqp_uri")),
                         "streams": c["streams"] + cases.get(c["code"], [])} for c in children])

    @api("POST", f"{ROLLUPS}/rebuild")
    def rebuild_rollups(self, request):
        self._principal(request, "aggregates:admin")
        return as_json(self._aggregator("rebuild", timeout=REBUILD_TIMEOUT))

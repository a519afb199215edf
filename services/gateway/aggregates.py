"""The aggregator's two routes that are not one JSON call (declared in services/aggregator/api.py):
the roll-up as a CSV download, and the child instances, whose cases are counted by consultation."""
from urllib.parse import urlsplit, urlunsplit

from services.gateway.http import api, csv_download
from services.gateway.routes import reply

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

    @api("GET", "/api/v1/rollups.csv")
    def aggregate_rollups_csv(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "aggregates:read", query.get("node") or None, field="node")
        result = self._call("rollups_csv", query, self._caller(principal), service="aggregator")
        return csv_download(result["csv"], f"rollups-{result['metric']}-{result['node']}.csv")

    @api("GET", "/api/v1/children")
    def aggregate_children(self, request):
        from services.gateway.declared import BY_NAME
        self._principal(request, "aggregates:admin")
        children = self._call("children", service="aggregator")
        # Cases a child escalates are numbered and counted by this instance's consultation service.
        cases = {}
        for p in self._call("stream_positions", service="consultation"):
            cases.setdefault(p["source"], []).append({k: v for k, v in p.items() if k != "source"})
        return reply(BY_NAME["aggregate_children"], [
            {**c, "amqp_uri": _without_password(c.get("amqp_uri")), "streams": c["streams"] + cases.get(c["code"], [])}
            for c in children])


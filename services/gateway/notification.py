"""The notification operations the gateway serves by hand; each is declared in services/notification/api.py
(custom=True), which is where the other notification routes and the document come from.

- `GET /broadcasts/{id}`: at a district or city, a broadcast goes down to the streets as a directive
  and is delivered there, so its roll-up is the streets' acknowledgement counts, per street and per
  community, from the aggregator's roll-ups. Two services are asked one after the other, each with its
  own deadline: without the aggregator the broadcast is still shown, its figures marked unavailable.
- `GET /notices/reach`: its lists come comma-separated or as repeated query parameters; the area is
  the token's scope unless narrowed, and the service counts whatever area it is given.
- Provider receipts carry no token: the provider signs the raw body (HMAC in `X-Linli-Signature`) and
  the service checks it, so the body goes over as the very text that came in, not re-encoded JSON.
"""
import logging

from nameko.exceptions import RemoteError, UnknownService

from services.gateway import routes
from services.gateway.declared import BY_NAME
from services.gateway.http import MAX_BODY, PayloadTooLarge, ServiceUnavailable, api, as_json, raw_body, require_type
from services.notification.schemas import ReachQuerySchema
from shared.errors import DomainError, ValidationFailed, load
from shared.rpc import ServiceTimeout

log = logging.getLogger(__name__)

RECEIPTS_MAX_BODY = MAX_BODY  # 1 MB; a provider batches at most 1000 receipts
SIGNATURE = "X-Linli-Signature"


def _listed(args, name):
    """`?tags=a,b` or `?tags=a&tags=b`: the values, without blanks or repeats, in the order given."""
    values = []
    for raw in args.getlist(name):
        for value in raw.split(","):
            value = value.strip()
            if value and value not in values:
                values.append(value)
    return values


class NotificationRoutes:

    @api("GET", "/api/v1/broadcasts/<int:broadcast_id>")
    def get_broadcast(self, request, broadcast_id):
        principal = self._principal(request, "notification:read")
        caller = self._caller(principal)
        broadcast = self._call("get_broadcast", broadcast_id, caller, service="notification")
        if broadcast.get("sent_down_as") and broadcast.get("rollup") is not None:
            broadcast["rollup"] = self._directive_rollup(broadcast["sent_down_as"], broadcast["rollup"], caller)
        return routes.reply(BY_NAME["get_broadcast"], broadcast)

    def _directive_rollup(self, directive_id, own, caller):
        """A broadcast sent down the hierarchy is counted by the streets below, not here: its reach and
        reads per street and community come from the aggregator's roll-ups. Without an answer in time
        the broadcast is still shown, its roll-up marked unavailable, not the whole page a 503."""
        try:
            figures = self._call("directive_figures", directive_id, caller, service="aggregator")
        except (ServiceUnavailable, ServiceTimeout, UnknownService, RemoteError) as exc:
            log.warning("directive roll-up unavailable: %s", exc)
            return {**own, "source": "unavailable"}
        except DomainError as exc:
            if exc.status != 503:  # a refusal (scope, unknown directive) is the caller's answer
                raise
            log.warning("directive roll-up unavailable: %s", exc)
            return {**own, "source": "unavailable"}
        return {**own, "source": "rollups", "streets": figures["streets"], "communities": figures["communities"],
                "total": figures["total"]}

    @api("GET", "/api/v1/notices/reach")
    def notice_reach(self, request):
        prefix = request.args.get("prefix") or None
        principal = self._principal(request, "notification:read", prefix, field="prefix")
        query = {"tags": _listed(request.args, "tags"), "roles": _listed(request.args, "roles")}
        if prefix is not None:
            query["prefix"] = prefix
        target = load(ReachQuerySchema, query)  # the service takes the audience as given
        target.setdefault("prefix", principal.node_prefix)
        return as_json(self._call("reach", target, service="notification"))

    @api("POST", "/api/v1/notification/receipts/<string:provider>")
    def notification_receipts(self, request, provider):
        raw = raw_body(request, RECEIPTS_MAX_BODY, too_large=PayloadTooLarge)
        require_type(request, "application/json")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("the body is not UTF-8 text", {"_body": ["must be UTF-8 JSON"]})
        return routes.reply(BY_NAME["notification_receipts"],
                            self._call("receipts", provider, text, request.headers.get(SIGNATURE),
                                       service="notification"))

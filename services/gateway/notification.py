"""Gateway routes for notification: broadcasts, notices, subscribers, a resident's own inbox, templates, receipts.

The gateway checks the role and any node code the request names (a broadcast's or
notice's `prefix`, a listing's `under`, the area `reach` counts); the notification
service checks each subscriber's, notice's and broadcast's community against the
token's scope, since only it knows them. A resident's token reaches the `/me`
routes only, and they act for the resident its `resident_id` names, never for one
named in the request. Creating a broadcast or a notice with a `request_id` seen
before answers 200 with the first one (marked `replayed`) instead of 201.

At a district or city, a broadcast goes down to the streets as a directive and is delivered there:
`GET /broadcasts/{id}` adds the streets' acknowledgement counts, per street and per community, from
the aggregator's roll-ups (the two services are asked one after the other, each with its deadline).

Provider receipts carry no token: the provider signs the raw body (HMAC in
`X-Linli-Signature`) and the service checks it, so the body goes over as the very
text that came in, not re-encoded JSON.
"""
import logging
import re

from nameko.exceptions import RemoteError, UnknownService

from services.gateway.http import MAX_BODY, PayloadTooLarge, ServiceUnavailable, api, as_json, json_body, raw_body
from services.notification.schemas import ROLES as TARGET_ROLES
from shared.errors import DomainError, Forbidden, ValidationFailed
from shared.rpc import ServiceTimeout

log = logging.getLogger(__name__)

BROADCASTS = "/api/v1/broadcasts"
NOTICES = "/api/v1/notices"
SUBSCRIBERS = "/api/v1/subscribers"
ME = "/api/v1/me"
TEMPLATES = "/api/v1/notification/templates"
RECEIPTS = "/api/v1/notification/receipts"
RECEIPTS_MAX_BODY = MAX_BODY  # 1 MB; a provider batches at most 1000 receipts
SIGNATURE = "X-Linli-Signature"
# As the templates table allows; anything else would fail in the database, not answer 422.
TEMPLATE_CODE = re.compile(r"[a-z][a-z0-9_]{1,59}")
TAG = re.compile(r"[a-z][a-z0-9_]{1,39}")
MAX_TAGS = 10


def _code(body, key="prefix"):
    # A code that is not a string cannot be scope-checked here; the service's schema refuses it with a 422.
    value = body.get(key)
    return value if isinstance(value, str) else None


def _created(result, location):
    """201 with a Location, or 200 when the service answered a retry with what the first request made."""
    return as_json(result, 200 if result.get("replayed") else 201, headers={"Location": location})


def _template_code(code):
    if not TEMPLATE_CODE.fullmatch(code):
        raise ValidationFailed("not a template code", {"code": ["2 to 60 lowercase letters, digits or _, "
                                                                "starting with a letter"]})
    return code


def _listed(args, name):
    """`?tags=a,b` or `?tags=a&tags=b`: the values, without blanks or repeats, in the order given."""
    values = []
    for raw in args.getlist(name):
        for value in raw.split(","):
            value = value.strip()
            if value and value not in values:
                values.append(value)
    return values


def _audience(args):
    """The tags and roles `reach` counts, checked here: the service takes them as given."""
    tags, roles = _listed(args, "tags"), _listed(args, "roles")
    errors = {}
    if len(tags) > MAX_TAGS:
        errors["tags"] = [f"at most {MAX_TAGS} tags"]
    elif any(not TAG.fullmatch(t) for t in tags):
        errors["tags"] = ["2 to 40 lowercase letters, digits or _, starting with a letter"]
    if any(r not in TARGET_ROLES for r in roles):
        errors["roles"] = [f"must be among: {', '.join(TARGET_ROLES)}"]
    if errors:
        raise ValidationFailed("the audience has invalid fields", errors)
    return {"tags": tags, "roles": roles}


class NotificationRoutes:

    def _notification(self, method, *args, **kwargs):
        return self._call(method, *args, service="notification", **kwargs)

    def _me(self, request):
        """The resident a resident's token is for, and what the service needs to know of the caller."""
        principal = self._principal(request, "notification:self")
        if principal.resident_id is None:  # the database refuses such a token; never guess whom it is for
            raise Forbidden("this token names no resident", {"Authorization": ["not a resident's token"]})
        return principal.resident_id, self._caller(principal)

    # -- emergency broadcasts (two people: a worker drafts and submits, a street admin approves) --------

    @api("POST", BROADCASTS)
    def create_broadcast(self, request):
        body = json_body(request)
        principal = self._principal(request, "notification:broadcast", _code(body), field="prefix")
        broadcast = self._notification("create_broadcast", body, self._caller(principal))
        return _created(broadcast, f"{BROADCASTS}/{broadcast['id']}")

    @api("GET", BROADCASTS)
    def list_broadcasts(self, request):
        query = request.args.to_dict()
        principal = self._principal(request, "notification:read", query.get("under"), field="under")
        return as_json(self._notification("list_broadcasts", query, self._caller(principal)))

    @api("GET", f"{BROADCASTS}/<int:broadcast_id>")
    def get_broadcast(self, request, broadcast_id):
        principal = self._principal(request, "notification:read")
        caller = self._caller(principal)
        broadcast = self._notification("get_broadcast", broadcast_id, caller)
        if broadcast.get("sent_down_as") and broadcast.get("rollup") is not None:
            broadcast["rollup"] = self._directive_rollup(broadcast["sent_down_as"], broadcast["rollup"], caller)
        return as_json(broadcast)

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

    @api("PATCH", f"{BROADCASTS}/<int:broadcast_id>")
    def edit_broadcast(self, request, broadcast_id):
        body = json_body(request)
        principal = self._principal(request, "notification:broadcast", _code(body), field="prefix")
        return as_json(self._notification("edit_broadcast", broadcast_id, body, self._caller(principal)))

    @api("POST", f"{BROADCASTS}/<int:broadcast_id>/submit")
    def submit_broadcast(self, request, broadcast_id):
        principal = self._principal(request, "notification:broadcast")
        return as_json(self._notification("submit_broadcast", broadcast_id, self._caller(principal)))

    @api("POST", f"{BROADCASTS}/<int:broadcast_id>/approve")
    def approve_broadcast(self, request, broadcast_id):
        principal = self._principal(request, "notification:approve")
        return as_json(self._notification("approve_broadcast", broadcast_id, self._caller(principal)))

    @api("POST", f"{BROADCASTS}/<int:broadcast_id>/reject")
    def reject_broadcast(self, request, broadcast_id):
        body = json_body(request)
        principal = self._principal(request, "notification:approve")
        return as_json(self._notification("reject_broadcast", broadcast_id, body, self._caller(principal)))

    @api("POST", f"{BROADCASTS}/<int:broadcast_id>/cancel")
    def cancel_broadcast(self, request, broadcast_id):
        body = json_body(request)
        principal = self._principal(request, "notification:broadcast")
        return as_json(self._notification("cancel_broadcast", broadcast_id, body, self._caller(principal)))

    @api("GET", f"{BROADCASTS}/<int:broadcast_id>/deliveries")
    def broadcast_deliveries(self, request, broadcast_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("broadcast_deliveries", broadcast_id, request.args.to_dict(),
                                          self._caller(principal)))

    # -- targeted and organisation notices ----------------------------------------------------------

    @api("POST", NOTICES)
    def send_notice(self, request):
        body = json_body(request)
        principal = self._principal(request, "notification:send", _code(body), field="prefix")
        notice = self._notification("send_notice", body, self._caller(principal))
        return _created(notice, f"{NOTICES}/{notice['id']}")

    # `reach` is no int, so it never meets `notices/<int:notice_id>`.
    @api("GET", f"{NOTICES}/reach")
    def notice_reach(self, request):
        prefix = request.args.get("prefix") or None
        principal = self._principal(request, "notification:read", prefix, field="prefix")
        # The service counts whatever area it is given: the area is the token's scope unless narrowed.
        target = {"prefix": prefix or principal.node_prefix, **_audience(request.args)}
        return as_json(self._notification("reach", target))

    @api("GET", f"{NOTICES}/<int:notice_id>")
    def get_notice(self, request, notice_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("get_notice", notice_id, self._caller(principal)))

    @api("POST", "/api/v1/organizations/<int:organization_id>/notices")
    def send_organization_notice(self, request, organization_id):
        body = json_body(request)
        principal = self._principal(request, "notification:organization")
        if principal.role == "organization_leader" and principal.organization_id != organization_id:
            # The service refuses it too; no need to ask it.
            raise Forbidden("a leader notifies their own organisation's members",
                            {"organization_id": ["not the organisation this token leads"]})
        notice = self._notification("send_organization_notice", organization_id, body, self._caller(principal))
        return _created(notice, f"{NOTICES}/{notice['id']}")

    # -- subscribers, by a worker of their community ---------------------------------------------------

    @api("GET", f"{SUBSCRIBERS}/<int:resident_id>")
    def get_subscriber(self, request, resident_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("get_subscriber", resident_id, self._caller(principal)))

    @api("GET", f"{SUBSCRIBERS}/<int:resident_id>/channels")
    def get_subscriber_channels(self, request, resident_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("get_channels", resident_id, self._caller(principal)))

    @api("PUT", f"{SUBSCRIBERS}/<int:resident_id>/channels")
    def set_subscriber_channel(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "notification:write")
        return as_json(self._notification("set_channel", resident_id, body, self._caller(principal)))

    @api("DELETE", f"{SUBSCRIBERS}/<int:resident_id>/channels/<string:channel>")
    def remove_subscriber_channel(self, request, resident_id, channel):
        principal = self._principal(request, "notification:write")
        return as_json(self._notification("remove_channel", resident_id, channel, self._caller(principal)))

    @api("GET", f"{SUBSCRIBERS}/<int:resident_id>/preferences")
    def get_subscriber_preferences(self, request, resident_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("get_preferences", resident_id, self._caller(principal)))

    @api("PUT", f"{SUBSCRIBERS}/<int:resident_id>/preferences")
    def set_subscriber_preferences(self, request, resident_id):
        body = json_body(request)
        principal = self._principal(request, "notification:write")
        return as_json(self._notification("set_preferences", resident_id, body, self._caller(principal)))

    @api("GET", f"{SUBSCRIBERS}/<int:resident_id>/inbox")
    def subscriber_inbox(self, request, resident_id):
        principal = self._principal(request, "notification:read")
        return as_json(self._notification("inbox", resident_id, request.args.to_dict(), self._caller(principal)))

    @api("POST", f"{SUBSCRIBERS}/<int:resident_id>/inbox/<int:delivery_id>/read")
    def subscriber_mark_read(self, request, resident_id, delivery_id):
        principal = self._principal(request, "notification:write")
        return as_json(self._notification("mark_read", resident_id, delivery_id, self._caller(principal)))

    # -- the resident themselves: the token's resident_id, never one from the request ----------------------

    @api("GET", f"{ME}/inbox")
    def my_inbox(self, request):
        resident_id, caller = self._me(request)
        return as_json(self._notification("inbox", resident_id, request.args.to_dict(), caller))

    @api("POST", f"{ME}/inbox/<int:delivery_id>/read")
    def my_mark_read(self, request, delivery_id):
        resident_id, caller = self._me(request)
        return as_json(self._notification("mark_read", resident_id, delivery_id, caller))

    @api("GET", f"{ME}/preferences")
    def my_preferences(self, request):
        resident_id, caller = self._me(request)
        return as_json(self._notification("get_preferences", resident_id, caller))

    @api("PUT", f"{ME}/preferences")
    def set_my_preferences(self, request):
        body = json_body(request)
        resident_id, caller = self._me(request)
        return as_json(self._notification("set_preferences", resident_id, body, caller))

    @api("GET", f"{ME}/channels")
    def my_channels(self, request):
        resident_id, caller = self._me(request)
        return as_json(self._notification("get_channels", resident_id, caller))

    @api("PUT", f"{ME}/channels")
    def set_my_channel(self, request):
        body = json_body(request)
        resident_id, caller = self._me(request)
        return as_json(self._notification("set_channel", resident_id, body, caller))

    @api("DELETE", f"{ME}/channels/<string:channel>")
    def remove_my_channel(self, request, channel):
        resident_id, caller = self._me(request)
        return as_json(self._notification("remove_channel", resident_id, channel, caller))

    # -- templates ------------------------------------------------------------------------------------

    @api("GET", f"{TEMPLATES}/<string:code>")
    def get_notification_template(self, request, code):
        self._principal(request, "notification:read")
        return as_json(self._notification("get_template", _template_code(code)))

    @api("PUT", f"{TEMPLATES}/<string:code>")
    def save_notification_template(self, request, code):
        body = json_body(request)
        principal = self._principal(request, "notification:admin")
        return as_json(self._notification("save_template", _template_code(code), body, self._caller(principal)))

    # -- provider receipts: signed by the provider, no token ---------------------------------------------

    @api("POST", f"{RECEIPTS}/<string:provider>")
    def notification_receipts(self, request, provider):
        raw = raw_body(request, RECEIPTS_MAX_BODY, too_large=PayloadTooLarge)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("the body is not UTF-8 text", {"_body": ["must be UTF-8 JSON"]})
        return as_json(self._notification("receipts", provider, text, request.headers.get(SIGNATURE)))

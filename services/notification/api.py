"""The notification service's HTTP operations (shared/api.py): the gateway serves and documents exactly these.

The gateway checks the role and any node code the request names (a broadcast's or notice's
`prefix`, a listing's `under`); the service checks each subscriber's, notice's and broadcast's
community against the token's scope, since only it knows them. A resident's token reaches the
`/me` operations only, which act for the resident its `resident_id` names, never one named in the
request. Three are served by hand (services/gateway/notification.py): a broadcast's figures come
from two services, `reach` takes repeated query parameters, and receipts are signed raw bodies.
"""
from marshmallow import fields

from services.notification import schemas as s
from shared.api import Operation, page_schema

BROADCASTS, NOTIFICATION = "broadcasts", "notification"
TAGS = {BROADCASTS: "Emergency broadcasts: drafted, approved by a second person, sent down to every subscriber "
                    "of an area",
        NOTIFICATION: "Notices, subscribers' channels and preferences, inboxes, templates and provider receipts"}
B = "/api/v1/broadcasts"
SUBSCRIBER = "/api/v1/subscribers/<int:resident_id>"
ME = "/api/v1/me"
TEMPLATE = "/api/v1/notification/templates/<string:code>"

_NEXT = {"metadata": {"description": "pass as `after` for the next page"}, "allow_none": True}


def _page(item):
    return page_schema(item, next_field=fields.Integer(**_NEXT))


BroadcastPage, DeliveryPage = _page(s.BroadcastSchema), _page(s.DeliverySchema)


def _broadcast(method, path, rpc, permission, summary, **kw):
    return Operation(method, path, "notification", rpc, permission, summary, BROADCASTS,
                     reply=kw.pop("reply", s.BroadcastDetailSchema), **kw)


def _notification(method, path, rpc, permission, summary, reply, **kw):
    return Operation(method, path, "notification", rpc, permission, summary, NOTIFICATION, reply=reply, **kw)


def _me(method, path, rpc, summary, reply, problems=(404,), **kw):
    """A resident's own: their token, their resident_id; other roles get 403 (and 404 before the register's
    event has made them a subscriber)."""
    return _notification(method, f"{ME}{path}", rpc, "notification:self",
                         summary + " (a resident's token; acts for the resident it names)", reply,
                         extra={"responses": {"403": {
                             "description": "not a resident's token",
                             "content": {"application/problem+json": {"schema": "Problem"}}}}},
                         problems=problems, **kw)


SIGNATURE = [
    {"in": "header", "name": "X-Linli-Signature", "required": True,
     "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
     "description": "sha256=<hex HMAC-SHA256 of the raw request body with the provider's receipt secret>"}]
REACH = {"type": "object", "additionalProperties": {"type": "integer"},
         "description": "community code -> active subscribers the target reaches",
         "example": {"310110012003": 412, "310110012004": 388}}


OPERATIONS = [
    # -- emergency broadcasts (two people: a worker drafts and submits, a street admin approves) --------
    _broadcast("POST", B, "create_broadcast", "notification:broadcast",
               "Draft an emergency broadcast for an area in scope (community workers, street admins)",
               body=s.BroadcastDraftSchema, status=201, scope="body:prefix", location=B + "/{id}",
               replayed_ok=True, problems=(404, 409, 422)),
    _broadcast("GET", B, "list_broadcasts", "notification:read", "Emergency broadcasts in scope, newest first",
               query=s.BroadcastListQuerySchema, reply=BroadcastPage, scope="query:under", problems=(404, 422)),
    _broadcast("GET", f"{B}/<int:broadcast_id>", "get_broadcast", "notification:read",
               "A broadcast with its versions, log and roll-up: at a street its own deliveries per community; "
               "at a district or city, reach and reads per street and per community as the streets reported "
               "them (roll-ups)", custom=True, problems=(404,)),
    _broadcast("PATCH", f"{B}/<int:broadcast_id>", "edit_broadcast", "notification:broadcast",
               "Edit a draft or a rejected broadcast: a new version", body=s.BroadcastEditSchema,
               scope="body:prefix", problems=(404, 409, 422)),
    _broadcast("POST", f"{B}/<int:broadcast_id>/submit", "submit_broadcast", "notification:broadcast",
               "Submit a draft for approval (community workers, street admins)", problems=(404, 409)),
    _broadcast("POST", f"{B}/<int:broadcast_id>/approve", "approve_broadcast", "notification:approve",
               "Approve and send it: a street admin other than its author (two-person rule)", problems=(404, 409)),
    _broadcast("POST", f"{B}/<int:broadcast_id>/reject", "reject_broadcast", "notification:approve",
               "Reject it with a reason; it may be edited and submitted again (street admins)",
               body=s.BroadcastReasonSchema, problems=(404, 409, 422)),
    _broadcast("POST", f"{B}/<int:broadcast_id>/cancel", "cancel_broadcast", "notification:broadcast",
               "Call it off with a reason; deliveries not yet sent are cancelled", body=s.BroadcastReasonSchema,
               problems=(404, 409, 422)),
    _broadcast("GET", f"{B}/<int:broadcast_id>/deliveries", "broadcast_deliveries", "notification:read",
               "A broadcast's deliveries, one per person and channel", query=s.DeliveryQuerySchema,
               reply=DeliveryPage, problems=(404, 422)),

    # -- targeted and organisation notices ----------------------------------------------------------
    _notification("POST", "/api/v1/notices", "send_notice", "notification:send",
                  "Send a notice to the subscribers of an area in scope, by care tags and roles (the request id "
                  "is its idempotency key)", s.NoticeResultSchema, body=s.NoticeCreateSchema, status=201,
                  scope="body:prefix", location="/api/v1/notices/{id}", replayed_ok=True),
    # `reach` is no int, so it never meets `notices/<int:notice_id>`.
    _notification("GET", "/api/v1/notices/reach", "reach", "notification:read",
                  "How many active subscribers a target reaches, per community, before anything is sent", None,
                  name="notice_reach", query=s.ReachQuerySchema, custom=True, problems=(404, 422),
                  extra={"responses": {"200": {"description": "ok",
                                               "content": {"application/json": {"schema": REACH}}}}}),
    _notification("GET", "/api/v1/notices/<int:notice_id>", "get_notice", "notification:read",
                  "A notice and its delivery roll-up", s.NoticeSchema, problems=(404,)),
    _notification("POST", "/api/v1/organizations/<int:organization_id>/notices", "send_organization_notice",
                  "notification:organization",
                  "Notify an organisation's current members (its leader, for their own organisation only; "
                  "community workers, street admins)", s.NoticeResultSchema, body=s.OrganizationNoticeCreateSchema,
                  status=201, location="/api/v1/notices/{id}", replayed_ok=True, problems=(404, 422)),

    # -- subscribers, by a worker of their community ---------------------------------------------------
    _notification("GET", SUBSCRIBER, "get_subscriber", "notification:read",
                  "A subscriber: community, tags, roles, organisations", s.SubscriberSchema, problems=(404,)),
    _notification("GET", f"{SUBSCRIBER}/channels", "get_channels", "notification:read",
                  "A subscriber's addresses per channel (masked)", s.SubscriberChannelSchema, many=True,
                  name="get_subscriber_channels", problems=(404,)),
    _notification("PUT", f"{SUBSCRIBER}/channels", "set_channel", "notification:write",
                  "Set the subscriber's address for a channel; the answer is every channel",
                  s.SubscriberChannelSchema, many=True, body=s.SubscriberChannelSetSchema,
                  name="set_subscriber_channel", problems=(404, 422)),
    _notification("DELETE", f"{SUBSCRIBER}/channels/<string:channel>", "remove_channel", "notification:write",
                  "Remove the subscriber's address for a channel (sms, wechat, email or webhook)",
                  s.SubscriberChannelSchema, many=True, name="remove_subscriber_channel", problems=(404,)),
    _notification("GET", f"{SUBSCRIBER}/preferences", "get_preferences", "notification:read",
                  "A subscriber's opt-outs, quiet hours and language", s.NotificationPreferencesSchema,
                  name="get_subscriber_preferences", problems=(404,)),
    _notification("PUT", f"{SUBSCRIBER}/preferences", "set_preferences", "notification:write",
                  "Set a subscriber's opt-outs, quiet hours and language (emergencies always arrive)",
                  s.NotificationPreferencesSchema, body=s.PreferencesSchema, name="set_subscriber_preferences",
                  problems=(404, 422)),
    _notification("GET", f"{SUBSCRIBER}/inbox", "inbox", "notification:read", "A subscriber's inbox, newest first",
                  s.InboxSchema, query=s.InboxQuerySchema, name="subscriber_inbox", problems=(404, 422)),
    _notification("POST", f"{SUBSCRIBER}/inbox/<int:delivery_id>/read", "mark_read", "notification:write",
                  "Mark an inbox message read (again is no error)", s.InboxReadSchema, name="subscriber_mark_read",
                  problems=(404,)),

    # -- the resident themselves: the token's resident_id, never one from the request ----------------------
    _me("GET", "/inbox", "my_inbox", "My inbox, newest first", s.InboxSchema, query=s.InboxQuerySchema,
        problems=(404, 422)),
    _me("POST", "/inbox/<int:delivery_id>/read", "my_mark_read", "Mark one of my messages read", s.InboxReadSchema),
    _me("GET", "/preferences", "my_preferences", "My opt-outs, quiet hours and language",
        s.NotificationPreferencesSchema),
    _me("PUT", "/preferences", "set_my_preferences", "Set my opt-outs, quiet hours and language",
        s.NotificationPreferencesSchema, body=s.PreferencesSchema, problems=(404, 422)),
    _me("GET", "/channels", "my_channels", "My addresses per channel (masked)", s.SubscriberChannelSchema,
        many=True),
    _me("PUT", "/channels", "set_my_channel", "Set my address for a channel", s.SubscriberChannelSchema, many=True,
        body=s.SubscriberChannelSetSchema, problems=(404, 422)),
    _me("DELETE", "/channels/<string:channel>", "remove_my_channel", "Remove my address for a channel",
        s.SubscriberChannelSchema, many=True),

    # -- templates ------------------------------------------------------------------------------------
    _notification("GET", TEMPLATE, "get_template", "notification:read", "A message template and its versions",
                  s.NotificationTemplateSchema, caller=False, name="get_notification_template", problems=(404, 422)),
    _notification("PUT", TEMPLATE, "save_template", "notification:admin",
                  "Create a template or add a version: Chinese required, English optional; checked against its "
                  "category's sample context before saving (street admins)", s.NotificationTemplateSchema,
                  body=s.NotificationTemplateSaveSchema, name="save_notification_template", problems=(409, 422)),

    # -- provider receipts: signed by the provider over the raw body, no token -------------------------
    Operation("POST", "/api/v1/notification/receipts/<string:provider>", "notification", "receipts", None,
              "Delivery receipts from a provider, signed with its secret over the raw body. No token.",
              NOTIFICATION, reply=s.ReceiptsResultSchema, custom=True, name="notification_receipts",
              problems=(401, 404, 413, 422),
              extra={"parameters": SIGNATURE, "requestBody": {
                  "required": True, "content": {"application/json": {"schema": s.ReceiptsSchema}}},
                  "responses": {"401": {"description": "the signature is missing or wrong",
                                        "content": {"application/problem+json": {"schema": "Problem"}}},
                                "404": {"description": "no provider of that name",
                                        "content": {"application/problem+json": {"schema": "Problem"}}},
                                "413": {"description": "the body is larger than 1 MB",
                                        "content": {"application/problem+json": {"schema": "Problem"}}}}}),
]

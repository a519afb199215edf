"""Request and reply shapes of the notification service. Its HTTP operations (api.py) load requests and dump
replies with them, and the gateway's OpenAPI document is built from the same classes."""
import re

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from services.notification.rules import CHANNELS, PRIORITIES
from shared.fields import CLIENT_ID, CODE, ID, Text, one_of, page

TITLE = validate.Length(min=1, max=100, error="must be 1 to 100 characters")
MESSAGE = validate.Length(min=1, max=1000, error="must be 1 to 1000 characters")
REASON = validate.Length(min=1, max=500, error="must be 1 to 500 characters")
PREFIX = CODE + [validate.Length(min=2, max=15, error="a node code prefix has 2 to 15 digits")]
TAG = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}\Z", error="2 to 40 lowercase letters, digits or _")
ROLES = ("party_member", "community_worker")
CATEGORIES = ("meetings", "matters", "points", "organizations", "emergency", "general")
BROADCAST_CHANNELS = ("inbox", "wechat", "sms", "email", "webhook")
MOBILE = re.compile(r"^1[3-9][0-9]{9}\Z")
OPENID = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
EMAIL = validate.Email(error="must be an email address")


def _channels(**kw):
    return fields.List(fields.String(validate=one_of(BROADCAST_CHANNELS)), validate=validate.Length(min=1, max=5), **kw)


# -- broadcasts ----------------------------------------------------------------------------------

class BroadcastDraftSchema(Schema):
    prefix = fields.String(required=True, validate=PREFIX,
                           metadata={"description": "the area: a street, community or grid code (or a prefix of one)",
                                     "example": "310110012003"})
    title = Text(required=True, validate=TITLE, metadata={"example": "台风“梅花”防御通知"})
    message = Text(required=True, validate=MESSAGE,
                   metadata={"example": "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。"})
    channels = _channels(load_default=lambda: ["inbox", "wechat", "sms"])
    request_id = fields.String(validate=CLIENT_ID, metadata={"description": "retrying with it returns the first"})


class BroadcastEditSchema(Schema):
    prefix = fields.String(validate=PREFIX)
    title = Text(validate=TITLE)
    message = Text(validate=MESSAGE)
    channels = _channels()

    @validates_schema
    def _something(self, data, **_):
        if not data:
            raise ValidationError("give at least one of prefix, title, message, channels", "_schema")


class BroadcastReasonSchema(Schema):
    reason = Text(required=True, validate=REASON)


class BroadcastListQuerySchema(Schema):
    under = fields.String(validate=PREFIX)
    status = fields.String(validate=one_of(("draft", "pending_approval", "approved", "rejected", "sending", "sent",
                                            "cancelled")))
    limit, after = page()


class DirectiveSchema(Schema):
    """An emergency broadcast ordered from above, already approved there by two people."""
    id = fields.String(required=True, validate=CLIENT_ID)
    prefix = fields.String(required=True, validate=PREFIX)
    title = Text(required=True, validate=TITLE)
    message = Text(required=True, validate=MESSAGE)
    channels = _channels(load_default=lambda: ["inbox", "wechat", "sms"])
    issued_by = Text(required=True, validate=validate.Length(min=1, max=200))
    approved_by = Text(required=True, validate=validate.Length(min=1, max=200))

    class Meta:
        unknown = "exclude"


# -- targeted notices ------------------------------------------------------------------------------

class NoticeCreateSchema(Schema):
    prefix = fields.String(required=True, validate=PREFIX)
    tags = fields.List(fields.String(validate=TAG), load_default=list, validate=validate.Length(max=10),
                       metadata={"description": "any of these care tags, e.g. elderly_alone"})
    roles = fields.List(fields.String(validate=one_of(ROLES)), load_default=list)
    title = Text(required=True, validate=TITLE, metadata={"example": "社区义诊通知"})
    message = Text(required=True, validate=MESSAGE, metadata={"example": "本周六上午9点在居委会开展义诊，欢迎参加。"})
    category = fields.String(load_default="general", validate=one_of(c for c in CATEGORIES if c != "emergency"))
    priority = fields.String(load_default="normal", validate=one_of(("digest", "normal", "urgent")),
                             metadata={"description": "critical is for emergency broadcasts, which need approval"})
    channels = _channels(load_default=lambda: ["inbox", "wechat"])
    request_id = fields.String(required=True, validate=CLIENT_ID,
                               metadata={"description": "the notice's idempotency key: the same id never sends twice"})


class OrganizationNoticeCreateSchema(Schema):
    notice = Text(required=True, validate=MESSAGE, metadata={"example": "周六上午8点在小区北门集合巡逻。"})
    channels = _channels(load_default=lambda: ["inbox", "wechat"])
    request_id = fields.String(required=True, validate=CLIENT_ID)


# -- a subscriber's own settings -------------------------------------------------------------------

class SubscriberChannelSetSchema(Schema):
    channel = fields.String(required=True, validate=one_of(("sms", "wechat", "email", "webhook")))
    address = fields.String(required=True, validate=validate.Length(min=3, max=500))

    @validates_schema
    def _address(self, data, **_):
        ch, a = data.get("channel"), data.get("address")
        if ch is None or a is None:
            return
        if ch == "sms" and not MOBILE.match(a):
            raise ValidationError("must be a mainland mobile number (11 digits starting with 1)", "address")
        if ch == "wechat" and not OPENID.match(a):
            raise ValidationError("must be a WeChat openid (16 to 64 letters, digits, - or _)", "address")
        if ch == "email":
            try:
                EMAIL(a)
            except ValidationError as exc:
                raise ValidationError(exc.messages, "address")
        if ch == "webhook" and not a.startswith("https://") and not a.startswith("http://"):
            raise ValidationError("must be an http(s) URL", "address")


class PreferencesSchema(Schema):
    opted_out = fields.List(fields.String(), load_default=list, validate=validate.Length(max=60),
                            metadata={"description": "category:channel pairs, or category:* for every channel; "
                                                     "emergency notices are critical and always arrive",
                                      "example": ["points:sms", "organizations:*"]})
    quiet_start = fields.Time(allow_none=True, load_default=None, metadata={"example": "22:00"})
    quiet_end = fields.Time(allow_none=True, load_default=None, metadata={"example": "07:00"})
    locale = fields.String(load_default="zh", validate=one_of(("zh", "en")))

    @validates("opted_out")
    def _pairs(self, value, **_):
        for item in value:
            category, _, channel = item.partition(":")
            if category not in CATEGORIES or channel not in CHANNELS + ("*",):
                raise ValidationError(f"{item!r} is not category:channel (categories {', '.join(CATEGORIES)}; "
                                      f"channels {', '.join(CHANNELS)} or *)")
            if category == "emergency":
                raise ValidationError("emergency notices cannot be opted out of")

    @validates_schema
    def _quiet(self, data, **_):
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            raise ValidationError("give both quiet_start and quiet_end, or neither", "quiet_end")


class InboxQuerySchema(Schema):
    unread = fields.Boolean(load_default=False)
    limit, after = page()


class ReceiptSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200),
                       metadata={"description": "the provider's id for the message"})
    status = fields.String(required=True, validate=one_of(("delivered", "failed", "read")))
    error = fields.String(validate=validate.Length(max=500))

    class Meta:
        unknown = "exclude"


class ReceiptsSchema(Schema):
    receipts = fields.List(fields.Nested(ReceiptSchema), required=True, validate=validate.Length(min=1, max=1000))

    class Meta:
        unknown = "exclude"


class DeliveryQuerySchema(Schema):
    status = fields.String(validate=one_of(("held", "queued", "sent", "delivered", "failed", "read", "cancelled",
                                            "bundled")))
    limit, after = page()


class ReachQuerySchema(Schema):
    """The audience `GET /notices/reach` counts: lists given comma-separated or repeated."""
    prefix = fields.String(validate=PREFIX, metadata={
        "description": "the area: a node code (prefix) inside the token's scope (default: the token's scope); "
                       "403 outside it"})
    tags = fields.List(fields.String(metadata={"pattern": "^[a-z][a-z0-9_]{1,39}$"}), load_default=list,
                       metadata={"description": "any of these care tags (comma-separated or repeated)",
                                 "maxItems": 10})
    roles = fields.List(fields.String(metadata={"enum": list(ROLES)}), load_default=list,
                        metadata={"description": "any of these roles (comma-separated or repeated)"})

    # Checked on the list, not each item, so a problem names `tags` or `roles`, not `tags.3`; the
    # items' metadata documents the same rules.
    @validates("tags")
    def _tags(self, value, **_):
        if len(value) > 10:
            raise ValidationError("at most 10 tags")
        if any(not isinstance(t, str) or not re.fullmatch(r"[a-z][a-z0-9_]{1,39}", t) for t in value):
            raise ValidationError("2 to 40 lowercase letters, digits or _, starting with a letter")

    @validates("roles")
    def _roles(self, value, **_):
        if any(r not in ROLES for r in value):
            raise ValidationError(f"must be among: {', '.join(ROLES)}")


class TemplateTextSchema(Schema):
    subject = Text(required=True, metadata={"description": "Jinja2, at most 200 characters"})
    body = Text(required=True, metadata={"description": "Jinja2, at most 5000 characters"})

    class Meta:
        unknown = "exclude"


class NotificationTemplateSaveSchema(Schema):
    """A template's new version; templates.save checks the rest (non-blank, lengths, that it renders)."""
    category = fields.String(metadata={"description": "for a new template: what its messages may refer to "
                                                      "(meetings, matters, points, organizations, emergency, "
                                                      "general, digest); kept for an existing one"})
    zh = fields.Nested(TemplateTextSchema, required=True)
    en = fields.Nested(TemplateTextSchema)

    class Meta:
        unknown = "exclude"


# -- replies: what each operation sends, and nothing else (the gateway dumps every reply with these) ----------

class BroadcastVersionSchema(Schema):
    version = fields.Integer()
    prefix = fields.String()
    title = fields.String()
    message = fields.String()
    channels = fields.List(fields.String())
    actor = fields.String()
    created_at = fields.DateTime()


class BroadcastLogEntrySchema(Schema):
    at = fields.DateTime()
    status = fields.String()
    version = fields.Integer()
    actor = fields.String()
    reason = fields.String(allow_none=True)


class RollupTotalSchema(Schema):
    # null only where the small-cell rule hides a count (services/aggregator/suppression.py) from a
    # token that sees aggregates only; broadcast readers' tokens see every count.
    targeted = fields.Integer(allow_none=True, metadata={"description": "people the notice was for"})
    reached = fields.Integer(allow_none=True, metadata={"description": "people sent to on at least one channel"})
    read = fields.Integer(allow_none=True, metadata={"description": "people who opened it"})


class RollupCommunitySchema(RollupTotalSchema):
    community_code = fields.String()


class RollupStreetSchema(RollupTotalSchema):
    street_code = fields.String()


class NoticeRollupSchema(Schema):
    source = fields.String(metadata={"description": "deliveries: this instance's own deliveries (a street); rollups: "
                                                   "at a district or city, the counts the streets reported under "
                                                   "the directive (`sent_down_as`), from the aggregator's roll-ups; "
                                                   "unavailable: the aggregator did not answer in time, so the "
                                                   "streets' figures are missing (GET only)"})
    streets = fields.List(fields.Nested(RollupStreetSchema), metadata={"description": "per street (from the "
                                                                                      "roll-ups; [] at a street)"})
    communities = fields.List(fields.Nested(RollupCommunitySchema))
    total = fields.Nested(RollupTotalSchema)
    channels = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                           metadata={"description": "channel -> delivery status -> count, of this instance's own "
                                                    "deliveries"})


class BroadcastSchema(Schema):
    id = fields.Integer()
    request_id = fields.String(allow_none=True)
    directive_id = fields.String(allow_none=True, metadata={"description": "set when ordered from above"})
    prefix = fields.String()
    title = fields.String()
    message = fields.String()
    channels = fields.List(fields.String())
    status = fields.String(metadata={"description": "draft, pending_approval, approved, rejected, sending, sent "
                                                    "or cancelled"})
    version = fields.Integer()
    created_by = fields.String()
    edited_by = fields.String()
    approved_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    notice_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sent_down_as = fields.String(allow_none=True, metadata={
        "description": "at a district or city once approved: the directive id it went down to the streets "
                       "under; their acknowledgements are counted under it (the roll-up's `streets`)"})


class BroadcastDetailSchema(BroadcastSchema):
    versions = fields.List(fields.Nested(BroadcastVersionSchema))
    log = fields.List(fields.Nested(BroadcastLogEntrySchema))
    rollup = fields.Nested(NoticeRollupSchema, allow_none=True)
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first broadcast"})
    deliveries_cancelled = fields.Integer(metadata={"description": "on cancel: deliveries stopped"})
    deliveries_queued = fields.Integer(metadata={"description": "on approval: deliveries queued here (none at a "
                                                               "district or city, whose streets deliver it)"})


class DeliverySchema(Schema):
    id = fields.Integer()
    resident_id = fields.Integer()
    community_code = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    provider = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class NoticeSchema(Schema):
    id = fields.Integer()
    trigger_key = fields.String()
    kind = fields.String()
    category = fields.String()
    priority = fields.String()
    template_code = fields.String()
    template_version = fields.Integer()
    context = fields.Dict()
    target = fields.Dict(allow_none=True)
    channels = fields.List(fields.String(), metadata={"description": "the channels it was sent on"})
    scope_code = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()
    rollup = fields.Nested(NoticeRollupSchema)


class NoticeResultSchema(NoticeSchema):
    deliveries_added = fields.Integer()
    replayed = fields.Boolean(metadata={"description": "true when the request id was seen before; the answer "
                                                      "is then 200 with the first notice"})


class SubscriberSchema(Schema):
    resident_id = fields.Integer()
    name = fields.String()
    community_code = fields.String()
    grid_code = fields.String(allow_none=True)
    household_id = fields.Integer(allow_none=True)
    tags = fields.List(fields.String())
    status = fields.String()
    version = fields.Integer()
    roles = fields.List(fields.String())
    organization_ids = fields.List(fields.Integer())


class SubscriberChannelSchema(Schema):
    channel = fields.String()
    address = fields.String(metadata={"description": "masked"})
    source = fields.String(metadata={"description": "registry (the phone on the register) or given"})
    updated_at = fields.DateTime()


class NotificationPreferencesSchema(Schema):
    opted_out = fields.List(fields.String(), metadata={"description": "category:channel pairs, or category:*"})
    quiet_start = fields.String(allow_none=True, metadata={"description": "HH:MM", "example": "22:00"})
    quiet_end = fields.String(allow_none=True, metadata={"description": "HH:MM", "example": "07:00"})
    locale = fields.String()


class InboxItemSchema(Schema):
    id = fields.Integer(metadata={"description": "the delivery id, to mark it read"})
    status = fields.String()
    category = fields.String()
    priority = fields.String()
    subject = fields.String()
    body = fields.String()
    at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class InboxSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema))
    unread = fields.Integer()
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class InboxReadSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    replayed = fields.Boolean(metadata={"description": "true when it was read already (it counts once)"})


class TemplateVersionSchema(Schema):
    version = fields.Integer()
    locale = fields.String()
    subject = fields.String()
    body = fields.String()
    actor = fields.String()
    created_at = fields.DateTime()


class NotificationTemplateSchema(Schema):
    code = fields.String()
    category = fields.String()
    version = fields.Integer(metadata={"description": "the latest version"})
    created_at = fields.DateTime()
    versions = fields.List(fields.Nested(TemplateVersionSchema))


class ReceiptsResultSchema(Schema):
    applied = fields.Integer()
    ignored = fields.Integer(metadata={"description": "receipts that would move a delivery backwards"})
    waiting = fields.Integer(metadata={"description": "provider ids with no delivery yet (the message may still be "
                                                      "on its way); kept for a day, applied when it is recorded"})


__all__ = ["BroadcastDraftSchema", "BroadcastEditSchema", "BroadcastReasonSchema", "BroadcastListQuerySchema",
           "DirectiveSchema", "NoticeCreateSchema", "OrganizationNoticeCreateSchema", "SubscriberChannelSetSchema",
           "PreferencesSchema", "InboxQuerySchema", "ReceiptsSchema", "DeliveryQuerySchema", "ReachQuerySchema",
           "NotificationTemplateSaveSchema", "BroadcastSchema", "BroadcastDetailSchema", "DeliverySchema",
           "NoticeSchema", "NoticeResultSchema", "SubscriberSchema", "SubscriberChannelSchema",
           "NotificationPreferencesSchema", "InboxSchema", "InboxReadSchema", "NotificationTemplateSchema",
           "ReceiptsResultSchema", "ID", "PRIORITIES"]

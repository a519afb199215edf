"""Request and response shapes of the notification service; the gateway's OpenAPI document is built from them."""
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


class ReasonSchema(Schema):
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
    issued_by = fields.String(required=True, validate=validate.Length(min=1, max=200))
    approved_by = fields.String(required=True, validate=validate.Length(min=1, max=200))

    class Meta:
        unknown = "exclude"


# -- targeted notices ------------------------------------------------------------------------------

class NoticeSchema(Schema):
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


class OrganizationNoticeSchema(Schema):
    notice = Text(required=True, validate=MESSAGE, metadata={"example": "周六上午8点在小区北门集合巡逻。"})
    channels = _channels(load_default=lambda: ["inbox", "wechat"])
    request_id = fields.String(required=True, validate=CLIENT_ID)


# -- a subscriber's own settings -------------------------------------------------------------------

class ChannelAddressSchema(Schema):
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


__all__ = ["BroadcastDraftSchema", "BroadcastEditSchema", "ReasonSchema", "BroadcastListQuerySchema",
           "DirectiveSchema", "NoticeSchema", "OrganizationNoticeSchema", "ChannelAddressSchema",
           "PreferencesSchema", "InboxQuerySchema", "ReceiptsSchema", "DeliveryQuerySchema", "ID", "PRIORITIES"]

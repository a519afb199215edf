"""The event envelope every Linli event travels in (DESIGN.md §3, §7).

Events are past-tense snake_case and owned by their publisher; additive changes
keep the version. Consumers load with `unknown=EXCLUDE` so a newer publisher can
add fields without breaking an older consumer.
"""
import uuid
from datetime import datetime, timezone

from marshmallow import EXCLUDE, Schema, fields, validate

EVENT_TYPE = validate.Regexp(r"^[a-z][a-z0-9_]*$", error="event types are snake_case")


class SourceSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    service = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["city", "district", "street"]))
    node_code = fields.String(required=True, validate=validate.Regexp(r"^\d{4,15}$"))
    instance = fields.String(required=True)


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=EVENT_TYPE)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True)
    source = fields.Nested(SourceSchema, required=True)
    correlation_id = fields.String(load_default=None, allow_none=True)
    payload = fields.Dict(required=True)


_schema = EnvelopeSchema()


def source_from_config(service, config):
    return {"service": service, "level": config["LEVEL"], "node_code": config["NODE_CODE"],
            "instance": config["INSTANCE"]}


def make(event_type, payload, source, correlation_id=None, version=1, event_id=None, check=True):
    """Build a JSON-ready envelope; validates so a bad event fails at the writer.

    Bulk writers that build thousands of envelopes of one known shape pass
    check=False after checking one of them.
    """
    data = {
        "event_id": str(event_id or uuid.uuid4()),
        "type": event_type,
        "version": version,
        "occurred_at": datetime.now(timezone.utc).isoformat(),
        "source": source,
        "correlation_id": correlation_id,
        "payload": payload,
    }
    if check:
        _schema.load(data)  # raises ValidationError on a malformed event
    return data


def load(data):
    """Validate an incoming envelope; returns typed values (UUID, datetime)."""
    return _schema.load(data)

"""The gateway's own HTTP schemas: staff sign-in, sessions and accounts (the rest belong to the services)."""
from marshmallow import Schema, fields, validate

from services.gateway.accounts import ACCOUNT_ROLES, MAX_PASSWORD, USERNAME_RE
from shared.api import page_schema
from shared.fields import CODE, ID, Text, one_of


class SignInSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    # Long enough for any password an account may have; the rules apply when one is set, not here.
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    node_prefix = fields.String(required=True)
    organization_id = fields.Integer(allow_none=True)
    must_change_password = fields.Boolean(required=True)
    disabled = fields.Boolean(required=True)
    locked_until = fields.DateTime(allow_none=True, metadata={"description": "set while sign-in is locked after failures"})
    last_sign_in_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class InstanceSchema(Schema):
    code = fields.String(required=True)
    level = fields.String(required=True)
    name = fields.String(allow_none=True)


class SessionSchema(Schema):
    account = fields.Nested(AccountSchema, required=True)
    permissions = fields.List(fields.String(), required=True,
                              metadata={"description": "what the account's role may do (a console offers only these)"})
    csrf_token = fields.String(required=True, metadata={"description": "send as X-CSRF-Token on every POST, PUT, "
                                                                        "PATCH and DELETE made with the session cookie"})
    expires_at = fields.DateTime(required=True, metadata={"description": "the session's end, however active"})
    idle_minutes = fields.Integer(required=True, metadata={"description": "it also ends after this long unused"})
    instance = fields.Nested(InstanceSchema, required=True)


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    new_password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_PASSWORD))


class AccountCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Regexp(
        USERNAME_RE.pattern, error="3 to 40 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"))
    display_name = Text(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=one_of(ACCOUNT_ROLES))
    node_prefix = fields.String(validate=CODE, metadata={"description": "default: the creator's own scope"})
    organization_id = fields.Integer(allow_none=True, validate=ID)
    password = fields.String(validate=validate.Length(min=1, max=MAX_PASSWORD),
                             metadata={"description": "omit to have one generated and shown once"})


class AccountCreatedSchema(AccountSchema):
    password = fields.String(metadata={"description": "the generated first password, shown once"})


class PasswordResetSchema(Schema):
    password = fields.String(validate=validate.Length(min=1, max=MAX_PASSWORD),
                             metadata={"description": "omit to have one generated and shown once"})


class PasswordResetResultSchema(Schema):
    account = fields.Nested(AccountSchema, required=True)
    password = fields.String(metadata={"description": "the generated password, shown once"})


class SignInEventQuerySchema(Schema):
    account_id = fields.Integer(validate=ID)
    after = fields.Integer(validate=ID, metadata={"description": "the `next` of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class SignInEventSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    event = fields.String(required=True, metadata={"description": "signed_in, failed, locked, refused_locked, "
                                                                  "refused_address, refused_disabled, signed_out, "
                                                                  "password_changed, password_reset, created, "
                                                                  "disabled, enabled"})
    username = fields.String(required=True)
    account_id = fields.Integer(allow_none=True)
    address = fields.String(required=True)
    actor = fields.String(required=True)


SignInEventPageSchema = page_schema(SignInEventSchema, fields.Integer(allow_none=True), name="SignInEventPage")


# -- the operator's view (services/gateway/operations.py) --------------------------------------------------

class OutboxStateSchema(Schema):
    service = fields.String()
    backlog = fields.Integer(metadata={"description": "events written and not yet published"})
    oldest_seconds = fields.Float(metadata={"description": "age of the oldest unpublished event (0: none)"})
    retrying = fields.Integer()
    sent = fields.Integer(metadata={"description": "published and kept until pruned"})


class AppliedMigrationSchema(Schema):
    version = fields.String()
    applied_at = fields.DateTime()


class MigrationStateSchema(Schema):
    service = fields.String()
    applied = fields.List(fields.Nested(AppliedMigrationSchema))
    pending = fields.List(fields.String(), metadata={"description": "shipped with this code, not applied yet"})
    problem = fields.String(allow_none=True, metadata={
        "description": "what stops `linli migrate` for this service (a file changed after it was applied)"})


class QueueDepthSchema(Schema):
    queue = fields.String()
    messages = fields.Integer()


class LinkSchema(Schema):
    upstream = fields.String(allow_none=True)
    exchange = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "running, starting, error, ..."})
    error = fields.String(allow_none=True)
    direction = fields.String(metadata={"description": "child (federated from a child), parent, other"})


class ChildStateSchema(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)
    key_fingerprint = fields.String(allow_none=True, metadata={
        "description": "of the public key registered for it (`linli child add`): compare with its own view"})
    link = fields.String(metadata={"description": "running, starting, down, absent, unknown"})
    last_fact_at = fields.DateTime(allow_none=True)


class BrokerStateSchema(Schema):
    reachable = fields.Boolean()
    detail = fields.String(allow_none=True)


class InstanceStateSchema(Schema):
    code = fields.String()
    level = fields.String()
    key_fingerprint = fields.String(allow_none=True, metadata={"description": "this instance's signing key: its "
                                                                              "parent shows the same for it"})
    checked_at = fields.DateTime()
    outboxes = fields.List(fields.Nested(OutboxStateSchema))
    migrations = fields.List(fields.Nested(MigrationStateSchema))
    broker = fields.Nested(BrokerStateSchema)
    dead_letters = fields.List(fields.Nested(QueueDepthSchema), metadata={
        "description": "messages refused after their deliveries ran out, per dead-letter queue"})
    unrouted = fields.List(fields.Nested(QueueDepthSchema), metadata={
        "description": "events no queue took, kept per service"})
    links = fields.List(fields.Nested(LinkSchema))
    parent_link = fields.String(metadata={"description": "running, starting, down, absent (no parent), unknown"})
    children = fields.List(fields.Nested(ChildStateSchema))


class TokenSchema(Schema):
    token_id = fields.String()
    name = fields.String()
    role = fields.String()
    node_prefix = fields.String()
    organization_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    expired = fields.Boolean()
    state = fields.String(metadata={"description": "active, expired or revoked"})


class TokenPathSchema(Schema):
    token_id = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{8}\Z"),
                             metadata={"description": "the 8 hex digits after lnl_ in the token"})

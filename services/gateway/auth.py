"""API tokens and what each role may do where: pure rules, no I/O.

A token is shown once and stored only as its SHA-256 (tokens are 256-bit
random, so a slow hash adds nothing). Each token is scoped to a node-code
prefix: it reaches that node and everything below it, nothing beside or above.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass

from shared.errors import Forbidden, Unauthorized, ValidationFailed

ROLES = ("community_worker", "street_admin", "district_analyst", "department_feed", "operator",
         "organization_leader", "resident")

PERMISSIONS = {
    # A resident's token is for their own notices and settings (the /me routes) and nothing else.
    "nodes:read": set(ROLES) - {"resident"},
    "nodes:write": {"street_admin", "operator"},
    # Personal records: only the people who keep the register. Analysts and feeds see aggregates only.
    "people:read": {"community_worker", "street_admin"},
    "people:write": {"community_worker", "street_admin"},
    "audit:read": {"street_admin", "operator"},
    # Organisations name their members; analysts get the counts from facts instead.
    "orgs:read": {"community_worker", "street_admin"},
    "orgs:write": {"community_worker", "street_admin"},
    # The street appoints and assesses its community workers; a community may read its own.
    "workers:read": {"community_worker", "street_admin"},
    "workers:write": {"street_admin"},
    # Service points. An organisation's leader logs and verifies its own activities; the points
    # service checks the organisation of each record, as it checks every record's community.
    "points:read": {"community_worker", "street_admin", "organization_leader"},
    "points:write": {"community_worker", "street_admin", "organization_leader"},
    "points:verify": {"community_worker", "street_admin", "organization_leader"},
    # Reversing a posted record corrects the ledger: the register's keepers only.
    "points:correct": {"community_worker", "street_admin"},
    # Categories, rule versions, rewards and the year-end snapshot are the street's decisions.
    "points:admin": {"street_admin"},
    # Consultation (三上三下): matters name their raisers and backers, meetings their participants, so
    # only the register's keepers handle them; the service checks each record's community.
    "consultation:read": {"community_worker", "street_admin"},
    "consultation:write": {"community_worker", "street_admin"},
    # Screening and settlement deadlines bind every community of the street.
    "consultation:admin": {"street_admin"},
    # Figures per community and category, unsuppressed: the register's keepers' working view. An
    # analyst reads the same figures from the roll-ups' headlines, under the one small-cell rule
    # (aggregator/suppression.py); giving them these too would show the counts that rule hides.
    "consultation:figures": {"community_worker", "street_admin"},
    # Notification: subscribers, notices, broadcasts and their deliveries name residents, so only the
    # register's keepers read them; the service checks each one's community against the token's scope.
    "notification:read": {"community_worker", "street_admin"},
    # A worker acting for a resident of their community: channels, preferences, marking read.
    "notification:write": {"community_worker", "street_admin"},
    "notification:send": {"community_worker", "street_admin"},
    # An organisation's leader notifies their own organisation's members (the service checks which).
    "notification:organization": {"organization_leader", "community_worker", "street_admin"},
    # Emergency broadcasts: drafted, edited, submitted and cancelled by workers; a second person, a
    # street admin, approves or rejects (the service refuses the author approving their own).
    "notification:broadcast": {"community_worker", "street_admin"},
    "notification:approve": {"street_admin"},
    # Message templates bind every community of the street.
    "notification:admin": {"street_admin"},
    # A resident's own inbox, preferences and channels, by the resident_id their token names.
    "notification:self": {"resident"},
    # Aggregator: roll-ups and the facts feed are de-identified figures of the subtree, for superior
    # departments (small counts are suppressed for analysts' and feeds' tokens by the service).
    "aggregates:read": {"district_analyst", "department_feed", "street_admin", "operator"},
    # The facts one by one: a department's feed, not an analyst's (who reads aggregates only, DESIGN §5).
    "aggregates:feed": {"department_feed", "street_admin", "operator"},
    # Child instances (their AMQP addresses) and rebuilding the roll-ups from the facts log.
    "aggregates:admin": {"street_admin", "operator"},
    # Staff accounts of the console (sign-in, reset, disable), inside the admin's own scope.
    "accounts:admin": {"street_admin", "operator"},
    # The operator view: outboxes, migrations, queues, links and keys of the instance.
    "instance:read": {"street_admin", "operator"},
}

TOKEN_RE = re.compile(r"^lnl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    node_prefix: str
    organization_id: int | None = None  # set exactly for an organization_leader: the one they lead
    resident_id: int | None = None  # set exactly for a resident: themselves
    # "token" (a machine's bearer token, token_id its id) or "account" (a person signed in to the
    # console with a session cookie, token_id their user name): services audit either as the actor.
    kind: str = "token"

    @property
    def actor(self):
        return f"{self.kind}:{self.token_id}:{self.name}"


def new_token():
    """(token_id, token) — the token is shown once; only its hash is kept."""
    token_id = secrets.token_hex(4)
    return token_id, f"lnl_{token_id}_{secrets.token_urlsafe(32)}"


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(header):
    """The token from an Authorization header, or raise 401."""
    if not header:
        raise Unauthorized("an API token is required", {"Authorization": ["send 'Authorization: Bearer <token>'"]})
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not TOKEN_RE.match(token):
        raise Unauthorized("the API token is malformed", {"Authorization": ["expected 'Bearer lnl_…'"]})
    return token


def _positive_id(value):
    """An id as the database keeps them: a bigint from 1 on."""
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= 2 ** 63 - 1


def validate_grant(name, role, node_prefix, instance_code, organization_id=None, resident_id=None):
    errors = {}
    if not name or len(name) > 100:
        errors["name"] = ["must be 1 to 100 characters"]
    if role not in ROLES:
        errors["role"] = [f"must be one of {', '.join(ROLES)}"]
    if not node_prefix.isdigit() or len(node_prefix) not in (4, 6, 9, 12, 15):
        errors["node_prefix"] = ["must be a node code (4, 6, 9, 12 or 15 digits)"]
    elif not (node_prefix.startswith(instance_code) or instance_code.startswith(node_prefix)):
        errors["node_prefix"] = [f"must lie inside this instance ({instance_code})"]
    if role == "organization_leader":
        if organization_id is None:
            errors["organization_id"] = ["required for an organization_leader: the organisation they lead"]
        elif not _positive_id(organization_id):
            errors["organization_id"] = ["must be a positive integer"]
    elif organization_id is not None:
        errors["organization_id"] = ["only an organization_leader's token names an organisation"]
    if role == "resident":
        if resident_id is None:
            errors["resident_id"] = ["required for a resident: the resident the token is for"]
        elif not _positive_id(resident_id):
            errors["resident_id"] = ["must be a positive integer"]
        if "node_prefix" not in errors and len(node_prefix) != 12:
            errors["node_prefix"] = ["a resident's token reaches their community: a 12-digit code"]
    elif resident_id is not None:
        errors["resident_id"] = ["only a resident's token names a resident"]
    if errors:
        raise ValidationFailed("the token cannot be created", errors)


def authorize(principal, permission, node_code=None, field="code"):
    """Raise 403 unless the principal's role has `permission` and `node_code` is in its scope."""
    if principal.role not in PERMISSIONS[permission]:
        raise Forbidden(f"role {principal.role} may not do {permission}", {"role": [f"{permission} is not allowed"]})
    if node_code is not None and not node_code.startswith(principal.node_prefix):
        raise Forbidden(f"{node_code} lies outside this token's scope {principal.node_prefix}",
                        {field: [f"outside scope {principal.node_prefix}"]})

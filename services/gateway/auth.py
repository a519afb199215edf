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
         "organization_leader")

PERMISSIONS = {
    "nodes:read": set(ROLES),
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
    # Figures are aggregates with no one named, so analysts may have them as well.
    "consultation:figures": {"community_worker", "street_admin", "district_analyst"},
}

TOKEN_RE = re.compile(r"^lnl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    node_prefix: str
    organization_id: int | None = None  # set exactly for an organization_leader: the one they lead

    @property
    def actor(self):
        return f"token:{self.token_id}:{self.name}"


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


def validate_grant(name, role, node_prefix, instance_code, organization_id=None):
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
        elif isinstance(organization_id, bool) or not isinstance(organization_id, int) or organization_id < 1:
            errors["organization_id"] = ["must be a positive integer"]
    elif organization_id is not None:
        errors["organization_id"] = ["only an organization_leader's token names an organisation"]
    if errors:
        raise ValidationFailed("the token cannot be created", errors)


def authorize(principal, permission, node_code=None, field="code"):
    """Raise 403 unless the principal's role has `permission` and `node_code` is in its scope."""
    if principal.role not in PERMISSIONS[permission]:
        raise Forbidden(f"role {principal.role} may not do {permission}", {"role": [f"{permission} is not allowed"]})
    if node_code is not None and not node_code.startswith(principal.node_prefix):
        raise Forbidden(f"{node_code} lies outside this token's scope {principal.node_prefix}",
                        {field: [f"outside scope {principal.node_prefix}"]})

"""Staff accounts and console sessions: the rules, without I/O.

People sign in with a user name and password and get a session cookie; machines keep their bearer
tokens (auth.py). A password is kept only as an argon2id hash (argon2-cffi's defaults, the OWASP
first choice). Repeated failures lock the account for a while, and failures from one address are
limited across accounts, so guessing is slow both for one account and for many. A session ends
after a spell of idleness, after a fixed length whatever is done, and at sign-out.
"""
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.gateway.auth import ROLES
from shared.errors import ValidationFailed

# Who may have an account: people. A department's feed is a machine (a token); a resident uses the
# residents' channels, not the staff console.
ACCOUNT_ROLES = tuple(r for r in ROLES if r not in ("department_feed", "resident"))
# The roles an admin gives and manages in the console. Street admins and operators are made from the
# command line, by whoever runs the instance: an admin who could make another admin could approve their
# own broadcasts under a second name (the two-person rule) or take over a peer's account.
MANAGED_ROLES = ("community_worker", "organization_leader", "district_analyst")

USERNAME_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{2,39}\Z")
MIN_PASSWORD = 10
MAX_PASSWORD = 128   # argon2 takes any length; a megabyte "password" would only cost us time

MAX_FAILURES = 5                      # consecutive failures before the account is locked ...
LOCK_FOR = timedelta(minutes=15)      # ... for this long
ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_MAX_FAILURES = 20             # failures from one address in the window, whatever the account

COOKIE = "linli_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
TOUCH_EVERY = timedelta(seconds=60)   # a session's last_seen is written at most this often

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): the library's default takes 64 MiB a hash, and
# a gateway pod hashing for several sign-ins at once would outgrow its memory limit.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user name is unknown, so an unknown name costs as long as a known one.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password):
    return _hasher.hash(password)


def verify_password(password_hash, password):
    """True if `password` matches; a malformed stored hash is a mismatch, never an error."""
    try:
        return _hasher.verify(password_hash or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    return _hasher.check_needs_rehash(password_hash)


def normal_username(value):
    return value.strip().lower() if isinstance(value, str) else value


def name_key(secret, username):
    """A keyed hash of a user name no account has: failures against it are counted (so an unknown name
    locks as a known one does, and locking says nothing of which names exist) without keeping what was
    typed, which is sometimes a password typed into the wrong box."""
    return hmac.new(str(secret).encode(), username.encode(), hashlib.sha256).hexdigest()


def password_problems(password, username=""):
    """What is wrong with a new password, in words a person can act on; [] if it will do."""
    if not isinstance(password, str):
        return ["must be text"]
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        problems.append(f"must be at most {MAX_PASSWORD} characters")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        problems.append("must mix at least three of: lower case, upper case, digits, symbols")
    if len(set(password)) < 5:
        problems.append("must not repeat a few characters")
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append("must not contain the user name")
    return problems


def check_new_account(username, display_name, role, node_prefix, organization_id, password, caller_scope,
                      roles=MANAGED_ROLES):
    """Refuse, field by field, an account of `roles` that a caller of scope `caller_scope` may not create
    (the command line may create every role of ACCOUNT_ROLES; the console only MANAGED_ROLES)."""
    errors = {}
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        errors["username"] = ["3 to 40 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"]
    if not isinstance(display_name, str) or not display_name.strip() or len(display_name) > 100:
        errors["display_name"] = ["must be 1 to 100 characters"]
    if role not in roles:
        errors["role"] = [f"must be one of {', '.join(roles)}"
                          + ("; street admins and operators are made with `linli account create`"
                             if role in ACCOUNT_ROLES else "")]
    if not isinstance(node_prefix, str) or not node_prefix.isdigit() or len(node_prefix) not in (4, 6, 9, 12, 15):
        errors["node_prefix"] = ["must be a node code (4, 6, 9, 12 or 15 digits)"]
    elif not node_prefix.startswith(caller_scope):
        errors["node_prefix"] = [f"must lie inside your own scope {caller_scope}"]
    if role == "organization_leader" and organization_id is None:
        errors["organization_id"] = ["required for an organization_leader: the organisation they lead"]
    elif role != "organization_leader" and organization_id is not None:
        errors["organization_id"] = ["only an organization_leader's account names an organisation"]
    if password is not None:
        problems = password_problems(password, username if isinstance(username, str) else "")
        if problems:
            errors["password"] = problems
    if errors:
        raise ValidationFailed("the account cannot be created", errors)


def trusted_networks(text):
    """TRUSTED_PROXIES ("10.0.0.0/8, 192.168.1.5") as networks; a bad entry is a config error."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in (text or "").split(",") if part.strip())


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(remote, forwarded, trusted):
    """The caller's address, as the sign-in limits count it. X-Forwarded-For is believed only as far
    as it was written by proxies we trust: walking it from the right (each proxy appends the address it
    saw), from the socket's peer, the first address that is not a trusted proxy is the caller. A peer
    we do not trust is the caller itself, whatever it sends; garbage in the header ends the walk."""
    peer = _address(remote or "")
    if peer is None:
        return "unknown"
    hops = [a for a in (forwarded or "").split(",")][::-1]
    current = peer
    while any(current in net for net in trusted) and hops:
        nxt = _address(hops.pop(0))
        if nxt is None:
            break
        current = nxt
    return str(current)


def behind_tls(remote, proto, trusted):
    """Whether a trusted proxy says the browser's connection is HTTPS (so the cookie must be Secure)."""
    peer = _address(remote or "")
    return peer is not None and any(peer in net for net in trusted) and \
        (proto or "").split(",")[-1].strip().lower() == "https"


def new_session():
    """(cookie value, its hash to store, CSRF token)."""
    value = secrets.token_urlsafe(32)
    return value, session_hash(value), secrets.token_urlsafe(32)


def session_hash(value):
    return hashlib.sha256(value.encode()).hexdigest()


def new_password():
    """A password that meets password_problems, for `make up`'s demo accounts and resets from the CLI."""
    while True:
        candidate = secrets.token_urlsafe(12) + "-7a"
        if not password_problems(candidate):
            return candidate


@dataclass(frozen=True)
class Verdict:
    """What a sign-in attempt comes to: `ok`, or the event to audit and how long to wait."""
    ok: bool
    event: str               # signed_in | failed | locked | refused_locked | refused_address | refused_disabled
    lock: bool = False       # this failure locks the account (or the unknown name)
    retry_after: int = 0     # seconds, for a 429


def refusal(row, now, address_failures):
    """Why an attempt is refused before its password is looked at, or None. `row` holds the name's
    failure count and lock: the account's, or for a name no account has its own (store.UNKNOWN_NAME), so
    both lock alike; `address_failures` the failures from the caller's address in the last ADDRESS_WINDOW.
    A locked name is refused even with the right password."""
    if address_failures >= ADDRESS_MAX_FAILURES:
        return Verdict(False, "refused_address", retry_after=int(ADDRESS_WINDOW.total_seconds()))
    if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
        return Verdict(False, "refused_locked", retry_after=max(1, int((row["locked_until"] - now).total_seconds())))
    return None


def verdict(account, password_ok, failures):
    """The verdict once the password is checked and the attempt was not refused; `failures` is the count
    of failures in a row with this one, if it failed (the account's, or the unknown name's)."""
    if account is None or not password_ok:
        locks = failures >= MAX_FAILURES
        return Verdict(False, "locked" if locks else "failed", lock=locks,
                       retry_after=int(LOCK_FOR.total_seconds()) if locks else 0)
    if account["disabled_at"] is not None:
        return Verdict(False, "refused_disabled")
    return Verdict(True, "signed_in")


def session_state(row, now):
    """'live', or why a session no longer holds: 'ended', 'idle', 'expired', 'disabled'."""
    if row["ended_at"] is not None:
        return "ended"
    if row["disabled_at"] is not None:
        return "disabled"
    if row["expires_at"] <= now:
        return "expired"
    if row["last_seen_at"] + IDLE <= now:
        return "idle"
    return "live"

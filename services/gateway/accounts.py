"""Staff accounts and console sessions: the rules, without I/O.

People sign in with a user name and password and get a session cookie; machines keep their bearer
tokens (auth.py). A password is kept only as an argon2id hash (argon2-cffi's defaults, the OWASP
first choice). Repeated failures lock the account for a while, and failures from one address are
limited across accounts, so guessing is slow both for one account and for many. A session ends
after a spell of idleness, after a fixed length whatever is done, and at sign-out.
"""
import hashlib
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

_hasher = PasswordHasher()
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


def check_new_account(username, display_name, role, node_prefix, organization_id, password, caller_scope):
    """Refuse, field by field, an account a street admin (scope `caller_scope`) may not create."""
    errors = {}
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        errors["username"] = ["3 to 40 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"]
    if not isinstance(display_name, str) or not display_name.strip() or len(display_name) > 100:
        errors["display_name"] = ["must be 1 to 100 characters"]
    if role not in ACCOUNT_ROLES:
        errors["role"] = [f"must be one of {', '.join(ACCOUNT_ROLES)}"]
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
    lock: bool = False       # this failure locks the account
    retry_after: int = 0     # seconds, for a 429


def judge(account, password_ok, now, address_failures):
    """The verdict on one attempt. `account` is the row or None (unknown name); `address_failures` the
    failures from the caller's address in the last ADDRESS_WINDOW. A locked or disabled account is
    refused even with the right password, and says nothing of which (but a lock's wait)."""
    if address_failures >= ADDRESS_MAX_FAILURES:
        return Verdict(False, "refused_address", retry_after=int(ADDRESS_WINDOW.total_seconds()))
    if account is not None and account["locked_until"] is not None and account["locked_until"] > now:
        return Verdict(False, "refused_locked", retry_after=max(1, int((account["locked_until"] - now).total_seconds())))
    if account is None or not password_ok:
        locks = account is not None and account["failed_attempts"] + 1 >= MAX_FAILURES
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

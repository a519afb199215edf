"""What an operator checks of an instance (the console's operator view, `linli outbox status`): each
service's outbox backlog, the migrations applied and pending, the dead-letter and unrouted queues,
the federation links, and the signing keys' fingerprints.

The outboxes and `public.schema_migrations` are the platform's own tables, the same in every
service's schema: they are read here as the command line reads them, never a service's data.
"""
import hashlib

from psycopg import sql

from shared import federation
from shared.facts import _unb64
from shared.messaging import unrouted_name
from shared.migrations import MigrationError, services_with_migrations, unapplied
from shared.outbox import STATUS

HAS_OUTBOX = "SELECT to_regclass(%s) IS NOT NULL AS present"
APPLIED = ("SELECT service, version, checksum, applied_at FROM public.schema_migrations ORDER BY service, version")
HAS_MIGRATIONS = "SELECT to_regclass('public.schema_migrations') IS NOT NULL AS present"


def fingerprint(public_key_b64):
    """A key's fingerprint to compare by eye or read over the phone: SHA-256 of the raw Ed25519 public key,
    its first 16 bytes in groups of four hex digits ("3f2a 9b1c …"); None for no key or a malformed one."""
    try:
        raw = _unb64(public_key_b64)
    except (ValueError, TypeError, AttributeError):
        return None
    if len(raw) != 32:
        return None
    digest = hashlib.sha256(raw).hexdigest()[:32]
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))


def outboxes(tx, services=None):
    """[{service, backlog, oldest_seconds, retrying, sent}] of each service with an outbox in this database."""
    out = []
    for service in services or sorted(set(services_with_migrations())):
        if not tx.one(HAS_OUTBOX, (f'"{service}".outbox',))["present"]:
            continue
        row = tx.one(sql.SQL(STATUS.replace("FROM outbox", "FROM {}.outbox")).format(sql.Identifier(service)))
        out.append({"service": service, "backlog": int(row["backlog"]), "oldest_seconds": float(row["oldest_age"]),
                    "retrying": int(row["retrying"]), "sent": int(row["sent"])})
    return out


def migrations(tx):
    """[{service, applied: [{version, applied_at}], pending: [version], problem}] per service that ships
    migrations: pending are the files this code ships that are not applied; `problem` says what stops
    `linli migrate` (a file changed after it was applied), instead of failing the whole view."""
    applied, done = {}, {}
    if tx.one(HAS_MIGRATIONS)["present"]:
        for r in tx.all(APPLIED):
            applied.setdefault(r["service"], []).append({"version": r["version"], "applied_at": r["applied_at"]})
            done.setdefault(r["service"], {})[r["version"]] = r["checksum"]
    out = []
    for service in sorted(set(services_with_migrations()) | set(applied)):
        pending, problem = [], None
        try:
            pending = [version for version, _, _ in unapplied(service, done.get(service, {}))]
        except MigrationError as exc:
            problem = str(exc)
        out.append({"service": service, "applied": applied.get(service, []), "pending": pending,
                    "problem": problem})
    return out


def broker(cfg):
    """The broker as the management API sees this vhost: {reachable, detail, dead_letters, unrouted, links,
    parent}. Unreachable is an answer, not an error: the view still shows the database's half."""
    management = federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
    try:
        depths = management.queue_depths()
        links = management.links()
    except (federation.FederationError, OSError) as exc:
        return {"reachable": False, "detail": str(exc)[:300], "dead_letters": [], "unrouted": [], "links": [],
                "parent": "unknown", "children": None}
    unrouted = {unrouted_name(s) for s in services_with_migrations()}
    parent = [link for link in links if link["upstream"] == federation.PARENT]
    return {"reachable": True, "detail": None,
            "dead_letters": [{"queue": q, "messages": n} for q, n in sorted(depths.items()) if q.endswith(".dlq")],
            "unrouted": [{"queue": q, "messages": n} for q, n in sorted(depths.items()) if q in unrouted],
            "links": [{**link, "direction": _direction(link["upstream"])} for link in links],
            "parent": federation.link_state([link["status"] for link in parent]) if parent else "absent",
            "children": federation.child_link_states(links)}


def _direction(upstream):
    if upstream == federation.PARENT:
        return "parent"
    return "child" if (upstream or "").startswith(federation.child_upstream("")) else "other"


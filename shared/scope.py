"""A token's reach over node codes, for services that scope by the caller the gateway sends.

`caller` is {"actor", "scope", "role", ...}: the token's node prefix is its scope; it reaches that
node and everything below it. A record asked for by its id outside the scope answers as a missing
one (`visible`); a node code named outside it is refused with a 403 (`forbid`, `under`).
"""
from shared.errors import Conflict, Forbidden, NotFound


def in_scope(code, caller):
    return code is not None and code.startswith(caller["scope"])


def visible(row, caller, not_found, codes=("community_code",)):
    """`row`, a record asked for by its id, if it exists and one of its node codes (the keys `codes`) lies in the
    caller's scope; otherwise raises `not_found`, the very error the service answers for an id it does not have.

    A record outside the scope reads exactly as one that does not exist (status, title, field message): a 403
    there would tell a worker which ids exist across the street. Refusals about a role, or about a node code
    the caller names (`under=`, `community_code`: public structure, not a record), stay 403 (`forbid`).
    """
    if row is None or not any(in_scope(row[code], caller) for code in codes):
        raise not_found
    return row


def missing(kind, key, field="id"):
    """The NotFound for an id with no record of `kind` (or none the caller may see): "no matter 7" on `field`."""
    return NotFound(f"no {kind} {key}", {field: [f"no {kind} {key}"]})


def forbid(what, caller, field):
    raise Forbidden(f"{what} lies outside this token's scope {caller['scope']}",
                    {field: [f"outside scope {caller['scope']}"]})


def first_of(first, request_id, caller, codes=("community_code",)):
    """`first`, the record a repeated `request_id` made, if the caller may see it (to answer the repeat with it).

    Request ids are unique across the instance, so one first used outside the caller's scope is taken all
    the same; the 409 says only that, naming no record, as for an id that lies outside the scope (`visible`).
    """
    if not any(in_scope(first[code], caller) for code in codes):
        raise Conflict(f"request id {request_id} was already used for another request",
                       {"request_id": ["already used"]})
    return first


def under(q, caller):
    """The node prefix a listing asks for (the token's scope by default), refused outside the scope."""
    prefix = q.get("under") or caller["scope"]
    if not in_scope(prefix, caller):
        forbid(prefix, caller, "under")
    return prefix

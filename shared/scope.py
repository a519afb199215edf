"""A token's reach over node codes, for services that scope by the caller the gateway sends.

`caller` is {"actor", "scope", "role", ...}: the token's node prefix is its scope; it reaches that
node and everything below it.
"""
from shared.errors import Forbidden


def in_scope(code, caller):
    return code is not None and code.startswith(caller["scope"])


def forbid(what, caller, field):
    raise Forbidden(f"{what} lies outside this token's scope {caller['scope']}",
                    {field: [f"outside scope {caller['scope']}"]})


def under(q, caller):
    """The node prefix a listing asks for (the token's scope by default), refused outside the scope."""
    prefix = q.get("under") or caller["scope"]
    if not in_scope(prefix, caller):
        forbid(prefix, caller, "under")
    return prefix

"""Node codes named in a request: registered, and (for a write) live today. One rule for every service.

The registry owns the nodes; a service asks it for one by RPC (`lookup(code)`, the registry's
`get_node`, which raises NotFound for a code it does not hold) and judges the answer here, so a
matter, a meeting or a broadcast refuses a community that does not exist, or no longer does,
with the same words as the registry's own registers do.

- A write names a node that must be live: registered, of the level the field wants, valid today
  (started, not retired). Otherwise 422 on the field, and nothing is written.
- A query names a node to read under: it need only be registered (figures of a retired community
  are history worth reading). Otherwise 404 on the parameter: a typo is not an empty area.
"""
from datetime import date

from shared.errors import NotFound, ValidationFailed


def _day(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def why_not_live(node, today, level=None):
    """Why the registry's `node` (its get_node answer) cannot be named in a write today; None if it can."""
    code, name = node["code"], node.get("name") or node["code"]
    if level is not None and node.get("level") != level:
        return f"{code} is a {node.get('level')}, not a {level}"
    valid_from, valid_to = _day(node.get("valid_from")), _day(node.get("valid_to"))
    if valid_to is not None and valid_to <= today:
        return f"{code} ({name}) was retired on {valid_to.isoformat()}"
    if valid_from is not None and valid_from > today:
        return f"{code} ({name}) is valid only from {valid_from.isoformat()}"
    return None


def unregistered(code):
    return f"{code} is not a registered node"


def live(lookup, code, field, today, level=None):
    """The node `code` as the registry has it, refused with a field-level 422 unless it is registered,
    of `level` (when given) and valid today."""
    try:
        node = lookup(code)
    except NotFound:
        raise ValidationFailed("unknown node", {field: [unregistered(code)]}) from None
    why = why_not_live(node, today, level)
    if why:
        raise ValidationFailed("the node cannot be named here", {field: [why]})
    return node


def known(lookup, code, field):
    """The node `code` as the registry has it, or a field-level 404 naming the query parameter."""
    try:
        return lookup(code)
    except NotFound:
        raise NotFound(f"no node {code}", {field: [unregistered(code)]}) from None


def known_in(lookup, query, *fields):
    """Check each of `fields` the query names (a default filled in later is the token's own scope)."""
    for field in fields:
        if query.get(field):
            known(lookup, query[field], field)

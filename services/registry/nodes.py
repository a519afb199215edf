"""Use cases on the hierarchy: validate input, apply the domain rules, store, and emit the event.

Each function runs inside the caller's transaction (`tx`, a shared.db.Tx), so
the change and its outbox event commit together. The nameko service and the
CLI (demo data) both call these.
"""
from datetime import date

from services.registry import domain, store
from services.registry.schemas import (NodeChangeSchema, NodeCreateSchema, NodeListQuerySchema, NodeRenameSchema,
                                       NodeRetireSchema, NodeSchema, NodeSplitSchema)
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.errors import load as _load
from shared.nodes import unregistered
from shared import clock, facts

_node = NodeSchema()
_changes = NodeChangeSchema(many=True)


def announce(tx, codes):
    """Tell the levels above what these nodes now are (a `node_changed` fact each, facts.node_fact): names
    and the splits and merges their series continue through. A node above this instance is not its to
    describe (the parent would refuse the whole batch), so only nodes inside it are announced."""
    own = (tx.source or {}).get("node_code") or ""
    rows = [store.get_row(tx, code) for code in codes if code.startswith(own)]
    if rows:
        tx.publish_facts(facts.NODE_FACT, [facts.node_fact(r) for r in rows if r is not None])
    return len(rows)


def announce_all(tx):
    """Every node of this instance, current and retired, announced again (`linli nodes announce`): for a
    tree whose nodes were registered before nodes were announced, or a parent linked late."""
    own = (tx.source or {}).get("node_code") or ""
    return announce(tx, [r["code"] for r in store.list_nodes(tx, own, None, True, 100_000, None)])


def get(tx, code):
    row = store.get_row(tx, code)
    if row is None:
        raise NotFound(f"node {code} does not exist", {"code": [f"{code} is not registered"]})
    return {**_node.dump(row), "history": _changes.dump(store.history(tx, code))}


def names(tx):
    """[{code, name, level}] of the current nodes (what linli_node_info exports)."""
    return store.names(tx)


def queried(tx, query, *fields):
    """A query's node codes (`under`, `community_code`) must be registered: 404 naming the parameter, not an
    empty answer that reads as zero. Only the codes the query names: the default is the token's own scope."""
    for field in fields:
        code = query.get(field)
        if code and store.get_row(tx, code) is None:
            raise NotFound(f"no node {code}", {field: [unregistered(code)]})


def list_nodes(tx, query, default_under):
    q = _load(NodeListQuerySchema, query)
    queried(tx, q, "under")
    rows = store.list_nodes(tx, q.get("under") or default_under, q.get("level"), q["include_retired"],
                            q["limit"], q.get("after"))
    items = _node.dump(rows, many=True)
    return {"items": items, "next": items[-1]["code"] if len(items) == q["limit"] else None}


def create(tx, data, instance_code, actor, today=None):
    today = today or clock.today()
    d = _load(NodeCreateSchema, data)
    code = d["code"]
    level = d.get("level") or domain.level_for(code)
    errors = domain.check_parent_claim(code, d.get("parent_code"))
    if errors:
        raise ValidationFailed("the parent does not match the code", errors)
    valid_from = d.get("valid_from") or today
    domain.check_dates(today, valid_from=valid_from)
    parent_code = domain.parent_code_of(code)
    parent = store.get(tx, parent_code, for_update=True) if parent_code else None
    domain.validate_new(code, level, d["name"], valid_from, parent, store.get(tx, code), instance_code, today)
    node = domain.Node(code, d["name"], level, parent_code, valid_from)
    if not store.insert(tx, node, actor):
        raise Conflict(f"node {code} already exists", {"code": [f"{code} was registered meanwhile"]})
    row = store.get_row(tx, code)
    tx.emit("node_created", _node.dump(row))
    announce(tx, [code])
    return _node.dump(row)


def _changeable(tx, code, schema, data, instance_code, today):
    """Validate the request, then lock the node and check it may change; (data, node)."""
    d = _load(schema, data)
    domain.check_dates(today, **{k: d.get(k) for k in ("effective", "valid_to")})
    node = store.get(tx, code, for_update=True)
    domain.ensure_changeable(node, code, instance_code, today)
    return d, node


def _vacant(tx, code):
    """A node people still live or serve in cannot end: they would be left on a node that is gone."""
    still = store.in_use(tx, code)
    if still:
        listed = ", ".join(f"{n} active {kind}" for kind, n in still.items())
        raise ValidationFailed("the node is still in use", {"code": [f"{code} still has {listed}; move them first"]})


def rename(tx, code, data, instance_code, actor, today=None):
    today = today or clock.today()
    d, node = _changeable(tx, code, NodeRenameSchema, data, instance_code, today)
    name, effective = d["name"], d.get("effective") or today
    if name == node.name:
        raise ValidationFailed("the name is unchanged", {"name": [f"{code} is already called {name}"]})
    if effective < node.valid_from:
        raise ValidationFailed("the rename predates the node", {"effective": [f"must be on or after {node.valid_from}"]})
    version = store.rename(tx, code, name)
    store.record_change(tx, code, version, "renamed", name, effective, {"old_name": node.name}, actor)
    row = store.get_row(tx, code)
    tx.emit("node_renamed", {**_node.dump(row), "old_name": node.name})
    announce(tx, [code])
    return _node.dump(row)


def retire(tx, code, data, instance_code, actor, today=None):
    today = today or clock.today()
    d, node = _changeable(tx, code, NodeRetireSchema, data, instance_code, today)
    _vacant(tx, code)
    successor = None
    if d.get("successor_code"):
        successor = store.get(tx, d["successor_code"])
        if successor is None:
            raise ValidationFailed("the successor does not exist",
                                   {"successor_code": [f"{d['successor_code']} is not registered"]})
    domain.validate_retirement(node, d["valid_to"], successor, store.active_children(tx, code))
    successors = [successor.code] if successor else []
    version = store.retire(tx, code, d["valid_to"], successors, d["reason"])
    store.record_change(tx, code, version, "retired", node.name, d["valid_to"],
                        {"reason": d["reason"], "successor_codes": successors}, actor)
    row = store.get_row(tx, code)
    tx.emit("node_retired", _node.dump(row))
    announce(tx, [code])
    return _node.dump(row)


def split(tx, code, data, instance_code, actor, today=None):
    today = today or clock.today()
    d, node = _changeable(tx, code, NodeSplitSchema, data, instance_code, today)
    _vacant(tx, code)
    parts = d["parts"]
    domain.validate_split(node, parts, d["effective"], store.codes_taken(tx, [p["code"] for p in parts]),
                          store.active_children(tx, code))
    created = []
    for part in parts:
        new = domain.Node(part["code"], part["name"], node.level, node.parent_code, d["effective"])
        if not store.insert(tx, new, actor, predecessor_code=code, detail={"split_from": code}):
            raise Conflict(f"node {new.code} already exists", {"parts": [f"{new.code} was registered meanwhile"]})
        created.append(_node.dump(store.get_row(tx, new.code)))
    successors = [p["code"] for p in parts]
    version = store.retire(tx, code, d["effective"], successors, d["reason"])
    store.record_change(tx, code, version, "split", node.name, d["effective"],
                        {"reason": d["reason"], "successor_codes": successors}, actor)
    retired = _node.dump(store.get_row(tx, code))
    tx.emit("node_split", {"node": retired, "into": created, "effective": d["effective"].isoformat(),
                           "reason": d["reason"]})
    announce(tx, [code] + successors)
    return {"retired": retired, "created": created}


def bootstrap(tx, chain, actor="system"):
    """Register this instance's node and its ancestors (set up once, not over the API).

    `chain` is [{code, name, valid_from}] from the city down; existing nodes are left alone.
    """
    added = []
    for item in chain:
        code = item["code"]
        if store.get(tx, code) is not None:
            continue
        node = domain.Node(code, item["name"], domain.level_for(code), domain.parent_code_of(code),
                           item.get("valid_from") or date(2000, 1, 1))
        store.insert(tx, node, actor)
        tx.emit("node_created", _node.dump(store.get_row(tx, code)))
        added.append(code)
    announce(tx, added)
    return added

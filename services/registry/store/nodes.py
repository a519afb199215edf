"""SQL for the hierarchy: nodes and their change history."""
import json

from services.registry.domain import Node

__all__ = ["in_use", "as_node", "get_row", "get", "active_children", "codes_taken", "insert", "rename", "retire",
           "record_change", "history", "list_nodes", "names"]

NODE_COLUMNS = ("code, name, level, parent_code, valid_from, valid_to, predecessor_code, "
                "successor_codes, retired_reason, version")

GET = f"SELECT {NODE_COLUMNS} FROM nodes WHERE code = %s"
GET_FOR_UPDATE = GET + " FOR UPDATE"
CODES_TAKEN = "SELECT code FROM nodes WHERE code = ANY(%s)"
ACTIVE_CHILDREN = f"SELECT {NODE_COLUMNS} FROM nodes WHERE parent_code = %s AND valid_to IS NULL ORDER BY code"
INSERT = ("INSERT INTO nodes (code, name, level, parent_code, valid_from, predecessor_code) "
          "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING")
RENAME = "UPDATE nodes SET name = %s, version = version + 1, updated_at = now() WHERE code = %s RETURNING version"
RETIRE = ("UPDATE nodes SET valid_to = %s, successor_codes = %s, retired_reason = %s, "
          "version = version + 1, updated_at = now() WHERE code = %s RETURNING version")
RECORD_CHANGE = ("INSERT INTO node_changes (code, version, change, name, effective, detail, actor) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s)")
HISTORY = ("SELECT version, change, name, effective, detail, actor, changed_at FROM node_changes "
           "WHERE code = %s ORDER BY version")
# What still lives in a node: a community or grid cannot be retired or split from under it.
IN_USE = ("SELECT (SELECT count(*) FROM residents WHERE status = 'active' AND (community_code = %(c)s OR grid_code = %(c)s)) "
          "AS residents, (SELECT count(*) FROM organizations WHERE status <> 'dissolved' AND community_code = %(c)s) "
          "AS organizations, (SELECT count(*) FROM workers WHERE status = 'active' "
          "AND (community_code = %(c)s OR grid_code = %(c)s)) AS workers")
LIST = (f"SELECT {NODE_COLUMNS} FROM nodes WHERE starts_with(code, %(under)s) "
        "AND (%(level)s::text IS NULL OR level = %(level)s) "
        "AND (%(include_retired)s OR valid_to IS NULL) "
        "AND (%(after)s::text IS NULL OR code > %(after)s) ORDER BY code LIMIT %(limit)s")
# Current nodes' names, for linli_node_info: dashboards put names on the aggregator's node codes.
NAMES = "SELECT code, name, level FROM nodes WHERE valid_to IS NULL ORDER BY code"


def as_node(row):
    if row is None:
        return None
    return Node(row["code"], row["name"], row["level"], row["parent_code"], row["valid_from"], row["valid_to"])


def get_row(tx, code, for_update=False):
    return tx.one(GET_FOR_UPDATE if for_update else GET, (code,))


def get(tx, code, for_update=False):
    return as_node(get_row(tx, code, for_update))


def active_children(tx, code):
    return [as_node(r) for r in tx.all(ACTIVE_CHILDREN, (code,))]


def codes_taken(tx, codes):
    return {r["code"] for r in tx.all(CODES_TAKEN, (list(codes),))}


def insert(tx, node, actor, predecessor_code=None, detail=None):
    """Insert a node and its 'created' change; False if the code was taken meanwhile."""
    cur = tx.execute(INSERT, (node.code, node.name, node.level, node.parent_code, node.valid_from, predecessor_code))
    if cur.rowcount != 1:
        return False
    record_change(tx, node.code, 1, "created", node.name, node.valid_from, detail or {}, actor)
    return True


def rename(tx, code, name):
    return tx.one(RENAME, (name, code))["version"]


def retire(tx, code, valid_to, successors, reason):
    return tx.one(RETIRE, (valid_to, list(successors), reason, code))["version"]


def record_change(tx, code, version, change, name, effective, detail, actor):
    tx.execute(RECORD_CHANGE, (code, version, change, name, effective, json.dumps(detail, ensure_ascii=False), actor))


def history(tx, code):
    return tx.all(HISTORY, (code,))


def list_nodes(tx, under, level=None, include_retired=False, limit=200, after=None):
    return tx.all(LIST, {"under": under, "level": level, "include_retired": include_retired,
                         "limit": limit, "after": after})


def in_use(tx, code):
    """{kind: count} of what is still active in the node (only the non-zero ones)."""
    return {k: v for k, v in tx.one(IN_USE, {"c": code}).items() if v}


def names(tx):
    return tx.all(NAMES)

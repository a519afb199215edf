"""Demo data: a real-looking district with two streets, loaded through the registry's own use cases."""
import pathlib
from datetime import date

import yaml

from services.registry import domain, nodes

HIERARCHY = pathlib.Path(__file__).with_name("yangpu.yaml")


def load_hierarchy(tx, instance_code, today=None):
    """Load the part of the demo tree this instance holds: its ancestors and its own subtree.

    Returns (added codes, skipped codes). Nodes already present are left alone, so
    loading twice changes nothing.
    """
    items = yaml.safe_load(HIERARCHY.read_text(encoding="utf-8"))
    start = date(2020, 1, 1)
    ancestors = [i for i in items if instance_code.startswith(i["code"])]
    inside = [i for i in items if domain.is_inside(i["code"], instance_code) and i["code"] != instance_code]
    added = nodes.bootstrap(tx, [{**i, "valid_from": start} for i in ancestors], actor="demo")
    for item in inside:
        if nodes.store.get(tx, item["code"]) is None:
            nodes.create(tx, {"code": item["code"], "name": item["name"], "valid_from": start.isoformat()},
                         instance_code, actor="demo", today=today)
            added.append(item["code"])
    skipped = [i["code"] for i in items if i not in ancestors and i not in inside]
    return added, skipped

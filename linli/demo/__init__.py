"""Demo data: a real-looking district with two streets and their residents, loaded through the registry's own code."""
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
        if domain.level_for(item["code"]) not in domain.MANAGED_LEVELS:
            # A district's streets (a city's districts) are set up with their instances, not over the API.
            added += nodes.bootstrap(tx, [{**item, "valid_from": start}], actor="demo")
        elif nodes.store.get(tx, item["code"]) is None:
            nodes.create(tx, {"code": item["code"], "name": item["name"], "valid_from": start.isoformat()},
                         instance_code, actor="demo", today=today)
            added.append(item["code"])
    skipped = [i["code"] for i in items if i not in ancestors and i not in inside]
    return added, skipped


RESIDENTS_PER_COMMUNITY = 120


def demo_communities(tx, instance_code):
    """This instance's active communities in the generator's terms (estate name, grids)."""
    rows = nodes.store.list_nodes(tx, instance_code, None, False, 1000, None)
    grids = {}
    for r in rows:
        if r["level"] == "grid":
            grids.setdefault(r["parent_code"], []).append(r["code"])
    return [{"code": r["code"], "name": r["name"], "estate": r["name"].removesuffix("居委会"),
             "grids": grids.get(r["code"], [])}
            for r in rows if r["level"] == "community"]


def load_residents(tx, vault, instance_code, per_community=RESIDENTS_PER_COMMUNITY, today=None):
    """Register generated residents through the bulk importer, once: returns how many were added.

    The people are generated (see linli.demo.people): realistic, and nobody real. The seed is the
    street's code, so two demo streets do not hold the same people.
    """
    from linli.demo import people
    from services.registry import importer
    if tx.one("SELECT EXISTS (SELECT 1 FROM residents) AS any")["any"]:
        return 0
    communities = demo_communities(tx, instance_code)
    if not communities:
        return 0
    persons = list(people.generate(per_community * len(communities), communities, seed=f"residents:{instance_code}", today=today))
    lines = [",".join(people.CSV_HEADERS)] + [",".join(people.to_csv_row(p)) for p in persons]
    report = importer.import_residents(tx, vault, ("\n".join(lines) + "\n").encode(), "all_or_nothing",
                                       {"actor": "demo", "scope": instance_code}, today=today)
    if report["rejected"]:
        raise RuntimeError(f"demo residents refused: {report['errors'][:3]}")
    return report["written"]

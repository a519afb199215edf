"""The instance's catalogue: service categories with versioned rules, and the rewards points buy.

A rule change is a new version valid from a day on; versions are never edited,
and a posted record keeps the version and points it got, so changing a rule
never rewrites what was posted. A new version starts tomorrow at the earliest
(days are China's) and after the latest one, so the rule for a day already
served cannot change under a record waiting for verification either.
"""
from datetime import timedelta

from services.points import rules, store
from services.points.schemas import (CatalogueQuerySchema, CategoryCreateSchema, CategorySchema, CategoryUpdateSchema,
                                     RewardCreateSchema, RewardSchema, RewardUpdateSchema, RuleSchema)
from shared.db import unique_races
from shared.errors import Conflict, NotFound, ValidationFailed, load
from shared import clock

_category = CategorySchema()
_reward = RewardSchema()
RACES = {"categories_pkey": ("code", "a category with this code was created meanwhile"),
         "rule_versions_category_code_valid_from_key": ("valid_from", "another version from that day was added "
                                                                      "meanwhile"),
         "rule_versions_pkey": ("valid_from", "another version was added meanwhile"),
         "rewards_active_name": ("name", "an active reward of that name exists")}


def _rule_values(d, code, actor, today, first):
    # A new version of an existing category starts tomorrow at the earliest: today's records may be
    # waiting for verification under the version in force when the service was done.
    earliest = today if first else today + timedelta(days=1)
    values = {"category_code": code, "valid_from": d.get("valid_from") or earliest, "unit": d["unit"],
              "points_per_unit": d["points_per_unit"], "daily_cap": d.get("daily_cap"),
              "yearly_cap": d.get("yearly_cap"), "verifier_roles": sorted(set(d["verifier_roles"])),
              "note": d.get("note"), "actor": actor}
    errors = rules.check_rule(values)
    if values["valid_from"] < earliest:
        errors["valid_from"] = [f"must be {earliest} or later: records of earlier days may await verification "
                                "under the rule in force then"]
    if errors:
        raise ValidationFailed("the rule has invalid fields", errors)
    return values


def create_category(tx, data, caller, today=None):
    today = today or clock.today()
    d = load(CategoryCreateSchema, data)
    if tx.one(store.CATEGORY, (d["code"],)) is not None:
        raise Conflict("the category exists", {"code": [f"category {d['code']} exists; add a rule version instead"]})
    values = _rule_values(d, d["code"], caller["actor"], today, first=True)
    with unique_races(RACES):
        tx.execute(store.ADD_CATEGORY, (d["code"], d["name"]))
        tx.one(store.ADD_RULE, values)
    view = get_category(tx, d["code"], today)
    tx.emit("points_category_created", view)
    return view


def add_rule(tx, code, data, caller, today=None):
    today = today or clock.today()
    d = load(RuleSchema, data)
    if tx.one(store.CATEGORY_FOR_UPDATE, (code,)) is None:
        raise NotFound(f"no category {code}", {"code": [f"no category {code}"]})
    values = _rule_values(d, code, caller["actor"], today, first=False)
    latest = tx.one(store.LAST_RULE_DAY, (code,))["day"]
    if latest is not None and values["valid_from"] <= latest:
        raise ValidationFailed("the rule has invalid fields",
                               {"valid_from": [f"must be after {latest}, when the latest version starts"]})
    with unique_races(RACES):
        version = tx.one(store.ADD_RULE, values)["version"]
    view = get_category(tx, code, today)
    tx.emit("points_rule_changed", {"category_code": code, "version": version,
                                    "valid_from": values["valid_from"].isoformat()})
    return view


def get_category(tx, code, today=None):
    row = tx.one(store.CATEGORY, (code,))
    if row is None:
        raise NotFound(f"no category {code}", {"code": [f"no category {code}"]})
    versions = tx.all(store.RULES_OF, (code,))
    in_force = [v for v in versions if v["valid_from"] <= (today or clock.today())]
    return _category.dump({**row, "rule": in_force[-1] if in_force else None, "versions": versions})


def list_categories(tx, query, today=None):
    today = today or clock.today()
    include_inactive = load(CatalogueQuerySchema, query)["include_inactive"]
    versions = {}
    for v in tx.all(store.ALL_RULES):
        versions.setdefault(v["category_code"], []).append(v)
    items = []
    for row in tx.all(store.CATALOGUE, (today, include_inactive)):
        vs = versions.get(row["code"], [])
        rule = next((v for v in vs if v["version"] == row["version"]), None)
        items.append(_category.dump({**row, "rule": rule, "versions": vs}))
    return {"items": items}


def set_category(tx, code, data, caller):
    """Rename a category or retire it (no new records; posted ones keep it)."""
    d = load(CategoryUpdateSchema, data)
    if tx.execute(store.SET_CATEGORY, (d.get("name"), d.get("active"), code)).rowcount == 0:
        raise NotFound(f"no category {code}", {"code": [f"no category {code}"]})
    view = get_category(tx, code)
    tx.emit("points_category_changed", {"code": code, "name": view["name"], "active": view["active"],
                                        "actor": caller["actor"]})
    return view


# -- rewards ---------------------------------------------------------------------------------

def create_reward(tx, data, caller):
    d = load(RewardCreateSchema, data)
    values = {k: d.get(k) for k in ("name", "kind", "points_cost", "stock", "per_person_limit", "description")}
    with unique_races(RACES):
        reward_id = tx.one(store.ADD_REWARD, values)["id"]
    view = _reward.dump(tx.one(store.REWARD, (reward_id,)))
    tx.emit("points_reward_created", view)
    return view


def update_reward(tx, reward_id, data, caller):
    d = load(RewardUpdateSchema, data)
    if not d:
        raise ValidationFailed("nothing to change",
                               {"_schema": ["give stock, points_cost, per_person_limit or active"]})
    values = {"id": reward_id, **{k: d.get(k) for k in ("stock", "active", "points_cost", "per_person_limit")}}
    with unique_races(RACES):
        if tx.execute(store.UPDATE_REWARD, values).rowcount == 0:
            raise NotFound(f"no reward {reward_id}", {"id": [f"no reward {reward_id}"]})
    return _reward.dump(tx.one(store.REWARD, (reward_id,)))


def list_rewards(tx, query):
    include_inactive = load(CatalogueQuerySchema, query)["include_inactive"]
    return {"items": [_reward.dump(r) for r in tx.all(store.REWARDS, (include_inactive,))]}

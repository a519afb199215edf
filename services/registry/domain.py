"""The administrative hierarchy: pure rules, no I/O.

A node's code is the national statistical division code truncated per level
(DESIGN.md §1), so a code's prefix is its ancestry. Grids, which have no
national code, extend their community's 12 digits with three of their own.
Every check returns field-level messages instead of stopping at the first.
"""
from dataclasses import dataclass
from datetime import date

from shared.errors import Conflict, NotFound, ValidationFailed
from shared import clock

LEVELS = {"city": 4, "district": 6, "street": 9, "community": 12, "grid": 15}
LEVEL_BY_DIGITS = {v: k for k, v in LEVELS.items()}
ORDER = list(LEVELS)
# What an API caller may create, rename, split or retire; cities, districts and streets are
# set up when the instance is (they are someone else's to change).
MANAGED_LEVELS = ("community", "grid")


@dataclass(frozen=True)
class Node:
    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date
    valid_to: date | None = None

    def active_on(self, day):
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


def level_for(code):
    return LEVEL_BY_DIGITS.get(len(code))


def parent_code_of(code):
    level = level_for(code)
    if level is None or level == "city":
        return None
    return code[:LEVELS[ORDER[ORDER.index(level) - 1]]]


def is_inside(code, root):
    """True when `code` is `root` or one of its descendants."""
    return code.startswith(root)


def check_code(code, level, instance_code):
    """Errors for a new code: digits, length for its level, inside this instance."""
    errors = {}
    if not isinstance(code, str) or not (code.isascii() and code.isdigit()):
        errors["code"] = ["must be digits only"]
        return errors
    if level not in LEVELS:
        errors["level"] = [f"must be one of {', '.join(ORDER)}"]
        return errors
    if len(code) != LEVELS[level]:
        errors.setdefault("code", []).append(f"a {level} code has {LEVELS[level]} digits, got {len(code)}")
    elif not is_inside(code, instance_code):
        errors.setdefault("code", []).append(f"{code} lies outside this instance ({instance_code})")
    return errors


def validate_new(code, level, name, valid_from, parent, existing, instance_code, today=None):
    """Raise unless a node `code` of `level` may be created under `parent` (a Node or None).

    `existing` is the node already holding `code`, if any.
    """
    today = today or clock.today()
    errors = check_code(code, level, instance_code)
    if errors:
        raise ValidationFailed("the node code is not valid here", errors)
    if level not in MANAGED_LEVELS:
        raise ValidationFailed("only communities and grids can be created over the API",
                               {"level": [f"must be one of {', '.join(MANAGED_LEVELS)}"]})
    if existing is not None:
        raise Conflict(f"node {code} already exists", {"code": [f"{code} is taken by {existing.name}"]})
    expected_parent = parent_code_of(code)
    if parent is None:
        raise ValidationFailed("the parent node does not exist",
                               {"parent_code": [f"{expected_parent} is not registered"]})
    if not parent.active_on(max(valid_from, today) if valid_from else today):
        raise ValidationFailed("the parent node is retired",
                               {"parent_code": [f"{parent.code} {parent.name} was retired on {parent.valid_to}"]})
    if valid_from < parent.valid_from:
        raise ValidationFailed("the node cannot start before its parent",
                               {"valid_from": [f"must be on or after {parent.valid_from}"]})
    if not name or not name.strip():
        raise ValidationFailed("a node needs a name", {"name": ["must not be blank"]})


def check_dates(today, **days):
    """Changes are recorded when they happen: no date may lie in the future (scheduled changes would
    leave a node both active and retired, depending on who asks)."""
    errors = {field: [f"must not be after today ({today})"] for field, day in days.items()
              if day is not None and day > today}
    if errors:
        raise ValidationFailed("dates must not lie in the future", errors)


def check_parent_claim(code, parent_code):
    """A caller-supplied parent must be the code's prefix; returns field errors."""
    expected = parent_code_of(code)
    if parent_code is not None and parent_code != expected:
        return {"parent_code": [f"the parent of {code} is {expected}, not {parent_code}"]}
    return {}


def ensure_changeable(node, code, instance_code, today=None):
    """Raise unless an existing node may be renamed, split or retired."""
    if node is None:
        raise NotFound(f"node {code} does not exist", {"code": [f"{code} is not registered"]})
    if not is_inside(code, instance_code):
        raise ValidationFailed("the node lies outside this instance",
                               {"code": [f"{code} lies outside this instance ({instance_code})"]})
    if node.level not in MANAGED_LEVELS:
        raise ValidationFailed(f"a {node.level} cannot be changed over the API",
                               {"code": [f"{code} is a {node.level}; only communities and grids are managed here"]})
    if node.valid_to is not None:
        raise Conflict(f"node {code} is retired", {"code": [f"{code} was retired on {node.valid_to}"]})


def validate_retirement(node, valid_to, successor, active_children):
    errors = {}
    if valid_to <= node.valid_from:
        errors["valid_to"] = [f"must be after the node's start {node.valid_from}"]
    if active_children:
        errors["code"] = [f"{len(active_children)} active child node(s) first: "
                          + ", ".join(c.code for c in active_children[:5])]
    if successor is not None:
        if successor.code == node.code:
            errors["successor_code"] = ["a node cannot succeed itself"]
        elif successor.level != node.level or successor.parent_code != node.parent_code:
            errors["successor_code"] = [f"must be a {node.level} under {node.parent_code}"]
        elif successor.valid_to is not None:
            errors["successor_code"] = [f"{successor.code} is retired"]
    if errors:
        raise ValidationFailed("the node cannot be retired", errors)


def validate_split(node, parts, effective, taken, active_children):
    """`parts` are [{code, name}]; `taken` the codes among them already registered."""
    errors = {}
    if len(parts) < 2:
        errors["parts"] = ["a split needs at least two new nodes"]
    codes = [p["code"] for p in parts]
    if len(set(codes)) != len(codes):
        errors["parts"] = ["the new codes must be different"]
    for i, part in enumerate(parts):
        code = part["code"]
        if not (code.isascii() and code.isdigit()) or len(code) != LEVELS[node.level]:
            errors[f"parts.{i}.code"] = [f"a {node.level} code has {LEVELS[node.level]} digits"]
        elif parent_code_of(code) != node.parent_code:
            errors[f"parts.{i}.code"] = [f"must lie under {node.parent_code}, as {node.code} does"]
        elif code in taken:
            errors[f"parts.{i}.code"] = [f"{code} already exists"]
    if effective <= node.valid_from:
        errors["effective"] = [f"must be after the node's start {node.valid_from}"]
    if active_children:
        errors["code"] = [f"move or retire its {len(active_children)} active child node(s) first"]
    if errors:
        raise ValidationFailed("the node cannot be split", errors)

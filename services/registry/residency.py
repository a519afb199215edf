"""Rules about residents and households: pure, no I/O, shared by the API and the bulk import.

The API loads a request with marshmallow and the importer maps spreadsheet
cells; both end in the same dict of typed values and call `check_resident`,
so a row is accepted by one path exactly when it is accepted by the other.
"""

from services.registry import identity
from shared import clock

RESIDENCE_TYPES = {"registered": "户籍", "permanent": "常住", "floating": "流动", "lodging": "寄住"}
RELATIONS = {"self": "本人", "spouse": "配偶", "child": "子女", "parent": "父母", "grandchild": "孙子女",
             "sibling": "兄弟姐妹", "other": "其他"}
TAGS = {"elderly_alone": "独居老人", "empty_nest_elderly": "空巢老人", "disabled": "残疾人",
        "low_income": "低保家庭", "veteran": "退役军人", "after_school_child": "课后看护儿童",
        "special_care": "重点优抚对象"}
STATUSES = ("active", "left", "deceased")
NAME_MAX, ADDRESS_MAX, HOUSEHOLD_NO_MAX = 64, 32, 40


def check_resident(d, today):
    """Semantic checks on typed values; returns (clean values, {field: [messages]}).

    `d` holds name, id_number, phone, sex, birth_date, community_code, grid_code,
    household_no, building, unit, room, relation, residence_type, tags, moved_in
    (absent optional fields may be missing or None).
    """
    errors = {}
    out = dict(d)
    info = None
    try:
        info = identity.parse_id_number(d.get("id_number") or "", today)
    except identity.IdNumberError as exc:
        errors["id_number"] = [str(exc)]
    if info is not None:
        for field, msg in identity.check_agreement(info, d.get("sex"), d.get("birth_date")).items():
            errors[field] = [msg]
        out.update(id_number=info.number, sex=info.sex, birth_date=info.birth_date)
    if d.get("phone"):
        try:
            out["phone"] = identity.normalize_phone(d["phone"])
        except identity.PhoneError as exc:
            errors["phone"] = [str(exc)]
    else:
        out["phone"] = None
    grid = d.get("grid_code")
    if grid and not grid.startswith(d.get("community_code") or "\0"):
        errors["grid_code"] = [f"{grid} is not a grid of community {d.get('community_code')}"]
    tags = list(dict.fromkeys(d.get("tags") or ()))
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        errors["tags"] = [f"unknown tag(s) {', '.join(unknown)}; known: {', '.join(TAGS)}"]
    out["tags"] = tags
    has_home = bool(d.get("household_no") or d.get("room"))
    if d.get("relation") and not has_home:
        errors["relation"] = ["a relation to the head needs a household (household_no or an address)"]
    if has_home and not d.get("relation"):
        errors["relation"] = ["required when the resident is placed in a household"]
    if d.get("room") and not (d.get("building") and d.get("unit")):
        errors["building"] = ["a room needs its building and unit"]
    moved_in = d.get("moved_in")
    if moved_in is not None:
        if moved_in > today:
            errors["moved_in"] = ["must not be in the future"]
        elif info is not None and moved_in < info.birth_date:
            errors["moved_in"] = ["must not be before the birth date"]
    return out, errors


def check_status_change(resident, effective, today, field="effective"):
    """A move, departure or death applies only to an active resident, on a plausible day."""
    errors = {}
    if resident["status"] != "active":
        return {"status": [f"resident {resident['id']} is {resident['status']} since {resident['status_on']}; "
                           "only active residents change"]}
    if effective > today:
        errors[field] = ["must not be in the future"]
    elif effective < resident["birth_date"]:
        errors[field] = ["must not be before the birth date"]
    elif resident.get("moved_in") and effective < resident["moved_in"]:
        errors[field] = [f"must not be before the move-in date {resident['moved_in']}"]
    return errors


def fact_dims(resident):
    """The de-identified view of a resident that may leave the street (DESIGN §5).

    The birth cohort (year), not an age band: a band depends on the day it is read, so the levels
    above derive it there (shared.facts.age_band_of), and the -1 of a departure always meets the
    +1 of the registration in the same cell however long the person lived here.
    """
    return {"cohort": resident["birth_date"].year,
            "sex": resident["sex"], "residence_type": resident["residence_type"],
            "tags": sorted(resident.get("tags") or [])}


def is_in_scope(code, scope):
    return code is not None and code.startswith(scope)


def already_on_register(hit, scope):
    """The message for a person already on the register: where, only if the caller may see it
    (otherwise a refusal would tell a worker who lives, or died, in the next community)."""
    if not is_in_scope(hit["community_code"], scope):
        return "already on this street's register (outside your scope)"
    if hit["status"] == "deceased":
        return f"resident {hit['id']} with this number died on {hit['status_on']}"
    return f"already registered as resident {hit['id']} in community {hit['community_code']}"


def today_or(value):
    return value or clock.today()

"""Bulk import of party members from a spreadsheet (CSV in UTF-8 or GB18030).

Each row names a resident by ID number (the name, if given, must match the
register) and says how they are a member: category, the organisation holding
the membership, the day they joined, and optionally the day they reported to
the community, the posts they claimed and the branch or building group they
sit in. Two passes:

1. every row is read and checked against the file and the register: labels
   and dates, the same person twice in the file, a resident who is not on this
   street's active register within the caller's scope, a name that does not
   match, a branch or group unknown in the resident's community;
2. the rows that pass are registered (and reported) through party.register and
   party.report, one SAVEPOINT per row, so every rule, history row, event and
   fact is exactly the one the API produces, and a row the use case refuses is
   reported with its field-level errors while the others go on.

Modes as for residents (importer.MODES): `all_or_nothing` runs both passes
inside one more savepoint and rolls it back if any row failed, so the report
lists every problem of the file and nothing is written; `valid_rows` keeps the
rows that went through. A street has a few thousand party members, so going
row by row through the use cases is affordable and keeps one set of rules.

The report has the shape of a resident import's (importer.Report), with the
row number a clerk sees in Excel (the header is row 1). The phone column is
read but not imported: a phone belongs to the resident's record (PATCH the
resident), so it is listed among the ignored columns.
"""
import re
import unicodedata
import uuid

import psycopg

from services.registry import identity, party, party_rules, store, tabular
from services.registry.importer import open_table
from services.registry.residents import ID
from shared.errors import DomainError
from shared import clock

# Where a use case's field-level errors land in the spreadsheet: it names the resident by id and the
# report status, the file has an ID number and a report date. party_org_id is the branch or group
# column the row used, decided per row.
_COLUMN = {"resident_id": "id_number", "status": "reported_on", "_schema": "_row"}
_ORG_KINDS = {"branch": "party branch", "group": "building party group"}
# Interpuncts that minority names are written with (阿卜杜拉·艾力) in the forms Chinese IMEs produce.
_INTERPUNCTS = re.compile("[·•・‧．.]")
_WS = re.compile(r"\s+")


def _key(text):
    """Names compared as a clerk reads them: width, spaces, interpuncts and case do not count."""
    return _INTERPUNCTS.sub("·", _WS.sub("", unicodedata.normalize("NFKC", text))).casefold()


def _labels(mapping):
    return "、".join(mapping.values())


def _date(row, key, errors):
    text = row.get(key)
    if not text:
        return None
    try:
        return tabular.parse_date(text)
    except ValueError as exc:
        errors[key] = str(exc)
        return None


def _read(number, row, vault, today, first_row_of, errors):
    """Pass 1 without the register: cells → typed values; problems go to `errors`."""
    if row.get("_extra"):
        errors["_row"] = f"{len(row['_extra'])} cell(s) beyond the last column: {', '.join(row['_extra'][:3])}"
    r = {"name": row.get("name"), "branch": row.get("branch"), "group": row.get("group"), "id_hash": None}
    if not row.get("id_number"):
        errors["id_number"] = "required"
    else:
        try:
            r["id_hash"] = vault.lookup(identity.parse_id_number(row["id_number"], today).number, ID)
        except identity.IdNumberError as exc:
            errors["id_number"] = str(exc)
    if r["id_hash"] is not None:
        if r["id_hash"] in first_row_of:
            errors["id_number"] = f"the same person as row {first_row_of[r['id_hash']]}"
            r["id_hash"] = None
        else:
            first_row_of[r["id_hash"]] = number
    text = row.get("category")
    r["category"] = tabular.code_for("category", text)
    if r["category"] is None:
        errors["category"] = (f"unknown value {text}; expected one of {_labels(party_rules.CATEGORIES)}" if text
                              else f"required: one of {_labels(party_rules.CATEGORIES)}")
    r["membership_org"] = row.get("membership_org")
    if not r["membership_org"]:
        errors["membership_org"] = "required: the party organisation that holds the membership"
    elif len(r["membership_org"]) > party_rules.MEMBERSHIP_ORG_MAX:
        errors["membership_org"] = f"must be at most {party_rules.MEMBERSHIP_ORG_MAX} characters"
    r["joined_party"] = _date(row, "joined_party", errors)
    if not row.get("joined_party"):
        errors["joined_party"] = "required"
    r["reported_on"] = _date(row, "reported_on", errors)
    r["posts"], unknown = tabular.split_tags(row.get("posts"), "posts")
    if unknown:
        errors["posts"] = f"unknown post(s) {'、'.join(unknown)}; known: {_labels(party_rules.POSTS)}"
    elif row.get("reported_on") and not r["posts"]:
        errors["posts"] = f"required with a report date: the 1 to {party_rules.POSTS_MAX} posts claimed on reporting"
    if r["posts"] and not row.get("reported_on") and "posts" not in errors:
        errors["reported_on"] = "required with posts: posts are claimed when the member reports to the community"
    return r


def _resident(r, resident, scope, errors):
    """Pass 1 against the register: the active resident in scope the ID number names, with a matching name."""
    if resident is None or not any((code or "").startswith(scope)
                                   for code in (resident["community_code"], resident["grid_code"])):
        # One message whether the person is unknown or lives outside the scope: an import must not
        # tell a community worker who lives in the next community.
        errors["id_number"] = f"no resident with this ID number lives within your scope {scope}"
        return None
    if resident["status"] != "active":
        what = "left the street" if resident["status"] == "left" else "died"
        errors["id_number"] = (f"resident {resident['id']} {what} on {resident['status_on']}; "
                               "only a resident on the active register can be registered as a party member")
        return None
    if r["name"] and _key(r["name"]) != _key(resident["name"]):
        errors["name"] = f"does not match the name registered for this ID number (resident {resident['id']})"
    return resident


def _org(orgs, community, kind, text, parent=None):
    """(the branch or group named `text` in `community`, under `parent` if given; or None, a message).

    The full name or a unique ending of it (第一党支部 for 长海一村第一党支部) is accepted.
    """
    candidates = [o for o in orgs.get(community, ()) if o["kind"] == kind
                  and (parent is None or o["parent_id"] == parent["id"])]
    key = _key(text)
    found = ([o for o in candidates if _key(o["name"]) == key]
             or [o for o in candidates if _key(o["name"]).endswith(key)])
    if len(found) == 1:
        return found[0], None
    where = f"branch {parent['name']}" if parent else f"community {community}"
    if found:
        return None, (f"{text} matches {len(found)} {_ORG_KINDS[kind]}s of {where} "
                      f"({'、'.join(o['name'] for o in found[:5])}); give the full name")
    known = "、".join(o["name"] for o in candidates[:10]) or "none yet"
    return None, f"no {_ORG_KINDS[kind]} named {text} in {where}; known: {known}"


def _placement(r, resident, orgs, errors):
    """(party_org_id, the column it came from) for the branch or group the row names."""
    community = resident["community_code"]
    branch = None
    if r["branch"]:
        branch, message = _org(orgs, community, "branch", r["branch"])
        if message:
            errors["branch"] = message
            return None, "branch"
    if r["group"]:
        group, message = _org(orgs, community, "group", r["group"], branch)
        if message:
            errors["group"] = message
            return None, "group"
        return group["id"], "group"
    return (branch["id"] if branch else None), "branch"


def _check(table, tx, vault, caller, today, report):
    """Pass 1 over every row; returns the rows that may go to the use cases as (row number, plan)."""
    read, first_row_of = [], {}
    for number, row in table.rows:
        report.rows += 1
        errors = {}
        read.append((number, _read(number, row, vault, today, first_row_of, errors), errors))
    by_hash = store.residents_by_id_hash(tx, [r["id_hash"] for _, r, _ in read if r["id_hash"] is not None])
    communities = {res["community_code"] for res in by_hash.values()}
    orgs = {}
    for o in store.party_orgs_in(tx, sorted(communities)) if communities else ():
        orgs.setdefault(o["community_code"], []).append(o)
    plans = []
    for number, r, errors in read:
        resident = None
        if r["id_hash"] is not None:
            resident = _resident(r, by_hash.get(bytes(r["id_hash"])), caller["scope"], errors)
        org_id, org_column = None, "branch"
        if resident is not None:
            org_id, org_column = _placement(r, resident, orgs, errors)
        if errors:
            for field, message in errors.items():
                report.add(number, field, message)
            continue
        member = {"resident_id": resident["id"], "category": r["category"], "membership_org": r["membership_org"],
                  "joined_party": r["joined_party"].isoformat(), "party_org_id": org_id}
        reported = None
        if r["reported_on"] is not None:
            reported = {"reported_on": r["reported_on"].isoformat(), "posts": r["posts"]}
        plans.append((number, {"member": member, "report": reported, "org_column": org_column}))
    return plans


def _refused(report, number, plan, exc):
    """A use case's DomainError as the row's field-level errors, in the spreadsheet's columns."""
    by_column = {}
    for field, messages in (exc.fields or {"_row": [exc.message]}).items():
        base = field.split(".")[0]  # posts.0 → posts
        column = plan["org_column"] if base == "party_org_id" else _COLUMN.get(base, base)
        text = "; ".join(messages)
        # The use case names the resident by id; the clerk needs to know what is wrong with them.
        by_column.setdefault(column, []).append(f"{exc.message} ({text})" if base == "resident_id" else text)
    for column, texts in by_column.items():
        report.add(number, column, "; ".join(texts))


def _write(tx, plans, caller, today, report, progress):
    """Pass 2: each row through the use cases in its own savepoint; returns (written, import_id)."""
    import_id = str(uuid.uuid4())
    written = 0
    with tx.conn.transaction() as whole:
        for number, plan in plans:
            try:
                with tx.conn.transaction():
                    party.register(tx, plan["member"], caller, today, import_id=import_id)
                    if plan["report"] is not None:
                        party.report(tx, plan["member"]["resident_id"], plan["report"], caller, today)
            except DomainError as exc:
                _refused(report, number, plan, exc)
            else:
                written += 1
            if progress:
                progress(1)
        if report.mode == "all_or_nothing" and report.bad_rows:
            # Leaves the block quietly, undoing every row: the report still lists what each row
            # would have met, so the clerk fixes the file in one go.
            raise psycopg.Rollback(whole)
    if report.mode == "all_or_nothing" and report.bad_rows:
        return 0, None
    return written, (import_id if written else None)


def import_party_members(tx, vault, data, mode, caller, today=None, progress=None):
    """Validate and (per `mode`) register the party members in `data` (CSV bytes); returns the report."""
    table, report = open_table(data, "party_members", mode)
    today = today or clock.today()
    if "phone" in table.columns:
        report.columns = {k: v for k, v in table.columns.items() if k != "phone"}
        report.ignored = [*table.ignored, table.columns["phone"]]
    plans = _check(table, tx, vault, caller, today, report)
    if progress:
        progress(report.rows - len(plans))
    if plans:
        report.written, report.import_id = _write(tx, plans, caller, today, report, progress)
    return report.as_dict()

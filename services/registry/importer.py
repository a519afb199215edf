"""Bulk import of residents from a spreadsheet (CSV in UTF-8 or GB18030).

Every row goes through the same rules as a registration over the API
(`residency.check_resident`), then the accepted rows are written set-wise:
addresses with INSERT … ON CONFLICT over arrays, households, residents, their
history and their outbox events and facts with COPY. Two modes:

- `all_or_nothing`: any bad row and nothing is written;
- `valid_rows`: the good rows are written, the bad ones reported.

Either way the report lists every problem as (row, field, message), with the
row number a clerk sees in Excel (the header is row 1).
"""
import json
from datetime import date

from services.registry import residency, tabular
from services.registry.residents import ID, PHONE
from shared import envelope, facts
from shared.errors import ValidationFailed
from shared.messaging import FACTS

MODES = ("all_or_nothing", "valid_rows")
FACT_BATCH = 500
MAX_REPORTED_ERRORS = 10_000

COMMUNITIES = ("SELECT code, name, level, parent_code FROM nodes "
               "WHERE level IN ('community', 'grid') AND valid_to IS NULL")
TAKEN = ("SELECT id_hash, id, status, community_code, status_on FROM residents "
         "WHERE id_hash = ANY(%s) AND status IN ('active', 'deceased')")
HOUSEHOLDS_BY_NO = ("SELECT h.id, h.household_no, h.community_code, h.room_id, "
                    "(SELECT r.status = 'active' FROM residents r WHERE r.id = h.head_resident_id) AS has_head "
                    "FROM households h WHERE h.household_no = ANY(%s)")
HOUSEHOLDS_BY_ROOM = ("SELECT DISTINCT ON (b.community_code, b.name, u.name, rm.number) h.id, h.household_no, "
                      "h.community_code, h.room_id, b.name AS building, u.name AS unit, rm.number AS room, "
                      "(SELECT r.status = 'active' FROM residents r WHERE r.id = h.head_resident_id) AS has_head "
                      "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS a(c, b, u, r) "
                      "JOIN buildings b ON b.community_code = a.c AND b.name = a.b "
                      "JOIN units u ON u.building_id = b.id AND u.name = a.u "
                      "JOIN rooms rm ON rm.unit_id = u.id AND rm.number = a.r "
                      "JOIN households h ON h.room_id = rm.id "
                      "ORDER BY b.community_code, b.name, u.name, rm.number, h.id")
ADD_BUILDINGS = ("INSERT INTO buildings (community_code, grid_code, name) "
                 "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING")
BUILDING_IDS = ("SELECT b.id, b.community_code, b.name FROM buildings b "
                "JOIN unnest(%s::text[], %s::text[]) AS a(c, n) ON b.community_code = a.c AND b.name = a.n")
ADD_UNITS = "INSERT INTO units (building_id, name) SELECT * FROM unnest(%s::bigint[], %s::text[]) ON CONFLICT DO NOTHING"
UNIT_IDS = ("SELECT u.id, u.building_id, u.name FROM units u "
            "JOIN unnest(%s::bigint[], %s::text[]) AS a(b, n) ON u.building_id = a.b AND u.name = a.n")
ADD_ROOMS = "INSERT INTO rooms (unit_id, number) SELECT * FROM unnest(%s::bigint[], %s::text[]) ON CONFLICT DO NOTHING"
ROOM_IDS = ("SELECT r.id, r.unit_id, r.number FROM rooms r "
            "JOIN unnest(%s::bigint[], %s::text[]) AS a(u, n) ON r.unit_id = a.u AND r.number = a.n")
NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id FROM generate_series(1, %s)"
SET_HEADS = ("UPDATE households h SET head_resident_id = v.r "
             "FROM unnest(%s::bigint[], %s::bigint[]) AS v(h, r) WHERE h.id = v.h")
COPY_HOUSEHOLDS = "COPY households (id, household_no, community_code, room_id) FROM STDIN"
COPY_RESIDENTS = ("COPY residents (id, name, id_cipher, id_hash, phone_cipher, phone_hash, sex, birth_date, "
                  "community_code, grid_code, household_id, relation, residence_type, tags, moved_in, pseudonym) "
                  "FROM STDIN")
COPY_HISTORY = "COPY resident_history (resident_id, version, change, effective, detail, actor) FROM STDIN"
COPY_OUTBOX = "COPY outbox (event_id, exchange, routing_key, body, correlation_id) FROM STDIN"


class Report:
    def __init__(self, mode, table):
        self.mode = mode
        self.encoding = table.encoding if table else None
        self.columns = table.columns if table else {}
        self.ignored = table.ignored if table else []
        self.rows = 0
        self.bad_rows = set()
        self.errors = []
        self.written = 0

    def add(self, row, field, message):
        self.bad_rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "field": field, "message": message})

    def as_dict(self):
        return {"mode": self.mode, "encoding": self.encoding, "columns": self.columns,
                "ignored_columns": self.ignored, "rows": self.rows, "accepted": self.rows - len(self.bad_rows),
                "rejected": len(self.bad_rows), "written": self.written,
                "errors": sorted(self.errors, key=lambda e: (e["row"], e["field"])),
                "errors_truncated": len(self.errors) >= MAX_REPORTED_ERRORS}


def _places(tx, scope):
    communities, by_name, grids = {}, {}, {}
    for n in tx.all(COMMUNITIES):
        if n["level"] == "grid":
            grids[n["code"]] = n["parent_code"]
        elif n["code"].startswith(scope):
            communities[n["code"]] = n
            by_name[n["name"]] = n["code"]
            for suffix in ("居委会", "居民委员会", "社区"):
                if n["name"].endswith(suffix):
                    by_name.setdefault(n["name"][:-len(suffix)], n["code"])
    return communities, by_name, grids


def _typed(row, places, errors):
    """Spreadsheet cells → the typed dict `check_resident` takes; problems go to `errors`."""
    communities, by_name, grids = places
    d = {"name": row["name"], "id_number": row["id_number"], "phone": row.get("phone"),
         "building": row.get("building"), "unit": row.get("unit"), "room": row.get("room"),
         "household_no": row.get("household_no")}
    name = d["name"]
    if name is None:
        errors["name"] = "required"
    elif len(name) > residency.NAME_MAX or "\x00" in name:
        errors["name"] = f"must be 1 to {residency.NAME_MAX} characters without NUL"
    for key in ("building", "unit", "room"):
        if d[key] and len(d[key]) > residency.ADDRESS_MAX:
            errors[key] = f"must be at most {residency.ADDRESS_MAX} characters"
    if d["household_no"] and len(d["household_no"]) > residency.HOUSEHOLD_NO_MAX:
        errors["household_no"] = f"must be at most {residency.HOUSEHOLD_NO_MAX} characters"
    code = row.get("community_code")
    if code is None and row.get("community"):
        code = by_name.get(row["community"])
        if code is None:
            errors["community"] = f"{row['community']} is not a community of this street within your scope"
    if code is not None and code not in communities:
        errors["community_code"] = f"{code} is not an active community of this street within your scope"
    elif code is None and "community" not in errors:
        errors["community_code"] = "required"
    d["community_code"] = code
    grid = row.get("grid_code")
    if grid is not None and grids.get(grid) != code:
        errors["grid_code"] = f"{grid} is not an active grid of community {code}"
    d["grid_code"] = grid
    for key in ("sex", "relation", "residence_type"):
        text = row.get(key)
        d[key] = tabular.code_for(key, text) if text else None
        if text and d[key] is None:
            known = "、".join(getattr(residency, key.upper() + "S", {}).values()) or "男、女"
            errors[key] = f"unknown value {text}; expected one of {known}"
    if row.get("residence_type") is None:
        errors["residence_type"] = "required"
    d["tags"], unknown = tabular.split_tags(row.get("tags"))
    if unknown:
        errors["tags"] = f"unknown tag(s) {'、'.join(unknown)}; known: {'、'.join(residency.TAGS.values())}"
    for key in ("birth_date", "moved_in"):
        text = row.get(key)
        d[key] = None
        if text:
            try:
                d[key] = tabular.parse_date(text)
            except ValueError as exc:
                errors[key] = str(exc)
    if row.get("_extra"):
        errors["_row"] = f"{len(row['_extra'])} cell(s) beyond the last column: {', '.join(row['_extra'][:3])}"
    return d


def _validate(table, tx, vault, scope, today, report, progress):
    """Read, type and check every row; returns accepted rows as (row number, values, id_hash)."""
    places = _places(tx, scope)
    accepted, first_row_of = [], {}
    for number, row in table.rows:
        report.rows += 1
        errors = {}
        d = _typed(row, places, errors)
        clean, semantic = residency.check_resident(d, today)
        for field, messages in semantic.items():
            errors.setdefault(field, messages[0])
        id_hash = None
        if "id_number" not in errors:
            id_hash = vault.lookup(clean["id_number"], ID)
            if id_hash in first_row_of:
                errors["id_number"] = f"the same person as row {first_row_of[id_hash]}"
            else:
                first_row_of[id_hash] = number
        if errors:
            for field, message in errors.items():
                report.add(number, field, message)
        else:
            accepted.append((number, clean, id_hash))
        if progress and report.rows % 2000 == 0:
            progress(2000)
    if progress:
        progress(report.rows % 2000)
    return accepted


def _against_register(tx, accepted, report):
    """Refuse people already on the register (or recorded dead); returns the rest."""
    taken = {bytes(r["id_hash"]): r for r in tx.all(TAKEN, ([h for _, _, h in accepted],))}
    keep = []
    for number, clean, id_hash in accepted:
        hit = taken.get(id_hash)
        if hit is None:
            keep.append((number, clean, id_hash))
        elif hit["status"] == "deceased":
            report.add(number, "id_number", f"resident {hit['id']} with this number died on {hit['status_on']}")
        else:
            report.add(number, "id_number",
                       f"already registered as resident {hit['id']} in community {hit['community_code']}")
    return keep


def _households(tx, accepted, report):
    """Decide each row's household (existing or new) and refuse second heads; returns the rest."""
    numbers = sorted({c["household_no"] for _, c, _ in accepted if c.get("household_no")})
    by_no = {h["household_no"]: h for h in tx.all(HOUSEHOLDS_BY_NO, (numbers,))}
    rooms = sorted({(c["community_code"], c["building"], c["unit"], c["room"])
                    for _, c, _ in accepted if c.get("room") and not c.get("household_no")})
    by_room = {(h["community_code"], h["building"], h["unit"], h["room"]): h
               for h in tx.all(HOUSEHOLDS_BY_ROOM, [list(x) for x in zip(*rooms)] or [[], [], [], []])}
    community_of, head_row, keep = {}, {}, []
    for number, c, id_hash in accepted:
        if c.get("household_no"):
            key = ("no", c["household_no"])
            existing = by_no.get(c["household_no"])
        elif c.get("room"):
            key = ("room", c["community_code"], c["building"], c["unit"], c["room"])
            existing = by_room.get(key[1:])
        else:
            keep.append((number, c, id_hash, None, None))
            continue
        owner = existing["community_code"] if existing else community_of.setdefault(key, (c["community_code"], number))[0]
        if owner != c["community_code"]:
            where = "" if existing else f" (row {community_of[key][1]})"
            report.add(number, "household_no", f"{c['household_no']} belongs to community {owner}{where}")
            continue
        if c["relation"] == "self":
            if existing and existing["has_head"]:
                report.add(number, "relation", f"household {existing['household_no']} already has a head")
                continue
            if key in head_row:
                report.add(number, "relation", f"the household already has a head in row {head_row[key]}")
                continue
            head_row[key] = number
        keep.append((number, c, id_hash, key, existing))
    return keep


def _rooms(tx, rows):
    """Create the buildings, units and rooms the rows name; returns {(community, building, unit, room): id}."""
    wanted = {(c["community_code"], c["building"], c["unit"], c["room"]): c.get("grid_code")
              for _, c, _, key, existing in rows if c.get("room") and existing is None}
    if not wanted:
        return {}
    buildings = {}
    for (community, building, _, _), grid in wanted.items():
        buildings.setdefault((community, building), grid)
    tx.execute(ADD_BUILDINGS, [[k[0] for k in buildings], list(buildings.values()), [k[1] for k in buildings]])
    b_ids = {(r["community_code"], r["name"]): r["id"]
             for r in tx.all(BUILDING_IDS, [[k[0] for k in buildings], [k[1] for k in buildings]])}
    units = sorted({(b_ids[(c, b)], u) for c, b, u, _ in wanted})
    tx.execute(ADD_UNITS, [[u[0] for u in units], [u[1] for u in units]])
    u_ids = {(r["building_id"], r["name"]): r["id"] for r in tx.all(UNIT_IDS, [[u[0] for u in units], [u[1] for u in units]])}
    rooms = sorted({(u_ids[(b_ids[(c, b)], u)], r) for c, b, u, r in wanted})
    tx.execute(ADD_ROOMS, [[r[0] for r in rooms], [r[1] for r in rooms]])
    r_ids = {(r["unit_id"], r["number"]): r["id"] for r in tx.all(ROOM_IDS, [[r[0] for r in rooms], [r[1] for r in rooms]])}
    return {(c, b, u, r): r_ids[(u_ids[(b_ids[(c, b)], u)], r)] for c, b, u, r in wanted}


def _ids(tx, table, count):
    return [r["id"] for r in tx.all(NEXT_IDS, (table, count))] if count else []


def _write(tx, vault, rows, caller, today, progress):
    room_ids = _rooms(tx, rows)
    new_keys = list(dict.fromkeys(key for _, _, _, key, existing in rows if key and existing is None))
    household_ids = dict(zip(new_keys, _ids(tx, "households", len(new_keys))))
    first = {}
    for _, c, _, key, existing in rows:
        if key in household_ids:
            first.setdefault(key, c)
    with tx.conn.cursor().copy(COPY_HOUSEHOLDS) as copy:
        for key, hid in household_ids.items():
            c = first[key]
            room = room_ids.get((c["community_code"], c["building"], c["unit"], c["room"])) if c.get("room") else None
            copy.write_row((hid, c.get("household_no") or f"H{c['community_code']}-{hid:06d}", c["community_code"], room))

    resident_ids = _ids(tx, "residents", len(rows))
    source, cid, actor = tx.source, tx.correlation_id, caller["actor"]
    heads, events, fact_list = [], [], []
    seal, lookup, pseudonym = vault.seal, vault.lookup, vault.pseudonym
    with tx.conn.cursor().copy(COPY_RESIDENTS) as copy:
        for rid, (_, c, id_hash, key, existing) in zip(resident_ids, rows):
            hid = (existing["id"] if existing else household_ids[key]) if key else None
            relation = c["relation"] if key else None
            if relation == "self":
                heads.append((hid, rid))
            phone = c["phone"]
            nym = pseudonym(c["id_number"])
            copy.write_row((rid, c["name"], seal(c["id_number"], ID), id_hash,
                            seal(phone, PHONE) if phone else None, lookup(phone, PHONE) if phone else None,
                            c["sex"], c["birth_date"], c["community_code"], c.get("grid_code"), hid, relation,
                            c["residence_type"], c["tags"], c.get("moved_in"), nym))
            view = {"id": rid, "name": c["name"], "sex": c["sex"], "birth_date": c["birth_date"].isoformat(),
                    "community_code": c["community_code"], "grid_code": c.get("grid_code"), "household_id": hid,
                    "relation": relation, "residence_type": c["residence_type"], "tags": c["tags"],
                    "moved_in": c["moved_in"].isoformat() if c.get("moved_in") else None, "status": "active",
                    "status_on": None, "pseudonym": nym, "version": 1}
            events.append(envelope.make("resident_registered", view, source, cid, check=not events))
            fact_list.append(facts.fact("resident_registered", c["community_code"], today, subject=nym, delta=1,
                                        **residency.fact_dims(c, today)))
    if heads:
        tx.execute(SET_HEADS, [[h for h, _ in heads], [r for _, r in heads]])
    with tx.conn.cursor().copy(COPY_HISTORY) as copy:
        for rid, (_, c, _, key, existing) in zip(resident_ids, rows):
            hid = (existing["id"] if existing else household_ids[key]) if key else None
            detail = json.dumps({"community_code": c["community_code"], "household_id": hid, "import": True})
            copy.write_row((rid, 1, "registered", c.get("moved_in") or today, detail, actor))
    exchange = f"{source['service']}.events"
    with tx.conn.cursor().copy(COPY_OUTBOX) as copy:
        for env in events:
            copy.write_row((env["event_id"], exchange, "resident_registered", json.dumps(env, ensure_ascii=False), cid))
        for start in range(0, len(fact_list), FACT_BATCH):
            signed = tx.signer.sign(facts.batch(source, fact_list[start:start + FACT_BATCH]))
            copy.write_row((signed["batch_id"], FACTS.name, f"{source['service']}.resident_registered",
                            json.dumps(signed, ensure_ascii=False), cid))
    tx.execute(f"NOTIFY linli_outbox_{source['service']}")
    if progress:
        progress(0)
    return len(rows)


def import_residents(tx, vault, data, mode, caller, today=None, progress=None):
    """Validate and (per `mode`) write the residents in `data` (CSV bytes); returns the report."""
    if mode not in MODES:
        raise ValidationFailed("unknown import mode", {"mode": [f"must be one of {', '.join(MODES)}"]})
    today = today or date.today()
    try:
        table = tabular.read(data, "residents")
    except tabular.FileProblem as exc:
        raise ValidationFailed(str(exc), exc.errors)
    report = Report(mode, table)
    accepted = _validate(table, tx, vault, caller["scope"], today, report, progress)
    accepted = _against_register(tx, accepted, report)
    rows = _households(tx, accepted, report)
    if rows and (mode == "valid_rows" or not report.bad_rows):
        report.written = _write(tx, vault, rows, caller, today, progress)
    return report.as_dict()

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
import functools
import json
import time
import uuid

from services.registry import residency, tabular
from services.registry.store import imports as sql
from services.registry.residents import ID, PHONE
from services.registry.schemas import IMPORT_MODES
from shared import facts, streams
from shared.db import unique_races
from shared.errors import ValidationFailed
from shared.messaging import FACTS
from shared import clock

MODES = IMPORT_MODES
FACT_BATCH = 500
EVENT_BATCH = 500
MAX_REPORTED_ERRORS = 10_000

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
        self.import_id = None
        self.seconds = {}  # where the time went, for operators and the benchmark (commit not included)

    def add(self, row, field, message):
        self.bad_rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "field": field, "message": message})

    def as_dict(self):
        return {"mode": self.mode, "encoding": self.encoding, "columns": self.columns,
                "ignored_columns": self.ignored, "rows": self.rows, "accepted": self.rows - len(self.bad_rows),
                "rejected": len(self.bad_rows), "written": self.written, "import_id": self.import_id,
                "errors": sorted(self.errors, key=lambda e: (e["row"], e["field"])),
                "errors_truncated": len(self.errors) >= MAX_REPORTED_ERRORS,
                "seconds": {phase: round(s, 3) for phase, s in self.seconds.items()}}


def _places(tx, scope):
    communities, by_name, grids = {}, {}, {}
    for n in tx.all(sql.COMMUNITIES):
        if n["level"] == "grid":
            grids[n["code"]] = n["parent_code"]
        elif n["code"].startswith(scope):
            communities[n["code"]] = n
            by_name[n["name"]] = n["code"]
            for suffix in ("居委会", "居民委员会", "社区"):
                if n["name"].endswith(suffix):
                    by_name.setdefault(n["name"][:-len(suffix)], n["code"])
    return communities, by_name, grids


# Spreadsheet columns repeat the same few values (labels, tag sets, birth dates) thousands of
# times; remembering each conversion keeps an import's per-row cost down. The caches are bounded
# by the vocabulary and by the calendar.
@functools.lru_cache(maxsize=4096)
def _label(key, text):
    return tabular.code_for(key, text)


@functools.lru_cache(maxsize=4096)
def _tags(text):
    codes, unknown = tabular.split_tags(text)
    return tuple(codes), unknown


@functools.lru_cache(maxsize=65536)
def _date(text):
    return tabular.parse_date(text)


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
        d[key] = _label(key, text) if text else None
        if text and d[key] is None:
            known = "、".join(getattr(residency, key.upper() + "S", {}).values()) or "男、女"
            errors[key] = f"unknown value {text}; expected one of {known}"
    if row.get("residence_type") is None:
        errors["residence_type"] = "required"
    d["tags"], unknown = _tags(row.get("tags"))
    if unknown:
        errors["tags"] = f"unknown tag(s) {'、'.join(unknown)}; known: {'、'.join(residency.TAGS.values())}"
    for key in ("birth_date", "moved_in"):
        text = row.get(key)
        d[key] = None
        if text:
            try:
                d[key] = _date(text)
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


def _against_register(tx, accepted, report, scope):
    """Refuse people already on the register (or recorded dead); returns the rest."""
    taken = {bytes(r["id_hash"]): r for r in tx.all(sql.TAKEN, ([h for _, _, h in accepted],))}
    keep = []
    for number, clean, id_hash in accepted:
        hit = taken.get(id_hash)
        if hit is None:
            keep.append((number, clean, id_hash))
        else:
            report.add(number, "id_number", residency.already_on_register(hit, scope))
    return keep


def _households(tx, accepted, report):
    """Decide each row's household (existing or new) and refuse second heads; returns the rest."""
    numbers = sorted({c["household_no"] for _, c, _ in accepted if c.get("household_no")})
    by_no = {h["household_no"]: h for h in tx.all(sql.HOUSEHOLDS_BY_NO, (numbers,))}
    rooms = sorted({(c["community_code"], c["building"], c["unit"], c["room"])
                    for _, c, _ in accepted if c.get("room") and not c.get("household_no")})
    by_room = {(h["community_code"], h["building"], h["unit"], h["room"]): h
               for h in tx.all(sql.HOUSEHOLDS_BY_ROOM, [list(x) for x in zip(*rooms)] or [[], [], [], []])}
    community_of, address_of, head_row, keep = {}, {}, {}, []
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
        # As over the API: a household lives at one address.
        address = (c["building"], c["unit"], c["room"]) if c.get("room") else None
        if address and existing and existing["room_id"] is not None and \
                (existing["building"], existing["unit"], existing["room"]) != address:
            report.add(number, "room", f"household {c['household_no']} is registered at another room")
            continue
        if address and not existing:
            first_address, first_row = address_of.setdefault(key, (address, number))
            if first_address != address:
                report.add(number, "room", f"row {first_row} gives household {c['household_no']} another room")
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
    tx.execute(sql.ADD_BUILDINGS, [[k[0] for k in buildings], list(buildings.values()), [k[1] for k in buildings]])
    b_ids = {(r["community_code"], r["name"]): r["id"]
             for r in tx.all(sql.BUILDING_IDS, [[k[0] for k in buildings], [k[1] for k in buildings]])}
    units = sorted({(b_ids[(c, b)], u) for c, b, u, _ in wanted})
    tx.execute(sql.ADD_UNITS, [[u[0] for u in units], [u[1] for u in units]])
    u_ids = {(r["building_id"], r["name"]): r["id"] for r in tx.all(sql.UNIT_IDS, [[u[0] for u in units], [u[1] for u in units]])}
    rooms = sorted({(u_ids[(b_ids[(c, b)], u)], r) for c, b, u, r in wanted})
    tx.execute(sql.ADD_ROOMS, [[r[0] for r in rooms], [r[1] for r in rooms]])
    r_ids = {(r["unit_id"], r["number"]): r["id"] for r in tx.all(sql.ROOM_IDS, [[r[0] for r in rooms], [r[1] for r in rooms]])}
    return {(c, b, u, r): r_ids[(u_ids[(b_ids[(c, b)], u)], r)] for c, b, u, r in wanted}


def _ids(tx, table, count):
    if not count:
        return []
    sequence = tx.one(sql.SEQUENCE, (table,))["seq"]
    return [r["id"] for r in tx.all(sql.NEXT_IDS, (sequence, count))]


def _write(tx, vault, rows, caller, today, progress):
    room_ids = _rooms(tx, rows)
    resident_ids = _ids(tx, "residents", len(rows))
    new_keys = list(dict.fromkeys(key for _, _, _, key, existing in rows if key and existing is None))
    household_ids = dict(zip(new_keys, _ids(tx, "households", len(new_keys))))
    first, head_of, heads = {}, {}, []
    for rid, (_, c, _, key, existing) in zip(resident_ids, rows):
        if key is None:
            continue
        if existing is None:
            first.setdefault(key, c)
        if c["relation"] == "self":
            if existing is None:
                head_of[key] = rid
            else:
                heads.append((existing["id"], rid))
    # New households name their head before the head's row exists: the foreign key is deferred to
    # commit, which saves updating every new household afterwards.
    new = [(hid, first[key], head_of.get(key)) for key, hid in household_ids.items()]
    tx.execute(sql.ADD_HOUSEHOLDS, [
        [hid for hid, _, _ in new], [c.get("household_no") for _, c, _ in new],
        [c["community_code"] for _, c, _ in new],
        [room_ids.get((c["community_code"], c["building"], c["unit"], c["room"])) if c.get("room") else None
         for _, c, _ in new], [head for _, _, head in new]])
    source, cid = tx.source, tx.correlation_id
    fact_list, dims_seen, day = [], {}, today.isoformat()
    seal, lookup, pseudonym, fact, dims = vault.seal, vault.lookup, vault.pseudonym, facts.fact, residency.fact_dims
    handover = vault.handover
    with tx.conn.cursor().copy(sql.COPY_RESIDENTS) as copy:
        copy.set_types(sql.COPY_RESIDENTS_TYPES)
        for rid, (_, c, id_hash, key, existing) in zip(resident_ids, rows):
            hid = (existing["id"] if existing else household_ids[key]) if key else None
            relation = c["relation"] if key else None
            phone = c["phone"]
            nym = pseudonym(c["id_number"])
            copy.write_row((rid, c["name"], seal(c["id_number"], ID), id_hash,
                            seal(phone, PHONE) if phone else None, lookup(phone, PHONE) if phone else None,
                            c["sex"], c["birth_date"], c["community_code"], c.get("grid_code"), hid, relation,
                            c["residence_type"], list(c["tags"]), c.get("moved_in"), nym, handover(c["id_number"])))
            dims_key = (c["birth_date"].year, c["sex"], c["residence_type"], tuple(c["tags"]))
            row_dims = dims_seen.get(dims_key)
            if row_dims is None:
                row_dims = dims_seen[dims_key] = dims(c)
            fact_list.append(fact("resident_registered", c["community_code"], day, delta=1, **row_dims))
    if heads:
        tx.execute(sql.SET_HEADS, [[h for h, _ in heads], [r for _, r in heads]])
    import_id = str(uuid.uuid4())
    routing_key = f"{source['service']}.resident_registered"
    starts = range(0, len(fact_list), FACT_BATCH)
    # Numbered in the facts stream (shared/streams.py) before the pipeline, which cannot wait for an answer.
    first_seq = streams.allocate(tx, streams.FACTS_STREAM, len(starts)) if starts else None
    # Pipeline mode sends history and events without waiting: the database builds them while
    # Python signs the fact batches, the two largest remaining pieces of work overlapping.
    with tx.conn.pipeline():
        tx.execute(sql.ADD_HISTORY, {"ids": resident_ids, "today": today, "actor": caller["actor"],
                                     "import_id": import_id})
        tx.execute(sql.ADD_EVENTS, {"ids": resident_ids, "exchange": f"{source['service']}.events",
                                    "source": json.dumps(source), "cid": cid, "import_id": import_id,
                                    "per_event": EVENT_BATCH})
        signed = []
        for n, start in enumerate(starts):
            batch = facts.batch(source, fact_list[start:start + FACT_BATCH], seq=first_seq + n)
            signed.append((batch["batch_id"], FACTS.name, routing_key, tx.signer.sign_to_json(batch), cid,
                           streams.FACTS_STREAM, first_seq + n))
        tx.conn.cursor().executemany(sql.ADD_FACT_BATCH, signed)
    tx.execute(f"NOTIFY linli_outbox_{source['service']}")
    return len(rows), import_id


def open_table(data, kind, mode):
    """(table, empty report) for a spreadsheet of `kind`, or ValidationFailed for a bad mode or file."""
    if mode not in MODES:
        raise ValidationFailed("unknown import mode", {"mode": [f"must be one of {', '.join(MODES)}"]})
    try:
        table = tabular.read(data, kind)
    except tabular.FileProblem as exc:
        raise ValidationFailed(str(exc), exc.errors)
    return table, Report(mode, table)


def import_residents(tx, vault, data, mode, caller, today=None, progress=None):
    """Validate and (per `mode`) write the residents in `data` (CSV bytes); returns the report."""
    table, report = open_table(data, "residents", mode)
    today = today or clock.today()
    started = time.perf_counter()
    accepted = _validate(table, tx, vault, caller["scope"], today, report, progress)
    report.seconds["check_rows"] = time.perf_counter() - started
    accepted = _against_register(tx, accepted, report, caller["scope"])
    rows = _households(tx, accepted, report)
    report.seconds["check_register"] = time.perf_counter() - started - report.seconds["check_rows"]
    if rows and (mode == "valid_rows" or not report.bad_rows):
        # Another import or registration racing this one meets the unique indexes: a 409, not a 500.
        with unique_races({}):
            report.written, report.import_id = _write(tx, vault, rows, caller, today, progress)
        report.seconds["write"] = time.perf_counter() - started - sum(report.seconds.values())
    return report.as_dict()

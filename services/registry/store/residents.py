"""SQL for residents, households, their addresses and history, and the audit log of reads."""
import json

__all__ = ["add_room", "household_by_no", "household_in_room", "household", "add_household", "set_head",
           "clear_head", "address_of", "resident", "active_by_id_hash", "deceased_by_id_hash", "add_resident",
           "update_resident", "move_resident", "end_residence", "add_history", "resident_history",
           "list_residents", "audit", "list_audit"]

ADD_BUILDING = ("INSERT INTO buildings (community_code, grid_code, name) VALUES (%s, %s, %s) "
                "ON CONFLICT (community_code, name) DO UPDATE SET grid_code = coalesce(buildings.grid_code, "
                "EXCLUDED.grid_code) RETURNING id")
ADD_UNIT = ("INSERT INTO units (building_id, name) VALUES (%s, %s) "
            "ON CONFLICT (building_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id")
ADD_ROOM = ("INSERT INTO rooms (unit_id, number) VALUES (%s, %s) "
            "ON CONFLICT (unit_id, number) DO UPDATE SET number = EXCLUDED.number RETURNING id")
HOUSEHOLD_BY_NO = "SELECT * FROM households WHERE household_no = %s FOR UPDATE"
HOUSEHOLD_IN_ROOM = "SELECT * FROM households WHERE room_id = %s ORDER BY id LIMIT 1 FOR UPDATE"
HOUSEHOLD_BY_ID = "SELECT * FROM households WHERE id = %s"
# The generated number uses the row's own id, so it is unique without a second sequence.
ADD_HOUSEHOLD = ("WITH n AS (SELECT nextval(pg_get_serial_sequence('households', 'id')) AS id) "
                 "INSERT INTO households (id, household_no, community_code, room_id) "
                 "SELECT n.id, coalesce(%(no)s, 'H' || %(community)s || '-' || lpad(n.id::text, 6, '0')), "
                 "%(community)s, %(room)s FROM n RETURNING *")
SET_HEAD = "UPDATE households SET head_resident_id = %s WHERE id = %s"
CLEAR_HEAD = "UPDATE households SET head_resident_id = NULL WHERE head_resident_id = %s"
ADDRESS = ("SELECT b.name AS building, u.name AS unit, r.number AS room FROM rooms r "
           "JOIN units u ON u.id = r.unit_id JOIN buildings b ON b.id = u.building_id WHERE r.id = %s")

RESIDENT_COLUMNS = ("r.id, r.name, r.id_cipher, r.phone_cipher, r.sex, r.birth_date, r.community_code, r.grid_code, "
                    "r.household_id, r.relation, r.residence_type, r.tags, r.moved_in, r.status, r.status_on, "
                    "r.pseudonym, r.version, h.household_no, "
                    "(SELECT b.name || u.name || rm.number || '室' FROM rooms rm JOIN units u ON u.id = rm.unit_id "
                    " JOIN buildings b ON b.id = u.building_id WHERE rm.id = h.room_id) AS address")
RESIDENT = f"SELECT {RESIDENT_COLUMNS} FROM residents r LEFT JOIN households h ON h.id = r.household_id WHERE r.id = %s"
RESIDENT_FOR_UPDATE = RESIDENT + " FOR UPDATE OF r"
ACTIVE_BY_ID_HASH = "SELECT id, community_code FROM residents WHERE id_hash = %s AND status = 'active'"
DECEASED_BY_ID_HASH = ("SELECT id, status_on, community_code FROM residents "
                       "WHERE id_hash = %s AND status = 'deceased' LIMIT 1")
ADD_RESIDENT = ("INSERT INTO residents (name, id_cipher, id_hash, phone_cipher, phone_hash, sex, birth_date, "
                "community_code, grid_code, household_id, relation, residence_type, tags, moved_in, pseudonym, "
                "handover_hash) "
                "VALUES (%(name)s, %(id_cipher)s, %(id_hash)s, %(phone_cipher)s, %(phone_hash)s, %(sex)s, "
                "%(birth_date)s, %(community_code)s, %(grid_code)s, %(household_id)s, %(relation)s, "
                "%(residence_type)s, %(tags)s, %(moved_in)s, %(pseudonym)s, %(handover_hash)s) RETURNING id")
UPDATE_RESIDENT = ("UPDATE residents SET name = %(name)s, phone_cipher = %(phone_cipher)s, phone_hash = %(phone_hash)s, "
                   "residence_type = %(residence_type)s, tags = %(tags)s, grid_code = %(grid_code)s, "
                   "version = version + 1, updated_at = now() WHERE id = %(id)s RETURNING version")
MOVE_RESIDENT = ("UPDATE residents SET community_code = %(community_code)s, grid_code = %(grid_code)s, "
                 "household_id = %(household_id)s, relation = %(relation)s, moved_in = %(effective)s, "
                 "version = version + 1, updated_at = now() WHERE id = %(id)s RETURNING version")
END_RESIDENCE = ("UPDATE residents SET status = %s, status_on = %s, version = version + 1, updated_at = now() "
                 "WHERE id = %s RETURNING version")
ADD_HISTORY = ("INSERT INTO resident_history (resident_id, version, change, effective, detail, actor) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
RESIDENT_HISTORY = ("SELECT version, change, effective, detail, actor, changed_at FROM resident_history "
                    "WHERE resident_id = %s ORDER BY version")
LIST_RESIDENTS = (f"SELECT {RESIDENT_COLUMNS} FROM residents r LEFT JOIN households h ON h.id = r.household_id "
                  "WHERE (starts_with(r.community_code, %(under)s) OR starts_with(r.grid_code, %(under)s)) "
                  "AND (%(status)s = 'all' OR r.status = %(status)s) "
                  "AND (%(tag)s::text IS NULL OR r.tags @> ARRAY[%(tag)s::text]) "
                  "AND (%(residence_type)s::text IS NULL OR r.residence_type = %(residence_type)s) "
                  "AND (%(name)s::text IS NULL OR strpos(r.name, %(name)s) > 0) "
                  "AND (%(id_hash)s::bytea IS NULL OR r.id_hash = %(id_hash)s) "
                  "AND (%(phone_hash)s::bytea IS NULL OR r.phone_hash = %(phone_hash)s) "
                  "AND (%(household_id)s::bigint IS NULL OR r.household_id = %(household_id)s) "
                  "AND (%(building)s::text IS NULL OR EXISTS (SELECT 1 FROM rooms rm JOIN units u ON u.id = rm.unit_id "
                  "     JOIN buildings b ON b.id = u.building_id WHERE rm.id = h.room_id AND b.name = %(building)s)) "
                  "AND r.id > %(after)s ORDER BY r.id LIMIT %(limit)s")
AUDIT = ("INSERT INTO audit_log (actor, action, record_type, record_id, community_code, correlation_id) "
         "SELECT %s, %s, %s, unnest(%s::bigint[]), unnest(%s::text[]), %s")
LIST_AUDIT = ("SELECT id, at, actor, action, record_type, record_id, community_code, correlation_id FROM audit_log "
              "WHERE starts_with(coalesce(community_code, ''), %(scope)s) "
              "AND (%(actor)s::text IS NULL OR actor = %(actor)s) "
              "AND (%(record_type)s::text IS NULL OR record_type = %(record_type)s) "
              "AND (%(record_id)s::bigint IS NULL OR record_id = %(record_id)s) "
              "AND (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
              "AND (%(until)s::timestamptz IS NULL OR at < %(until)s) "
              "AND id > %(after)s ORDER BY id LIMIT %(limit)s")


def add_room(tx, community_code, grid_code, building, unit, room):
    building_id = tx.one(ADD_BUILDING, (community_code, grid_code, building))["id"]
    unit_id = tx.one(ADD_UNIT, (building_id, unit))["id"]
    return tx.one(ADD_ROOM, (unit_id, room))["id"]


def household_by_no(tx, household_no):
    return tx.one(HOUSEHOLD_BY_NO, (household_no,))


def household_in_room(tx, room_id):
    return tx.one(HOUSEHOLD_IN_ROOM, (room_id,))


def household(tx, household_id):
    return tx.one(HOUSEHOLD_BY_ID, (household_id,))


def add_household(tx, household_no, community_code, room_id):
    return tx.one(ADD_HOUSEHOLD, {"no": household_no, "community": community_code, "room": room_id})


def set_head(tx, household_id, resident_id):
    tx.execute(SET_HEAD, (resident_id, household_id))


def clear_head(tx, resident_id):
    tx.execute(CLEAR_HEAD, (resident_id,))


def address_of(tx, room_id):
    return tx.one(ADDRESS, (room_id,))


def resident(tx, resident_id, for_update=False):
    return tx.one(RESIDENT_FOR_UPDATE if for_update else RESIDENT, (resident_id,))


def active_by_id_hash(tx, id_hash):
    return tx.one(ACTIVE_BY_ID_HASH, (id_hash,))


def deceased_by_id_hash(tx, id_hash):
    return tx.one(DECEASED_BY_ID_HASH, (id_hash,))


def add_resident(tx, values):
    return tx.one(ADD_RESIDENT, values)["id"]


def update_resident(tx, values):
    return tx.one(UPDATE_RESIDENT, values)["version"]


def move_resident(tx, values):
    return tx.one(MOVE_RESIDENT, values)["version"]


def end_residence(tx, resident_id, status, on):
    return tx.one(END_RESIDENCE, (status, on, resident_id))["version"]


def add_history(tx, resident_id, version, change, effective, detail, actor):
    tx.execute(ADD_HISTORY, (resident_id, version, change, effective, json.dumps(detail, ensure_ascii=False, default=str),
                             actor))


def resident_history(tx, resident_id):
    return tx.all(RESIDENT_HISTORY, (resident_id,))


def list_residents(tx, **query):
    return tx.all(LIST_RESIDENTS, query)


def audit(tx, actor, action, record_type, records, correlation_id=None):
    """Append one audit row per record read: records are (id, community_code) pairs."""
    if records:
        ids, codes = zip(*records)
        tx.execute(AUDIT, (actor, action, record_type, list(ids), list(codes), correlation_id))


def list_audit(tx, **query):
    return tx.all(LIST_AUDIT, query)

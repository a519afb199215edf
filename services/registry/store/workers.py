"""SQL for community workers: appointments, annual assessments and history."""
import json

__all__ = ["worker", "active_appointment", "seat_holder", "add_worker", "end_worker", "touch_worker",
           "add_worker_history", "worker_history", "assessment", "add_assessment", "assessments", "list_workers",
           "active_workers_of_resident"]

WORKER_COLUMNS = ("id, resident_id, name, id_cipher, phone_cipher, role, community_code, grid_code, origin, "
                  "started_on, status, left_on, left_reason, version")
WORKER = f"SELECT {WORKER_COLUMNS} FROM workers WHERE id = %s"
WORKER_FOR_UPDATE = WORKER + " FOR UPDATE"
OF_RESIDENT = (f"SELECT {WORKER_COLUMNS} FROM workers WHERE resident_id = %s AND status = 'active' "
               "ORDER BY id FOR UPDATE")
ACTIVE_APPOINTMENT = "SELECT id, community_code FROM workers WHERE id_hash = %s AND role = %s AND status = 'active'"
SEAT_HOLDER = "SELECT id FROM workers WHERE community_code = %s AND role = %s AND status = 'active'"
ADD = ("INSERT INTO workers (resident_id, name, id_cipher, id_hash, phone_cipher, phone_hash, role, community_code, "
       "grid_code, origin, started_on) VALUES (%(resident_id)s, %(name)s, %(id_cipher)s, %(id_hash)s, "
       "%(phone_cipher)s, %(phone_hash)s, %(role)s, %(community_code)s, %(grid_code)s, %(origin)s, %(started_on)s) "
       "RETURNING id")
END = ("UPDATE workers SET status = 'left', left_on = %s, left_reason = %s, version = version + 1, "
       "updated_at = now() WHERE id = %s RETURNING version")
TOUCH = "UPDATE workers SET version = version + 1, updated_at = now() WHERE id = %s RETURNING version"
ADD_HISTORY = ("INSERT INTO worker_history (worker_id, version, change, effective, detail, actor) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
HISTORY = ("SELECT version, change, effective, detail, actor, changed_at FROM worker_history "
           "WHERE worker_id = %s ORDER BY version")
ASSESSMENT = "SELECT year, assessed_on FROM worker_assessments WHERE worker_id = %s AND year = %s"
ADD_ASSESSMENT = ("INSERT INTO worker_assessments (worker_id, year, score, outcome, assessed_on, note, actor) "
                  "VALUES (%(worker_id)s, %(year)s, %(score)s, %(outcome)s, %(assessed_on)s, %(note)s, %(actor)s)")
ASSESSMENTS = ("SELECT year, score, outcome, assessed_on, note, actor FROM worker_assessments "
               "WHERE worker_id = %s ORDER BY year")
LIST = (f"SELECT {WORKER_COLUMNS} FROM workers "
        "WHERE (starts_with(community_code, %(under)s) OR starts_with(grid_code, %(under)s)) "
        "AND (%(community_code)s::text IS NULL OR community_code = %(community_code)s) "
        "AND (%(role)s::text IS NULL OR role = %(role)s) "
        "AND (%(origin)s::text IS NULL OR origin = %(origin)s) "
        "AND (%(status)s = 'all' OR status = %(status)s) "
        "AND id > %(after)s ORDER BY id LIMIT %(limit)s")


def worker(tx, worker_id, for_update=False):
    return tx.one(WORKER_FOR_UPDATE if for_update else WORKER, (worker_id,))


def active_appointment(tx, id_hash, role):
    return tx.one(ACTIVE_APPOINTMENT, (id_hash, role))


def seat_holder(tx, community_code, role):
    return tx.one(SEAT_HOLDER, (community_code, role))


def add_worker(tx, values):
    return tx.one(ADD, values)["id"]


def end_worker(tx, worker_id, on, reason):
    return tx.one(END, (on, reason, worker_id))["version"]


def touch_worker(tx, worker_id):
    """A new version for a change that lives in another table (assessments)."""
    return tx.one(TOUCH, (worker_id,))["version"]


def add_worker_history(tx, worker_id, version, change, effective, detail, actor):
    tx.execute(ADD_HISTORY, (worker_id, version, change, effective,
                             json.dumps(detail, ensure_ascii=False, default=str), actor))


def worker_history(tx, worker_id):
    return tx.all(HISTORY, (worker_id,))


def assessment(tx, worker_id, year):
    return tx.one(ASSESSMENT, (worker_id, year))


def add_assessment(tx, values):
    tx.execute(ADD_ASSESSMENT, values)


def assessments(tx, worker_id):
    return tx.all(ASSESSMENTS, (worker_id,))


def list_workers(tx, **query):
    return tx.all(LIST, query)


def active_workers_of_resident(tx, resident_id):
    """The active appointments linked to a resident record, locked, in id order."""
    return tx.all(OF_RESIDENT, (resident_id,))

"""SQL for the bulk import of residents: set-wise look-ups, address creation, COPY, events built in SQL."""

COMMUNITIES = ("SELECT code, name, level, parent_code FROM nodes "
               "WHERE level IN ('community', 'grid') AND valid_to IS NULL")
# %b: 100,000 hashes sent as text would cost a second of hex-escaping in Python alone.
TAKEN = ("SELECT r.id_hash, r.id, r.status, r.community_code, r.status_on FROM unnest(%b::bytea[]) AS h(hash) "
         "JOIN residents r ON r.id_hash = h.hash AND r.status IN ('active', 'deceased')")
HOUSEHOLDS_BY_NO = ("SELECT h.id, h.household_no, h.community_code, h.room_id, "
                    "b.name AS building, u.name AS unit, rm.number AS room, "
                    "(SELECT r.status = 'active' FROM residents r WHERE r.id = h.head_resident_id) AS has_head "
                    "FROM households h LEFT JOIN rooms rm ON rm.id = h.room_id "
                    "LEFT JOIN units u ON u.id = rm.unit_id LEFT JOIN buildings b ON b.id = u.building_id "
                    "WHERE h.household_no = ANY(%s)")
HOUSEHOLDS_BY_ROOM = ("SELECT DISTINCT ON (b.community_code, b.name, u.name, rm.number) h.id, h.household_no, "
                      "h.community_code, h.room_id, b.name AS building, u.name AS unit, rm.number AS room, "
                      "(SELECT r.status = 'active' FROM residents r WHERE r.id = h.head_resident_id) AS has_head "
                      "FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS a(c, b, u, r) "
                      "JOIN buildings b ON b.community_code = a.c AND b.name = a.b "
                      "JOIN units u ON u.building_id = b.id AND u.name = a.u "
                      "JOIN rooms rm ON rm.unit_id = u.id AND rm.number = a.r "
                      "JOIN households h ON h.room_id = rm.id "
                      "ORDER BY b.community_code, b.name, u.name, rm.number, h.id")
ADD_BUILDINGS = ("INSERT INTO buildings (community_code, grid_code, name) "
                 "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[]) ON CONFLICT DO NOTHING")
BUILDING_IDS = ("SELECT b.id, b.community_code, b.name FROM buildings b "
                "JOIN unnest(%b::text[], %b::text[]) AS a(c, n) ON b.community_code = a.c AND b.name = a.n")
ADD_UNITS = "INSERT INTO units (building_id, name) SELECT * FROM unnest(%b::bigint[], %b::text[]) ON CONFLICT DO NOTHING"
UNIT_IDS = ("SELECT u.id, u.building_id, u.name FROM units u "
            "JOIN unnest(%b::bigint[], %b::text[]) AS a(b, n) ON u.building_id = a.b AND u.name = a.n")
ADD_ROOMS = "INSERT INTO rooms (unit_id, number) SELECT * FROM unnest(%b::bigint[], %b::text[]) ON CONFLICT DO NOTHING"
ROOM_IDS = ("SELECT r.id, r.unit_id, r.number FROM rooms r "
            "JOIN unnest(%b::bigint[], %b::text[]) AS a(u, n) ON r.unit_id = a.u AND r.number = a.n")
# The sequence is named as a constant: nextval() of a name computed in the query looks the
# sequence up again for every row, five times slower over 100,000 ids.
SEQUENCE = "SELECT pg_get_serial_sequence(%s, 'id') AS seq"
NEXT_IDS = "SELECT nextval(%s::regclass) AS id FROM generate_series(1, %s)"
SET_HEADS = ("UPDATE households h SET head_resident_id = v.r "
             "FROM unnest(%b::bigint[], %b::bigint[]) AS v(h, r) WHERE h.id = v.h")
# Binary COPY: sealed values and hashes go over as bytes instead of being hex-escaped row by row.
COPY_RESIDENTS = ("COPY residents (id, name, id_cipher, id_hash, phone_cipher, phone_hash, sex, birth_date, "
                  "community_code, grid_code, household_id, relation, residence_type, tags, moved_in, pseudonym, "
                  "handover_hash) FROM STDIN (FORMAT BINARY)")
COPY_RESIDENTS_TYPES = ["int8", "text", "bytea", "bytea", "bytea", "bytea", "text", "date", "text", "text",
                        "int8", "text", "text", "text[]", "date", "text", "bytea"]
# History and events of the new rows are built by the database from the rows themselves, with no
# per-row JSON in Python. An import publishes `residents_imported` events of up to EVENT_BATCH (500)
# residents each (a 100,000-row import is 200 messages, not 100,000); each element has exactly the
# keys of a `resident_registered` payload (residents._event; a test holds them equal).
ADD_HISTORY = ("INSERT INTO resident_history (resident_id, version, change, effective, detail, actor) "
               "SELECT id, 1, 'registered', coalesce(moved_in, %(today)s), jsonb_build_object("
               "'community_code', community_code, 'household_id', household_id, 'import_id', %(import_id)s::text), "
               "%(actor)s FROM residents WHERE id = ANY(%(ids)b)")
ADD_EVENTS = ("INSERT INTO outbox (event_id, exchange, routing_key, body, correlation_id) "
              "SELECT b.eid, %(exchange)s, 'residents_imported', json_build_object("
              "'event_id', b.eid, 'type', 'residents_imported', 'version', 1, 'occurred_at', now(), "
              "'source', %(source)s::json, 'correlation_id', %(cid)s::text, 'payload', json_build_object("
              "'import_id', %(import_id)s::text, 'part', b.part + 1, 'residents', b.residents)), %(cid)s "
              "FROM (SELECT gen_random_uuid() AS eid, part, json_agg(doc ORDER BY id) AS residents FROM ("
              "  SELECT t.id, (row_number() OVER (ORDER BY t.id) - 1) / %(per_event)s AS part, t AS doc FROM ("
              "    SELECT r.id, r.name, r.sex, r.birth_date, r.community_code, r.grid_code, r.household_id, "
              "    r.relation, r.residence_type, r.tags, r.moved_in, r.status, r.status_on, r.pseudonym, r.version "
              "    FROM residents r WHERE r.id = ANY(%(ids)b)) t) p GROUP BY part ORDER BY part) b")
ADD_HOUSEHOLDS = ("INSERT INTO households (id, household_no, community_code, room_id, head_resident_id) "
                  "SELECT id, coalesce(no, 'H' || community || '-' || lpad(id::text, 6, '0')), community, room, head "
                  "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::bigint[]) "
                  "AS h(id, no, community, room, head)")
ADD_FACT_BATCH = ("INSERT INTO outbox (event_id, exchange, routing_key, body, correlation_id, stream, seq) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s)")

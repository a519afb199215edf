"""SQL for the community party structure, party members, their history and the report rate."""
import json

__all__ = ["party_org", "party_committee", "party_building", "add_party_org", "party_org_rows", "party_member",
           "add_party_member", "report_party_member", "place_party_member", "withdraw_party_member",
           "relocate_party_member", "add_party_history", "party_history", "list_party_members",
           "party_report_rate", "residents_by_id_hash", "party_orgs_in"]

ORG_COLUMNS = ("o.id, o.community_code, o.kind, o.name, o.parent_id, o.building_id, "
               "(SELECT b.name FROM buildings b WHERE b.id = o.building_id) AS building")
PARTY_ORG = f"SELECT {ORG_COLUMNS} FROM party_orgs o WHERE o.id = %s"
PARTY_COMMITTEE = f"SELECT {ORG_COLUMNS} FROM party_orgs o WHERE o.community_code = %s AND o.kind = 'committee'"
PARTY_BUILDING = "SELECT id, name FROM buildings WHERE community_code = %s AND name = %s"
ADD_PARTY_ORG = ("INSERT INTO party_orgs (community_code, kind, name, parent_id, building_id) "
                 "VALUES (%(community_code)s, %(kind)s, %(name)s, %(parent_id)s, %(building_id)s) RETURNING id")
PARTY_ORG_ROWS = (f"SELECT {ORG_COLUMNS}, "
                  "(SELECT count(*) FROM party_members m WHERE m.party_org_id = o.id) AS members "
                  "FROM party_orgs o WHERE o.community_code = %s ORDER BY o.id")

MEMBER_COLUMNS = ("m.resident_id, m.community_code, m.category, m.membership_org, m.joined_party, m.report_status, "
                  "m.reported_on, m.posts, m.withdrawn_on, m.party_org_id, m.org_kind, m.version, "
                  "o.name AS party_org_name, r.name, r.sex, r.birth_date, r.grid_code, r.pseudonym, r.moved_in, "
                  "r.status AS resident_status, r.community_code AS resident_community_code")
MEMBER_FROM = ("FROM party_members m JOIN residents r ON r.id = m.resident_id "
               "LEFT JOIN party_orgs o ON o.id = m.party_org_id")
PARTY_MEMBER = f"SELECT {MEMBER_COLUMNS} {MEMBER_FROM} WHERE m.resident_id = %s"
PARTY_MEMBER_FOR_UPDATE = PARTY_MEMBER + " FOR UPDATE OF m"
ADD_PARTY_MEMBER = ("INSERT INTO party_members (resident_id, community_code, category, membership_org, joined_party, "
                    "party_org_id, org_kind) VALUES (%(resident_id)s, %(community_code)s, %(category)s, "
                    "%(membership_org)s, %(joined_party)s, %(party_org_id)s, %(org_kind)s)")
REPORT = ("UPDATE party_members SET report_status = 'reported', reported_on = %(reported_on)s, posts = %(posts)s, "
          "withdrawn_on = NULL, community_code = %(community_code)s, version = version + 1, updated_at = now() "
          "WHERE resident_id = %(resident_id)s RETURNING version")
PLACE = ("UPDATE party_members SET party_org_id = %s, org_kind = %s, version = version + 1, updated_at = now() "
         "WHERE resident_id = %s RETURNING version")
WITHDRAW = ("UPDATE party_members SET report_status = 'withdrawn', withdrawn_on = %s, reported_on = NULL, "
            "posts = '{}', party_org_id = NULL, org_kind = NULL, version = version + 1, updated_at = now() "
            "WHERE resident_id = %s RETURNING version")
RELOCATE = ("UPDATE party_members SET community_code = %s, report_status = 'unreported', reported_on = NULL, "
            "posts = '{}', party_org_id = NULL, org_kind = NULL, version = version + 1, updated_at = now() "
            "WHERE resident_id = %s RETURNING version")
ADD_HISTORY = ("INSERT INTO party_member_history (resident_id, version, change, effective, detail, actor) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
HISTORY = ("SELECT version, change, effective, detail, actor, changed_at FROM party_member_history "
           "WHERE resident_id = %s ORDER BY version")
LIST = (f"SELECT {MEMBER_COLUMNS} {MEMBER_FROM} "
        "WHERE (starts_with(m.community_code, %(under)s) OR starts_with(r.grid_code, %(under)s)) "
        "AND (%(category)s::text IS NULL OR m.category = %(category)s) "
        "AND (%(report_status)s::text IS NULL OR m.report_status = %(report_status)s) "
        "AND (%(party_org_id)s::bigint IS NULL OR m.party_org_id = %(party_org_id)s) "
        "AND m.resident_id > %(after)s ORDER BY m.resident_id LIMIT %(limit)s")
# One row per community under the prefix (active ones, and retired ones still holding members),
# then the total (community_code NULL). Which statuses count and the rate itself are party_rules'.
REPORT_RATE = """
WITH per_community AS (
    SELECT n.code AS community_code, n.name, n.valid_to,
           count(m.resident_id) FILTER (WHERE m.report_status = ANY(%(counted)s)) AS members,
           count(m.resident_id) FILTER (WHERE m.report_status = 'reported') AS reported
    FROM nodes n LEFT JOIN party_members m ON m.community_code = n.code
    WHERE n.level = 'community' AND starts_with(n.code, %(under)s)
    GROUP BY n.code, n.name, n.valid_to),
shown AS (SELECT * FROM per_community WHERE valid_to IS NULL OR members > 0)
SELECT community_code, name, members, reported FROM shown
UNION ALL
SELECT NULL, NULL, coalesce(sum(members), 0)::bigint, coalesce(sum(reported), 0)::bigint FROM shown
ORDER BY community_code NULLS LAST"""
# The bulk import of members: the resident each ID number names (the active record before an
# ended one, the latest first) and the branches and groups of their communities, in one query each.
RESIDENTS_BY_ID_HASH = ("SELECT DISTINCT ON (r.id_hash) r.id_hash, r.id, r.name, r.status, r.status_on, "
                        "r.community_code, r.grid_code FROM unnest(%b::bytea[]) AS h(hash) "
                        "JOIN residents r ON r.id_hash = h.hash "
                        "ORDER BY r.id_hash, r.status = 'active' DESC, r.id DESC")
PARTY_ORGS_IN = ("SELECT o.id, o.community_code, o.kind, o.name, o.parent_id FROM party_orgs o "
                 "WHERE o.community_code = ANY(%s) AND o.kind IN ('branch', 'group') ORDER BY o.id")


def party_org(tx, org_id):
    return tx.one(PARTY_ORG, (org_id,))


def party_committee(tx, community_code):
    return tx.one(PARTY_COMMITTEE, (community_code,))


def party_building(tx, community_code, name):
    return tx.one(PARTY_BUILDING, (community_code, name))


def add_party_org(tx, values):
    return tx.one(ADD_PARTY_ORG, values)["id"]


def party_org_rows(tx, community_code):
    return tx.all(PARTY_ORG_ROWS, (community_code,))


def party_member(tx, resident_id, for_update=False):
    return tx.one(PARTY_MEMBER_FOR_UPDATE if for_update else PARTY_MEMBER, (resident_id,))


def add_party_member(tx, values):
    tx.execute(ADD_PARTY_MEMBER, values)


def report_party_member(tx, values):
    return tx.one(REPORT, values)["version"]


def place_party_member(tx, resident_id, org_id, org_kind):
    return tx.one(PLACE, (org_id, org_kind, resident_id))["version"]


def withdraw_party_member(tx, resident_id, on):
    return tx.one(WITHDRAW, (on, resident_id))["version"]


def relocate_party_member(tx, resident_id, community_code):
    return tx.one(RELOCATE, (community_code, resident_id))["version"]


def add_party_history(tx, resident_id, version, change, effective, detail, actor):
    tx.execute(ADD_HISTORY, (resident_id, version, change, effective,
                             json.dumps(detail, ensure_ascii=False, default=str), actor))


def party_history(tx, resident_id):
    return tx.all(HISTORY, (resident_id,))


def list_party_members(tx, **query):
    return tx.all(LIST, query)


def party_report_rate(tx, under, counted):
    """Rows of (community_code, name, members, reported), the total last; `counted` are the member statuses."""
    return tx.all(REPORT_RATE, {"under": under, "counted": list(counted)})


def residents_by_id_hash(tx, hashes):
    """{id_hash: resident row} for the look-up hashes given; an active record wins over ended ones."""
    return {bytes(r["id_hash"]): r for r in tx.all(RESIDENTS_BY_ID_HASH, (list(hashes),))}


def party_orgs_in(tx, community_codes):
    """The branches and groups of these communities (committees hold no members)."""
    return tx.all(PARTY_ORGS_IN, (list(community_codes),))

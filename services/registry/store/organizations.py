"""SQL for social organisations and volunteer teams: the organisation, its members, projects and history."""
import json

__all__ = ["organization", "organization_by_name", "add_organization", "update_organization",
           "set_organization_status", "touch_organization", "add_organization_history", "organization_history",
           "list_organizations", "open_membership", "add_organization_member", "set_member_role",
           "end_membership", "close_memberships", "organization_members", "add_organization_project",
           "organization_projects", "organizations_joined", "clear_leader"]

ORG_COLUMNS = ("o.id, o.name, o.category, o.subcategory, o.status, o.status_on, o.leader_resident_id, "
               "o.community_code, o.activities, o.founded_on, o.filing_no, o.version, "
               "(SELECT count(*) FROM organization_members m WHERE m.organization_id = o.id AND m.left_on IS NULL) "
               "AS member_count")
ORGANIZATION = f"SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = %s"
ORGANIZATION_FOR_UPDATE = ORGANIZATION + " FOR UPDATE OF o"
BY_NAME = "SELECT id, status FROM organizations WHERE community_code = %s AND name = %s AND status <> 'dissolved'"
ADD = ("INSERT INTO organizations (name, category, subcategory, status, status_on, leader_resident_id, "
       "community_code, activities, founded_on, filing_no) VALUES (%(name)s, %(category)s, %(subcategory)s, "
       "%(status)s, %(status_on)s, %(leader_resident_id)s, %(community_code)s, %(activities)s, %(founded_on)s, "
       "%(filing_no)s) RETURNING id")
UPDATE = ("UPDATE organizations SET name = %(name)s, subcategory = %(subcategory)s, activities = %(activities)s, "
          "filing_no = %(filing_no)s, leader_resident_id = %(leader_resident_id)s, version = version + 1, "
          "updated_at = now() WHERE id = %(id)s RETURNING version")
SET_STATUS = ("UPDATE organizations SET status = %s, status_on = %s, version = version + 1, updated_at = now() "
              "WHERE id = %s RETURNING version")
TOUCH = "UPDATE organizations SET version = version + 1, updated_at = now() WHERE id = %s RETURNING version"
CLEAR_LEADER = ("UPDATE organizations SET leader_resident_id = NULL, version = version + 1, updated_at = now() "
                "WHERE id = %s RETURNING version")
ADD_HISTORY = ("INSERT INTO organization_history (organization_id, version, change, effective, detail, actor) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
HISTORY = ("SELECT version, change, effective, detail, actor, changed_at FROM organization_history "
           "WHERE organization_id = %s ORDER BY version")
LIST = (f"SELECT {ORG_COLUMNS} FROM organizations o WHERE starts_with(o.community_code, %(under)s) "
        "AND (%(community_code)s::text IS NULL OR o.community_code = %(community_code)s) "
        "AND (%(category)s::text IS NULL OR o.category = %(category)s) "
        "AND (%(subcategory)s::text IS NULL OR o.subcategory = %(subcategory)s) "
        "AND (%(status)s::text IS NULL OR o.status = %(status)s) "
        "AND o.id > %(after)s ORDER BY o.id LIMIT %(limit)s")

MEMBER_COLUMNS = ("m.id, m.organization_id, m.resident_id, m.role, m.joined_on, m.left_on, r.name, "
                  "r.community_code, r.pseudonym")
OPEN_MEMBERSHIP = (f"SELECT {MEMBER_COLUMNS} FROM organization_members m JOIN residents r ON r.id = m.resident_id "
                   "WHERE m.organization_id = %s AND m.resident_id = %s AND m.left_on IS NULL FOR UPDATE OF m")
JOINED = ("SELECT DISTINCT organization_id FROM organization_members WHERE resident_id = %s AND left_on IS NULL "
          "ORDER BY organization_id")
ADD_MEMBER = ("INSERT INTO organization_members (organization_id, resident_id, role, joined_on) "
              "VALUES (%s, %s, %s, %s) RETURNING id")
SET_ROLE = "UPDATE organization_members SET role = %s WHERE id = %s"
END_MEMBERSHIP = "UPDATE organization_members SET left_on = %s WHERE id = %s"
CLOSE_MEMBERSHIPS = ("WITH closed AS (UPDATE organization_members SET left_on = %s "
                     "WHERE organization_id = %s AND left_on IS NULL RETURNING *) "
                     "SELECT c.id, c.resident_id, c.role, r.pseudonym FROM closed c "
                     "JOIN residents r ON r.id = c.resident_id ORDER BY c.id")
MEMBERS = (f"SELECT {MEMBER_COLUMNS} FROM organization_members m JOIN residents r ON r.id = m.resident_id "
           "WHERE m.organization_id = %s AND m.left_on IS NULL "
           "ORDER BY array_position(ARRAY['leader', 'deputy', 'member'], m.role), m.id")
ADD_PROJECT = ("INSERT INTO organization_projects (organization_id, name, funder, budget, starts_on, ends_on) "
               "VALUES (%(organization_id)s, %(name)s, %(funder)s, %(budget)s, %(starts_on)s, %(ends_on)s) "
               "RETURNING id, organization_id, name, funder, budget, starts_on, ends_on")
PROJECTS = ("SELECT id, organization_id, name, funder, budget, starts_on, ends_on FROM organization_projects "
            "WHERE organization_id = %s ORDER BY starts_on, id")


def organization(tx, organization_id, for_update=False):
    return tx.one(ORGANIZATION_FOR_UPDATE if for_update else ORGANIZATION, (organization_id,))


def organization_by_name(tx, community_code, name):
    """The living organisation of that name in that community, if any."""
    return tx.one(BY_NAME, (community_code, name))


def add_organization(tx, values):
    return tx.one(ADD, values)["id"]


def update_organization(tx, values):
    return tx.one(UPDATE, values)["version"]


def set_organization_status(tx, organization_id, status, on):
    return tx.one(SET_STATUS, (status, on, organization_id))["version"]


def touch_organization(tx, organization_id):
    """A new version for a change that lives in another table (members, projects)."""
    return tx.one(TOUCH, (organization_id,))["version"]


def add_organization_history(tx, organization_id, version, change, effective, detail, actor):
    tx.execute(ADD_HISTORY, (organization_id, version, change, effective,
                             json.dumps(detail, ensure_ascii=False, default=str), actor))


def organization_history(tx, organization_id):
    return tx.all(HISTORY, (organization_id,))


def list_organizations(tx, **query):
    return tx.all(LIST, query)


def open_membership(tx, organization_id, resident_id):
    return tx.one(OPEN_MEMBERSHIP, (organization_id, resident_id))


def add_organization_member(tx, organization_id, resident_id, role, joined_on):
    return tx.one(ADD_MEMBER, (organization_id, resident_id, role, joined_on))["id"]


def set_member_role(tx, membership_id, role):
    tx.execute(SET_ROLE, (role, membership_id))


def end_membership(tx, membership_id, left_on):
    tx.execute(END_MEMBERSHIP, (left_on, membership_id))


def close_memberships(tx, organization_id, left_on):
    """End every open membership (a dissolution); returns who left, with their pseudonyms for facts."""
    return tx.all(CLOSE_MEMBERSHIPS, (left_on, organization_id))


def organization_members(tx, organization_id):
    return tx.all(MEMBERS, (organization_id,))


def add_organization_project(tx, values):
    return tx.one(ADD_PROJECT, values)


def organization_projects(tx, organization_id):
    return tx.all(PROJECTS, (organization_id,))


def organizations_joined(tx, resident_id):
    """Ids of the organisations the resident is a current member of, in id order (the order to lock them in)."""
    return [r["organization_id"] for r in tx.all(JOINED, (resident_id,))]


def clear_leader(tx, organization_id):
    """The organisation has no leader (its leader left the street or died); returns the new version."""
    return tx.one(CLEAR_LEADER, (organization_id,))["version"]

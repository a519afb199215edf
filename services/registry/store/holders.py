"""SQL behind other services' questions: who holds an account (one or many), who arrived with a handover."""

__all__ = ["account_holder", "account_holders", "residents_by_handover", "phones", "names_in"]

HOLDERS = """
SELECT r.id AS resident_id, r.name, r.community_code, r.grid_code, r.status, r.pseudonym, r.id_cipher,
       m.report_status, m.party_org_id, o.name AS party_org_name,
       EXISTS (SELECT 1 FROM organization_members om JOIN organizations g ON g.id = om.organization_id
               WHERE om.resident_id = r.id AND om.left_on IS NULL AND g.category = 'volunteer_team'
                 AND g.status IN ('filed', 'active')) AS volunteer,
       ARRAY(SELECT om.organization_id FROM organization_members om
             WHERE om.resident_id = r.id AND om.left_on IS NULL ORDER BY 1) AS organization_ids
FROM residents r LEFT JOIN party_members m ON m.resident_id = r.id LEFT JOIN party_orgs o ON o.id = m.party_org_id
"""
HOLDER = HOLDERS + "WHERE r.id = %s"
MANY_HOLDERS = HOLDERS + "WHERE r.id = ANY(%s) ORDER BY r.id"
PHONES = ("SELECT id, community_code, phone_cipher FROM residents WHERE id = ANY(%s) AND status = 'active' "
          "AND phone_cipher IS NOT NULL")
BY_HANDOVER = "SELECT id, handover_hash FROM residents WHERE handover_hash = ANY(%s) AND status = 'active'"
# Each name folded as holders.names_in folds the text (NFKC, lower case, no spaces or name dots); one
# character is no name to look for (it would be found in any text).
NAMES_IN = r"""
SELECT EXISTS (
    SELECT 1 FROM (SELECT lower(regexp_replace(normalize(name, NFKC), '[[:space:]·•・.]', '', 'g')) AS folded
                   FROM residents WHERE starts_with(community_code, %(under)s)) r
    WHERE char_length(r.folded) >= 2 AND strpos(%(text)s, r.folded) > 0) AS found
"""


def account_holder(tx, resident_id):
    return tx.one(HOLDER, (resident_id,))


def account_holders(tx, resident_ids):
    return tx.all(MANY_HOLDERS, (list(resident_ids),))


def residents_by_handover(tx, hashes):
    return tx.all(BY_HANDOVER, (hashes,))


def names_in(tx, text, under):
    return tx.one(NAMES_IN, {"text": text, "under": under})["found"]


def phones(tx, ids):
    return tx.all(PHONES, (ids,))

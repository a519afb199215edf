"""SQL of the points service, in one place: named statements and the few functions that run them.

Statements on the batch path take their arrays as binary parameters (%b): psycopg quotes a text
array element by element, which costs more than the database's work on a 5,000-record batch.
"""
from psycopg import sql as pgsql

# -- catalogue ---------------------------------------------------------------------------------

CATEGORY = "SELECT code, name, active FROM categories WHERE code = %s"
CATEGORY_FOR_UPDATE = CATEGORY + " FOR UPDATE"
ADD_CATEGORY = "INSERT INTO categories (code, name) VALUES (%s, %s)"
RULE_COLUMNS = ("category_code, version, valid_from, unit, points_per_unit, daily_cap, yearly_cap, "
                "verifier_roles, note, actor, created_at")
RULES_OF = f"SELECT {RULE_COLUMNS} FROM rule_versions WHERE category_code = %s ORDER BY version"
RULE_ON = (f"SELECT {RULE_COLUMNS} FROM rule_versions WHERE category_code = %s AND valid_from <= %s "
           "ORDER BY valid_from DESC LIMIT 1")
RULES_BY_KEY = (f"SELECT {RULE_COLUMNS} FROM rule_versions "
                "WHERE (category_code, version) IN (SELECT * FROM unnest(%s::text[], %s::int[]))")
ADD_RULE = ("INSERT INTO rule_versions (category_code, version, valid_from, unit, points_per_unit, daily_cap, "
            "yearly_cap, verifier_roles, note, actor) "
            "SELECT %(category_code)s, coalesce(max(version), 0) + 1, %(valid_from)s, %(unit)s, %(points_per_unit)s, "
            "%(daily_cap)s, %(yearly_cap)s, %(verifier_roles)s, %(note)s, %(actor)s "
            "FROM rule_versions WHERE category_code = %(category_code)s RETURNING version")
CATALOGUE = ("SELECT c.code, c.name, c.active, r.version FROM categories c "
             "LEFT JOIN LATERAL (SELECT * FROM rule_versions v WHERE v.category_code = c.code "
             "AND v.valid_from <= %s ORDER BY v.valid_from DESC LIMIT 1) r ON true "
             "WHERE %s OR c.active ORDER BY c.code")
ALL_RULES = f"SELECT {RULE_COLUMNS} FROM rule_versions ORDER BY category_code, version"
LAST_RULE_DAY = "SELECT max(valid_from) AS day FROM rule_versions WHERE category_code = %s"
SET_CATEGORY = "UPDATE categories SET name = coalesce(%s, name), active = coalesce(%s, active) WHERE code = %s"

REWARD_COLUMNS = "id, name, kind, points_cost, stock, per_person_limit, active, description, created_at"
REWARD = f"SELECT {REWARD_COLUMNS} FROM rewards WHERE id = %s"
REWARDS = f"SELECT {REWARD_COLUMNS} FROM rewards WHERE (%s OR active) ORDER BY id"
ADD_REWARD = ("INSERT INTO rewards (name, kind, points_cost, stock, per_person_limit, description) "
              "VALUES (%(name)s, %(kind)s, %(points_cost)s, %(stock)s, %(per_person_limit)s, %(description)s) "
              "RETURNING id")
UPDATE_REWARD = ("UPDATE rewards SET stock = coalesce(%(stock)s, stock), active = coalesce(%(active)s, active), "
                 "points_cost = coalesce(%(points_cost)s, points_cost), "
                 "per_person_limit = coalesce(%(per_person_limit)s, per_person_limit) WHERE id = %(id)s")
TAKE_STOCK = ("UPDATE rewards SET stock = stock - %(quantity)s WHERE id = %(id)s "
              "AND (stock IS NULL OR stock >= %(quantity)s) RETURNING stock")
RETURN_STOCK = "UPDATE rewards SET stock = stock + %s WHERE id = %s AND stock IS NOT NULL"

# -- accounts ----------------------------------------------------------------------------------

ACCOUNT_COLUMNS = ("id, kind, resident_id, organization_id, community_code, name, pseudonym, member_category, "
                   "party_org_id, party_org_name, status, carried_hours, balance, opened_at, updated_at")
ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s"
ACCOUNT_OF_RESIDENT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE resident_id = %s"
ACCOUNT_OF_ORGANIZATION = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE organization_id = %s"
RESIDENTS_WITH_ACCOUNTS = "SELECT resident_id FROM accounts WHERE resident_id = ANY(%s)"
OPEN_ACCOUNT = ("INSERT INTO accounts (kind, resident_id, organization_id, community_code, name, pseudonym, "
                "member_category, party_org_id, party_org_name) "
                "VALUES (%(kind)s, %(resident_id)s, %(organization_id)s, %(community_code)s, %(name)s, %(pseudonym)s, "
                "%(member_category)s, %(party_org_id)s, %(party_org_name)s) "
                f"ON CONFLICT DO NOTHING RETURNING {ACCOUNT_COLUMNS}")
REFRESH_ACCOUNT = ("UPDATE accounts SET community_code = %(community_code)s, name = %(name)s, "
                   "member_category = %(member_category)s, party_org_id = %(party_org_id)s, "
                   "party_org_name = %(party_org_name)s, updated_at = now() WHERE id = %(id)s")
SET_STATUS = "UPDATE accounts SET status = %s, updated_at = now() WHERE id = %s"
ADD_CARRIED_HOURS = "UPDATE accounts SET carried_hours = carried_hours + %s, updated_at = now() WHERE id = %s"
SYSTEM_ACCOUNT = "SELECT id FROM accounts WHERE kind = %s AND community_code = %s"
OPEN_SYSTEM_ACCOUNT = ("INSERT INTO accounts (kind, community_code, name) VALUES (%s, %s, %s) "
                       "ON CONFLICT DO NOTHING RETURNING id")
HELD = "SELECT coalesce(sum(points), 0) AS held FROM redemptions WHERE account_id = %s AND status = 'pending'"
LOCK_ACCOUNTS = "SELECT id, kind, balance, status FROM accounts WHERE id = ANY(%b) ORDER BY id FOR UPDATE"
SET_BALANCES = ("UPDATE accounts a SET balance = v.balance, updated_at = now() "
                "FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, balance) WHERE a.id = v.id")
# A page of accounts with their verified hours and held points, in one query rather than two per account.
LIST_ACCOUNTS = (f"SELECT {ACCOUNT_COLUMNS}, "
                 "(SELECT coalesce(sum(s.hours), 0) FROM service_records s "
                 " WHERE s.account_id = accounts.id AND s.status = 'posted') AS posted_hours, "
                 "(SELECT coalesce(sum(d.points), 0) FROM redemptions d "
                 " WHERE d.account_id = accounts.id AND d.status = 'pending') AS held "
                 "FROM accounts WHERE kind IN ('person', 'organization') "
                 "AND starts_with(community_code, %(under)s) "
                 "AND (%(member_category)s::text IS NULL OR member_category = %(member_category)s) "
                 "AND id > %(after)s ORDER BY id LIMIT %(limit)s")

# -- ledger ------------------------------------------------------------------------------------

TRANSFER_COLUMNS = ("t.id, t.transfer_id, t.kind, t.debit_account, t.credit_account, t.amount, t.service_record_id, "
                    "t.redemption_id, t.reverses, t.memo, t.actor, t.created_at")
ADD_TRANSFERS = ("INSERT INTO transfers (transfer_id, kind, debit_account, credit_account, amount, "
                 "service_record_id, redemption_id, reverses, memo, actor) "
                 "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], "
                 "%b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[]) "
                 "ON CONFLICT (transfer_id) DO NOTHING RETURNING id, transfer_id")
TRANSFERS_BY_ID = f"SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.transfer_id = ANY(%s)"
TRANSFER = f"SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.id = %s"
REVERSAL_OF = f"SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.reverses = %s"
STATEMENT = (f"SELECT e.amount AS change, e.balance_after, {TRANSFER_COLUMNS} FROM entries e "
             "JOIN transfers t ON t.id = e.transfer_pk WHERE e.account_id = %(account_id)s "
             "AND e.transfer_pk > %(after)s ORDER BY e.transfer_pk LIMIT %(limit)s")
# The ledger balances when every transfer's entries cancel out and every balance is its entries' sum.
TRIAL_BALANCE = """
WITH per_transfer AS (SELECT t.id, count(e.transfer_pk) AS n, coalesce(sum(e.amount), 0) AS total
                      FROM transfers t LEFT JOIN entries e ON e.transfer_pk = t.id GROUP BY t.id),
     per_account AS (SELECT a.id, a.balance, coalesce(sum(e.amount), 0) AS total
                     FROM accounts a LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id)
SELECT (SELECT coalesce(sum(amount), 0) FROM entries) AS entries_sum,
       (SELECT coalesce(sum(balance), 0) FROM accounts) AS balances_sum,
       (SELECT count(*) FROM per_transfer WHERE n <> 2 OR total <> 0) AS unbalanced_transfers,
       (SELECT count(*) FROM per_account WHERE balance <> total) AS drifted_accounts
"""

# -- service records ---------------------------------------------------------------------------

RECORD_COLUMNS = ("s.id, s.request_id, s.account_id, s.community_code, s.category_code, s.served_at, s.served_on, "
                  "s.hours, s.description, s.links, s.organization_id, s.source, s.recorded_by, s.status, "
                  "s.expires_at, s.rule_version, s.points, s.capped_from, s.transfer_pk, s.decided_by, "
                  "s.decided_role, s.decided_at, s.reason, s.created_at, a.resident_id, a.name, a.pseudonym, "
                  "a.member_category, a.kind AS account_kind")
RECORD_FROM = "FROM service_records s JOIN accounts a ON a.id = s.account_id"
RECORD = f"SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE s.id = %s"
# What an account counted, to restate when it moves (reported.restate): its postings that stand,
# each in the community it was counted in, and its fulfilled redemptions.
POSTED_OF_ACCOUNT = ("SELECT id, community_code, category_code, served_on, hours, points FROM service_records "
                     "WHERE account_id = %s AND status = 'posted' ORDER BY id FOR UPDATE")
MOVE_RECORDS = "UPDATE service_records SET community_code = %s WHERE account_id = %s"
FULFILLED_OF_ACCOUNT = ("SELECT d.id, d.points, d.closed_at, d.requested_at, w.kind AS reward_kind FROM redemptions d "
                        "JOIN rewards w ON w.id = d.reward_id WHERE d.account_id = %s AND d.status = 'fulfilled' "
                        "ORDER BY d.id")
RECORDS = f"SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE s.id = ANY(%s) ORDER BY s.id"
RECORD_BY_REQUEST = f"SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE s.request_id = %s"
# An account is locked before its records, as reported.restate (run from accounts.refresh) takes them:
# a posting or reversal then reads the account as a refresh left it, never counts under the old
# community or member category after the restatement, and the two never wait on each other in a circle.
LOCK_ACCOUNTS_OF_RECORDS = ("SELECT id FROM accounts WHERE id IN (SELECT account_id FROM service_records "
                            "WHERE id = ANY(%s)) ORDER BY id FOR UPDATE")
# A record logged while its account was moving may name the community it left: it counts where the account is.
ALIGN_RECORDS = ("UPDATE service_records s SET community_code = a.community_code FROM accounts a "
                 "WHERE a.id = s.account_id AND s.id = ANY(%s) AND s.community_code <> a.community_code")
RECORDS_FOR_UPDATE = f"SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE s.id = ANY(%b) ORDER BY s.id FOR UPDATE OF s"
ADD_RECORD = ("INSERT INTO service_records (request_id, account_id, community_code, category_code, served_at, "
              "served_on, hours, description, links, organization_id, source, recorded_by, expires_at) "
              "VALUES (%(request_id)s, %(account_id)s, %(community_code)s, %(category_code)s, %(served_at)s, "
              "%(served_on)s, %(hours)s, %(description)s, %(links)s, %(organization_id)s, %(source)s, "
              "%(recorded_by)s, %(expires_at)s) "
              "ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING id")
POST_RECORDS = ("UPDATE service_records s SET status = 'posted', rule_version = v.rule_version, points = v.points, "
                "capped_from = v.capped_from, transfer_pk = v.transfer_pk, decided_by = %s, decided_role = %s, "
                "decided_at = now() FROM unnest(%b::bigint[], %b::int[], %b::int[], %b::int[], %b::bigint[]) "
                "AS v(id, rule_version, points, capped_from, transfer_pk) WHERE s.id = v.id")
CLOSE_RECORD = ("UPDATE service_records SET status = %(status)s, decided_by = %(actor)s, decided_role = %(role)s, "
                "decided_at = now(), reason = %(reason)s WHERE id = %(id)s")
EXPIRE_DUE = ("UPDATE service_records s SET status = 'expired', decided_at = now(), decided_by = 'system', "
              "reason = 'not verified within the time allowed' FROM accounts a "
              "WHERE a.id = s.account_id "
              "AND s.id IN (SELECT id FROM service_records WHERE status = 'pending' AND expires_at <= now() "
              "ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) "
              "RETURNING s.id, s.account_id, s.community_code, s.category_code, s.served_on, a.resident_id")
# Points already posted per person and category on the days and in the years a batch touches.
POSTED_TOTALS = """
SELECT account_id, category_code, served_on, sum(points) AS points
FROM service_records
WHERE status = 'posted' AND (account_id, category_code) IN (SELECT * FROM unnest(%b::bigint[], %b::text[]))
  AND served_on >= make_date(%s, 1, 1) AND served_on < make_date(%s + 1, 1, 1)
GROUP BY account_id, category_code, served_on
"""
LIST_RECORDS = (f"SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE starts_with(s.community_code, %(under)s) "
                "AND (%(status)s::text IS NULL OR s.status = %(status)s) "
                "AND (%(account_id)s::bigint IS NULL OR s.account_id = %(account_id)s) "
                "AND (%(category_code)s::text IS NULL OR s.category_code = %(category_code)s) "
                "AND (%(organization_id)s::bigint IS NULL OR s.organization_id = %(organization_id)s) "
                "AND s.id > %(after)s ORDER BY s.id LIMIT %(limit)s")
VERIFIED_HOURS = ("SELECT coalesce(sum(hours), 0) AS hours FROM service_records "
                  "WHERE account_id = %s AND status = 'posted'")

# -- redemptions -------------------------------------------------------------------------------

REDEMPTION_COLUMNS = ("d.id, d.request_id, d.account_id, d.reward_id, d.quantity, d.points, d.status, "
                      "d.hold_transfer_pk, d.close_transfer_pk, d.requested_by, d.requested_at, d.closed_by, "
                      "d.closed_at, d.reason, w.name AS reward_name, w.kind AS reward_kind, a.community_code, "
                      "a.resident_id, a.name, a.pseudonym, a.member_category")
REDEMPTION_FROM = "FROM redemptions d JOIN rewards w ON w.id = d.reward_id JOIN accounts a ON a.id = d.account_id"
REDEMPTION = f"SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE d.id = %s"
REDEMPTION_FOR_UPDATE = REDEMPTION + " FOR UPDATE OF d"
REDEMPTION_BY_REQUEST = f"SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE d.request_id = %s"
# The id is drawn first: the hold transfer names the redemption it holds points for.
NEXT_REDEMPTION_ID = "SELECT nextval('redemptions_id_seq') AS id"
ADD_REDEMPTION = ("INSERT INTO redemptions (id, request_id, account_id, reward_id, quantity, points, "
                  "hold_transfer_pk, requested_by) VALUES (%(id)s, %(request_id)s, %(account_id)s, %(reward_id)s, "
                  "%(quantity)s, %(points)s, "
                  "%(hold_transfer_pk)s, %(requested_by)s)")
CLOSE_REDEMPTION = ("UPDATE redemptions SET status = %(status)s, close_transfer_pk = %(transfer_pk)s, "
                    "closed_by = %(actor)s, closed_at = now(), reason = %(reason)s WHERE id = %(id)s")
QUANTITY_THIS_YEAR = ("SELECT coalesce(sum(quantity), 0) AS quantity FROM redemptions WHERE account_id = %s "
                      "AND reward_id = %s AND status <> 'cancelled' "
                      "AND requested_at >= %s")  # the start of the instance's year
LIST_REDEMPTIONS = (f"SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE starts_with(a.community_code, %(under)s) "
                    "AND (%(status)s::text IS NULL OR d.status = %(status)s) "
                    "AND (%(account_id)s::bigint IS NULL OR d.account_id = %(account_id)s) "
                    "AND d.id > %(after)s ORDER BY d.id LIMIT %(limit)s")

# -- evaluation --------------------------------------------------------------------------------

# Per person or organisation: points earned in the year (postings less their reversals), the year's
# verified hours, and cumulative verified hours to the year's end (plus hours brought from another street).
STANDINGS = """
SELECT a.id AS account_id, a.community_code, a.party_org_id, a.party_org_name, a.name, a.member_category,
       coalesce(sum(s.points) FILTER (WHERE s.status = 'posted' AND extract(year FROM s.served_on) = %(year)s), 0)
           AS points,
       coalesce(sum(s.hours) FILTER (WHERE s.status = 'posted' AND extract(year FROM s.served_on) = %(year)s), 0)
           AS hours,
       a.carried_hours + coalesce(sum(s.hours) FILTER (WHERE s.status = 'posted'
           AND extract(year FROM s.served_on) <= %(year)s), 0) AS cumulative_hours
FROM accounts a LEFT JOIN service_records s ON s.account_id = a.id
WHERE a.kind IN ('person', 'organization') AND starts_with(a.community_code, %(under)s)
GROUP BY a.id
"""
EVALUATION = "SELECT year, taken_at, taken_by, people FROM evaluations WHERE year = %s"
ADD_EVALUATION = "INSERT INTO evaluations (year, taken_by, people) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
EVALUATION_ROWS_COPY = ("COPY evaluation_rows (year, account_id, community_code, party_org_id, party_org_name, name, "
                        "member_category, points, hours, cumulative_hours, stars, community_rank, branch_rank) "
                        "FROM STDIN")
EVALUATION_ROWS = ("SELECT account_id, community_code, party_org_id, party_org_name, name, member_category, points, "
                   "hours, cumulative_hours, stars, community_rank, branch_rank FROM evaluation_rows "
                   "WHERE year = %s AND starts_with(community_code, %s) "
                   "ORDER BY community_code, community_rank, account_id")

# -- handovers between streets -----------------------------------------------------------------

ADD_HANDOVER_IN = ("INSERT INTO handovers_in (transfer_id, person_key, from_street, amount, hours) "
                   "VALUES (%(transfer_id)s, %(person_key)s, %(from_street)s, %(amount)s, %(hours)s) "
                   "ON CONFLICT DO NOTHING RETURNING transfer_id")
# The longest untried first, so handovers for people who never come here do not starve the others.
# transfer_id breaks ties (one round stamps all its rows with the same now()): a worker's re-run
# (shared/db.py) picks the same rows, so it finds the registry's answers under the keys it asked.
WAITING_HANDOVERS = ("SELECT transfer_id, person_key, from_street, amount, hours FROM handovers_in "
                     "WHERE status = 'waiting' AND (%s::text[] IS NULL OR person_key = ANY(%s)) "
                     "ORDER BY last_tried_at NULLS FIRST, transfer_id LIMIT %s FOR UPDATE SKIP LOCKED")
TRIED_HANDOVERS = "UPDATE handovers_in SET last_tried_at = now() WHERE transfer_id = ANY(%s)"
ADD_HANDOVER_OUT = ("INSERT INTO handovers_out (transfer_id, account_id, amount, hours, message) "
                    "VALUES (%(transfer_id)s, %(account_id)s, %(amount)s, %(hours)s, %(message)s)")
HANDOVERS_OUT_OF = "SELECT count(*) AS n FROM handovers_out WHERE account_id = %s"
HANDOVERS_OUT = ("SELECT transfer_id, account_id, amount, hours, message, created_at, resent_at FROM handovers_out "
                 "WHERE (%(transfer_id)s::text IS NULL OR transfer_id = %(transfer_id)s) "
                 "AND created_at >= %(since)s ORDER BY created_at")
MARK_RESENT = "UPDATE handovers_out SET resent_at = now() WHERE transfer_id = %s"
CREDIT_HANDOVER = ("UPDATE handovers_in SET status = 'credited', account_id = %s, credited_at = now() "
                   "WHERE transfer_id = %s")
HANDOVER_IN = "SELECT * FROM handovers_in WHERE transfer_id = %s"


def copy_rows(tx, statement, rows):
    with tx.conn.cursor().copy(pgsql.SQL(statement)) as copy:
        for row in rows:
            copy.write_row(row)


ENTRIES_COPY = "COPY entries (account_id, transfer_pk, amount, balance_after) FROM STDIN"

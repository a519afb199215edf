"""The gateway's SQL: API tokens."""
from services.gateway.auth import Principal, token_hash

# organization_id stays the last parameter: resident_id was added before it.
INSERT = ("INSERT INTO api_tokens (token_id, token_hash, name, role, node_prefix, expires_at, resident_id, "
          "organization_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
LOOKUP = ("SELECT token_id, name, role, node_prefix, organization_id, resident_id FROM api_tokens "
          "WHERE token_hash = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
REVOKE = "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL"
# `expired` by the database's clock, the one LOOKUP refuses an expired token by.
LIST = ("SELECT token_id, name, role, node_prefix, organization_id, resident_id, created_at, expires_at, revoked_at, "
        "expires_at IS NOT NULL AND expires_at <= now() AS expired FROM api_tokens ORDER BY created_at")


def add(conn, token_id, token, name, role, node_prefix, expires_at=None, organization_id=None, resident_id=None):
    conn.execute(INSERT, (token_id, token_hash(token), name, role, node_prefix, expires_at, resident_id,
                          organization_id))


def principal_for(conn, token):
    row = conn.execute(LOOKUP, (token_hash(token),)).fetchone()
    if row is None:
        return None
    return Principal(row["token_id"], row["name"], row["role"], row["node_prefix"], row.get("organization_id"),
                     row.get("resident_id"))


def revoke(conn, token_id):
    return conn.execute(REVOKE, (token_id,)).rowcount == 1


TOKEN_COLUMNS = ("token_id, name, role, node_prefix, organization_id, created_at, expires_at, revoked_at, "
                 "expires_at IS NOT NULL AND expires_at <= now() AS expired")
TOKENS_UNDER = (f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE starts_with(node_prefix, %s) "
                "ORDER BY created_at DESC, token_id")
TOKEN_FOR_UPDATE = f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_id = %s FOR UPDATE"
TOKEN = f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_id = %s"


def list_tokens(conn):
    return conn.execute(LIST).fetchall()


# -- staff accounts, sessions and the sign-in audit (services/gateway/accounts.py has the rules) ----------

ACCOUNT_COLUMNS = ("account_id, username, display_name, role, node_prefix, organization_id, must_change_password, "
                   "failed_attempts, locked_until, disabled_at, last_sign_in_at, password_changed_at, created_at, "
                   "created_by")
INSERT_ACCOUNT = ("INSERT INTO staff_accounts (username, display_name, password_hash, role, node_prefix, "
                  "organization_id, must_change_password, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                  "ON CONFLICT (username) DO NOTHING RETURNING " + ACCOUNT_COLUMNS)
ACCOUNT_BY_USERNAME = f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM staff_accounts WHERE username = %s"
# A right password signs in under the row's lock, so a lock or a disabling made meanwhile is seen.
ACCOUNT_FOR_SIGN_IN = ACCOUNT_BY_USERNAME + " FOR UPDATE"
NOW = "SELECT now() AS now"
ACCOUNT_BY_ID = f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM staff_accounts WHERE account_id = %s"
ACCOUNT_BY_ID_FOR_UPDATE = ACCOUNT_BY_ID + " FOR UPDATE"
# Accounts whose scope lies inside `prefix`: an admin sees the accounts they could have made.
ACCOUNTS_UNDER = (f"SELECT {ACCOUNT_COLUMNS} FROM staff_accounts WHERE node_prefix LIKE %s || '%%' "
                  "ORDER BY node_prefix, username")
# One statement: two failures at once count two, and the second sees both.
FAILED = ("UPDATE staff_accounts SET failed_attempts = failed_attempts + 1 WHERE account_id = %s "
          "RETURNING failed_attempts")
LOCK = "UPDATE staff_accounts SET failed_attempts = 0, locked_until = now() + %s WHERE account_id = %s"
SIGNED_IN = ("UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = now() "
             "WHERE account_id = %s")
SET_PASSWORD = ("UPDATE staff_accounts SET password_hash = %s, must_change_password = %s, password_changed_at = now(), "
                "failed_attempts = 0, locked_until = NULL WHERE account_id = %s")
REHASH = "UPDATE staff_accounts SET password_hash = %s WHERE account_id = %s"
DISABLE = "UPDATE staff_accounts SET disabled_at = now() WHERE account_id = %s AND disabled_at IS NULL"
ENABLE = ("UPDATE staff_accounts SET disabled_at = NULL, failed_attempts = 0, locked_until = NULL "
          "WHERE account_id = %s AND disabled_at IS NOT NULL")
ADDRESS_FAILURES = ("SELECT count(*) AS n, now() AS now FROM sign_in_events WHERE event = 'failed' AND address = %s "
                    "AND at > now() - %s")
# A name no account has, by its keyed hash (accounts.name_key): counted and locked as an account is.
UNKNOWN_NAME = ("SELECT failed_attempts, locked_until, NULL::timestamptz AS disabled_at FROM unknown_names "
                "WHERE name_key = %s")
UNKNOWN_NAME_FAILED = ("INSERT INTO unknown_names (name_key, failed_attempts) VALUES (%s, 1) ON CONFLICT (name_key) "
                       "DO UPDATE SET failed_attempts = unknown_names.failed_attempts + 1, last_failed_at = now() "
                       "RETURNING failed_attempts")
UNKNOWN_NAME_LOCK = "UPDATE unknown_names SET failed_attempts = 0, locked_until = now() + %s WHERE name_key = %s"
RECENT_REFUSAL = ("SELECT 1 FROM sign_in_events WHERE event LIKE 'refused%%' AND address = %s "
                  "AND at > now() - interval '1 minute' LIMIT 1")

INSERT_SESSION = ("INSERT INTO staff_sessions (session_hash, account_id, csrf_token, address, expires_at) "
                  "VALUES (%s, %s, %s, %s, now() + %s)")
SESSION = ("SELECT s.session_hash, s.csrf_token, s.last_seen_at, s.expires_at, s.ended_at, "
           "now() AS now, a.account_id, a.username, a.display_name, a.role, a.node_prefix, a.organization_id, "
           "a.must_change_password, a.disabled_at, a.locked_until, a.last_sign_in_at, a.created_at "
           "FROM staff_sessions s JOIN staff_accounts a USING (account_id) "
           "WHERE s.session_hash = %s")
TOUCH_SESSION = "UPDATE staff_sessions SET last_seen_at = now() WHERE session_hash = %s AND ended_at IS NULL"
END_SESSION = "UPDATE staff_sessions SET ended_at = now() WHERE session_hash = %s AND ended_at IS NULL"
# A disabled account, or one whose password was reset, keeps no session; a changed password keeps the one
# that changed it.
END_SESSIONS_OF = ("UPDATE staff_sessions SET ended_at = now() WHERE account_id = %s AND ended_at IS NULL "
                   "AND session_hash IS DISTINCT FROM %s")

AUDIT = "INSERT INTO sign_in_events (event, username, account_id, address, actor) VALUES (%s, %s, %s, %s, %s)"
EVENTS_UNDER = ("SELECT e.event_id, e.at, e.event, e.username, e.account_id, e.address, e.actor FROM sign_in_events e "
                "LEFT JOIN staff_accounts a USING (account_id) "
                "WHERE (a.node_prefix LIKE %(prefix)s || '%%' OR (a.account_id IS NULL AND %(all)s)) "
                "AND (%(account)s::bigint IS NULL OR e.account_id = %(account)s) "
                "AND (%(after)s::bigint IS NULL OR e.event_id < %(after)s) "
                "ORDER BY e.event_id DESC LIMIT %(limit)s")


def audit(conn, event, username, account_id, address, actor):
    conn.execute(AUDIT, (event, username[:100] if isinstance(username, str) else "", account_id, address, actor))
SET_LOCK_LIFTED = "UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL WHERE account_id = %s"

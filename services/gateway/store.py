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


def list_tokens(conn):
    return conn.execute(LIST).fetchall()

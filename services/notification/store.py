"""SQL of the notification service, in one place."""

SUBSCRIBER_COLUMNS = "resident_id, name, community_code, grid_code, household_id, tags, roles, status, version"
# Applied only if newer than what is held: events may arrive out of order or twice.
UPSERT_SUBSCRIBER = (f"INSERT INTO subscribers ({SUBSCRIBER_COLUMNS}) "
                     "VALUES (%(id)s, %(name)s, %(community_code)s, %(grid_code)s, %(household_id)s, %(tags)s, "
                     "%(roles)s, %(status)s, %(version)s) "
                     "ON CONFLICT (resident_id) DO UPDATE SET name = excluded.name, "
                     "community_code = excluded.community_code, grid_code = excluded.grid_code, "
                     "household_id = excluded.household_id, tags = excluded.tags, status = excluded.status, "
                     "version = excluded.version, updated_at = now() "
                     "WHERE subscribers.version < excluded.version")
SET_ROLE = ("UPDATE subscribers SET roles = CASE WHEN %(on)s "
            "THEN array(SELECT DISTINCT unnest(roles || %(role)s::text)) "
            "ELSE array_remove(roles, %(role)s::text) END, updated_at = now() WHERE resident_id = %(id)s")
SUBSCRIBER = f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE resident_id = %s"
COUNT_TARGET = ("SELECT community_code, count(*) AS n FROM subscribers WHERE status = 'active' "
                "AND starts_with(community_code, %(prefix)s) "
                "AND (cardinality(%(tags)s::text[]) = 0 OR tags && %(tags)s::text[]) "
                "AND (cardinality(%(roles)s::text[]) = 0 OR roles && %(roles)s::text[]) "
                "GROUP BY community_code ORDER BY community_code")

TEMPLATE = "SELECT code, category, version, created_at FROM templates WHERE code = %s"
TEMPLATE_FOR_UPDATE = TEMPLATE + " FOR UPDATE"
ADD_TEMPLATE = "INSERT INTO templates (code, category) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING code"
BUMP_TEMPLATE = "UPDATE templates SET version = version + 1 WHERE code = %s RETURNING version"
ADD_VERSION = ("INSERT INTO template_versions (code, version, locale, subject, body, actor) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
VERSIONS = ("SELECT version, locale, subject, body, actor, created_at FROM template_versions WHERE code = %s "
            "ORDER BY version, locale")
VERSION = ("SELECT version, locale, subject, body FROM template_versions WHERE code = %s AND version = %s "
           "AND locale = %s")

"""SQL of the notification service, in one place."""

SUBSCRIBER_COLUMNS = "resident_id, name, community_code, grid_code, household_id, tags, status, version"
# Applied only if newer than what is held: events may arrive out of order or twice.
UPSERT_SUBSCRIBER = (f"INSERT INTO subscribers ({SUBSCRIBER_COLUMNS}) "
                     "VALUES (%(id)s, %(name)s, %(community_code)s, %(grid_code)s, %(household_id)s, %(tags)s, "
                     "%(status)s, %(version)s) "
                     "ON CONFLICT (resident_id) DO UPDATE SET name = excluded.name, "
                     "community_code = excluded.community_code, grid_code = excluded.grid_code, "
                     "household_id = excluded.household_id, tags = excluded.tags, status = excluded.status, "
                     "version = excluded.version, updated_at = now() "
                     "WHERE subscribers.version < excluded.version")
# A role or membership event applies only if newer than the one that last set the link.
SET_LINK = ("INSERT INTO subscriber_links (resident_id, kind, value, active, at) "
            "VALUES (%(id)s, %(kind)s, %(value)s, %(active)s, %(at)s) ON CONFLICT (resident_id, kind, value) "
            "DO UPDATE SET active = excluded.active, at = excluded.at WHERE subscriber_links.at < excluded.at")
LINKED = ("EXISTS (SELECT 1 FROM subscriber_links l WHERE l.resident_id = s.resident_id AND l.active "
          "AND l.kind = '{kind}' AND l.value = ANY({values}))")
SUBSCRIBER = (f"SELECT {SUBSCRIBER_COLUMNS}, "
              "ARRAY(SELECT value FROM subscriber_links l WHERE l.resident_id = s.resident_id AND l.active "
              "AND l.kind = 'role' ORDER BY value) AS roles, "
              "ARRAY(SELECT value::bigint FROM subscriber_links l WHERE l.resident_id = s.resident_id AND l.active "
              "AND l.kind = 'organization' ORDER BY 1) AS organization_ids "
              "FROM subscribers s WHERE resident_id = %s")
TARGET = ("s.status = 'active' "
          "AND (starts_with(s.community_code, %(prefix)s) OR starts_with(coalesce(s.grid_code, ''), %(prefix)s)) "
          "AND (cardinality(%(tags)s::text[]) = 0 OR s.tags && %(tags)s::text[]) "
          "AND (cardinality(%(roles)s::text[]) = 0 OR " + LINKED.format(kind="role", values="%(roles)s::text[]") + ") "
          "AND (%(ids)s::bigint[] IS NULL OR s.resident_id = ANY(%(ids)s::bigint[])) "
          "AND (%(organization_id)s::text IS NULL OR "
          + LINKED.format(kind="organization", values="ARRAY[%(organization_id)s::text]") + ")")
COUNT_TARGET = ("SELECT s.community_code, count(*) AS n FROM subscribers s WHERE " + TARGET +
                " GROUP BY s.community_code ORDER BY s.community_code")

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

# -- addresses and preferences ----------------------------------------------------------------
SET_CHANNEL = ("INSERT INTO subscriber_channels (resident_id, channel, address_cipher, source) "
               "VALUES (%s, %s, %s, %s) ON CONFLICT (resident_id, channel) DO UPDATE SET "
               "address_cipher = excluded.address_cipher, source = excluded.source, updated_at = now()")
# The registry's phone never overwrites a number the resident gave us themselves.
REQUEST_PHONES = ("INSERT INTO phone_requests (resident_id) SELECT unnest(%s::bigint[]) "
                  "ON CONFLICT (resident_id) DO UPDATE SET requested_at = now()")
# resident_id breaks ties: an import asks for thousands of phones with one now(), and a batch must
# be the same rows each time it is read. No lock: the registry is asked after this read's
# transaction ends, and PHONES_DONE takes back only requests not renewed meanwhile.
PHONE_REQUESTS = "SELECT resident_id, requested_at FROM phone_requests ORDER BY requested_at, resident_id LIMIT %s"
# The requests answered, as they were read: one renewed since (the phone changed again) stays, and
# its resident's phone is not set from an answer that may be older than the change.
PHONES_DONE = ("DELETE FROM phone_requests r USING unnest(%s::bigint[], %s::timestamptz[]) AS asked(id, at) "
               "WHERE r.resident_id = asked.id AND r.requested_at = asked.at RETURNING r.resident_id")
# The registry no longer has a phone for them: the old number (perhaps someone else's now) goes.
DROP_REGISTRY_PHONES = ("DELETE FROM subscriber_channels WHERE resident_id = ANY(%s) AND channel = 'sms' "
                        "AND source = 'registry'")
SET_REGISTRY_PHONE = (SET_CHANNEL + " WHERE subscriber_channels.source = 'registry'")
DROP_CHANNEL = "DELETE FROM subscriber_channels WHERE resident_id = %s AND channel = %s"
CHANNELS_OF = "SELECT channel, address_cipher, source, updated_at FROM subscriber_channels WHERE resident_id = %s"
PREFERENCES = ("SELECT opted_out, quiet_start, quiet_end, locale, updated_at FROM preferences "
               "WHERE resident_id = %s")
SET_PREFERENCES = ("INSERT INTO preferences (resident_id, opted_out, quiet_start, quiet_end, locale) "
                   "VALUES (%(resident_id)s, %(opted_out)s, %(quiet_start)s, %(quiet_end)s, %(locale)s) "
                   "ON CONFLICT (resident_id) DO UPDATE SET opted_out = excluded.opted_out, "
                   "quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, locale = excluded.locale, "
                   "updated_at = now()")
SUBSCRIBER_FOR_UPDATE = f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE resident_id = %s FOR UPDATE"

# -- notices and fan-out ----------------------------------------------------------------------
ADD_NOTICE = ("INSERT INTO notices (trigger_key, kind, category, priority, template_code, template_version, "
              "context, target, channels, scope_code, created_by) VALUES (%(trigger_key)s, %(kind)s, %(category)s, "
              "%(priority)s, %(template_code)s, %(template_version)s, %(context)s, %(target)s, %(channels)s, "
              "%(scope_code)s, %(created_by)s) ON CONFLICT (trigger_key) DO NOTHING RETURNING id")
NOTICE_BY_KEY = "SELECT id FROM notices WHERE trigger_key = %s"
NOTICE = ("SELECT id, trigger_key, kind, category, priority, template_code, template_version, context, target, "
          "channels, scope_code, created_by, created_at FROM notices WHERE id = %s")
NOTICES = ("SELECT id, category, priority, template_code, template_version, context FROM notices "
           "WHERE id = ANY(%s)")
# Everyone a notice may reach, with what fan-out needs to apply their preferences.
AUDIENCE = """
SELECT s.resident_id, s.community_code, p.opted_out, p.quiet_start, p.quiet_end,
       ARRAY(SELECT c.channel FROM subscriber_channels c WHERE c.resident_id = s.resident_id) AS channels
FROM subscribers s LEFT JOIN preferences p USING (resident_id)
WHERE """ + TARGET
COPY_DELIVERIES = ("COPY deliveries (notice_id, resident_id, community_code, channel, rank, status, due_at) "
                   "FROM STDIN")
WAKE = "SELECT pg_notify('notification_deliveries', '')"
ADD_WAITS = ("INSERT INTO notice_waits (notice_id, resident_id) SELECT %s, unnest(%s::bigint[]) "
             "ON CONFLICT DO NOTHING")
# Arrived, and with the phone the registry has for them (if any) already fetched.
ARRIVED = ("SELECT w.notice_id, w.resident_id FROM notice_waits w JOIN subscribers s USING (resident_id) "
           "WHERE NOT EXISTS (SELECT 1 FROM phone_requests r WHERE r.resident_id = w.resident_id) "
           "ORDER BY w.notice_id LIMIT %s FOR UPDATE OF w SKIP LOCKED")
DROP_WAITS = "DELETE FROM notice_waits WHERE notice_id = %s AND resident_id = ANY(%s)"
EXPIRE_WAITS = "DELETE FROM notice_waits WHERE created_at < now() - interval '1 day'"
ADD_DELIVERY_ONCE = ("INSERT INTO deliveries (notice_id, resident_id, community_code, channel, rank, status, due_at) "
                     "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING")

# -- the sender -------------------------------------------------------------------------------
# Due deliveries, most urgent first; SKIP LOCKED lets several senders share the queue, and a
# cancellation waits for a batch in flight rather than racing it.
CLAIM = """
WITH claimed AS (  -- the queue alone, in index order: the joins are for what is claimed, not all that is due
    SELECT id FROM deliveries WHERE status = 'queued' AND due_at <= now()
    ORDER BY rank, due_at LIMIT %s FOR UPDATE SKIP LOCKED
)
SELECT d.id, d.notice_id, d.resident_id, d.channel, d.attempts, s.name, s.status AS subscriber_status,
       c.address_cipher, coalesce(p.locale, 'zh') AS locale, p.opted_out, p.quiet_start, p.quiet_end
FROM claimed JOIN deliveries d USING (id) JOIN subscribers s ON s.resident_id = d.resident_id
     LEFT JOIN subscriber_channels c ON c.resident_id = d.resident_id AND c.channel = d.channel
     LEFT JOIN preferences p ON p.resident_id = d.resident_id
ORDER BY d.rank, d.due_at
"""
TEMPLATE_TEXTS = ("SELECT code, version, locale, subject, body FROM template_versions "
                  "WHERE (code, version) IN (SELECT * FROM unnest(%s::text[], %s::int[]))")
SETTLE = """
UPDATE deliveries d SET status = u.status, attempts = d.attempts + u.tried, provider = u.provider,
       provider_ref = u.provider_ref, error = u.error, due_at = u.due_at,
       sent_at = CASE WHEN u.status IN ('sent', 'delivered') THEN now() ELSE d.sent_at END,
       delivered_at = CASE WHEN u.status = 'delivered' THEN now() ELSE d.delivered_at END,
       updated_at = now()
FROM unnest(%b::bigint[], %b::text[], %b::int[], %b::text[], %b::text[], %b::text[], %b::timestamptz[])
     AS u(id, status, tried, provider, provider_ref, error, due_at)
WHERE d.id = u.id
"""
QUEUE_DEPTH = ("SELECT channel, count(*) AS n, coalesce(extract(epoch FROM now() - min(due_at)), 0) AS oldest "
               "FROM deliveries WHERE status = 'queued' AND due_at <= now() GROUP BY channel")

# -- receipts and the inbox -------------------------------------------------------------------
BY_RECEIPT = ("SELECT id, status, provider_ref FROM deliveries WHERE provider = %s AND provider_ref = ANY(%s) "
              "ORDER BY id FOR UPDATE")
# A receipt for a message the sender has not settled yet (the provider answered faster than we
# committed) waits here, and applies when the batch settles; only forward moves, the furthest first.
ADD_EARLY_RECEIPTS = ("INSERT INTO early_receipts (provider, provider_ref, status, error) "
                      "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING")
APPLY_EARLY_RECEIPTS = """
WITH early AS (
    DELETE FROM early_receipts e USING deliveries d
    WHERE d.id = ANY(%s) AND e.provider = d.provider AND e.provider_ref = d.provider_ref
    RETURNING e.provider, e.provider_ref, e.status, e.error
), best AS (
    SELECT DISTINCT ON (provider, provider_ref) * FROM early
    ORDER BY provider, provider_ref, CASE status WHEN 'read' THEN 0 WHEN 'failed' THEN 1 ELSE 2 END
)
UPDATE deliveries d SET status = b.status, error = coalesce(b.error, d.error),
       delivered_at = CASE WHEN b.status IN ('delivered', 'read') THEN now() ELSE d.delivered_at END,
       read_at = CASE WHEN b.status = 'read' THEN now() ELSE d.read_at END, updated_at = now()
FROM best b WHERE d.provider = b.provider AND d.provider_ref = b.provider_ref AND d.status = 'sent'
"""
EXPIRE_EARLY_RECEIPTS = "DELETE FROM early_receipts WHERE received_at < now() - interval '1 day'"
RECEIPT = ("UPDATE deliveries SET status = %(status)s, error = coalesce(%(error)s, error), "
           "delivered_at = CASE WHEN %(status)s IN ('delivered', 'read') THEN coalesce(delivered_at, now()) "
           "ELSE delivered_at END, read_at = CASE WHEN %(status)s = 'read' THEN now() ELSE read_at END, "
           "updated_at = now() WHERE id = %(id)s")
INBOX = """
SELECT d.id, d.status, d.created_at, d.read_at, n.category, n.priority, n.template_code, n.template_version,
       n.context, coalesce(p.locale, 'zh') AS locale, s.name
FROM (SELECT id, notice_id, resident_id, status, sent_at AS created_at, read_at FROM deliveries
      WHERE resident_id = %(resident_id)s AND channel = 'inbox' AND status IN ('delivered', 'read')
        AND (%(unread)s IS NOT TRUE OR status = 'delivered') AND (%(after)s::bigint IS NULL OR id < %(after)s)
      ORDER BY id DESC LIMIT %(limit)s) d
JOIN notices n ON n.id = d.notice_id JOIN subscribers s ON s.resident_id = d.resident_id
LEFT JOIN preferences p ON p.resident_id = d.resident_id
ORDER BY d.id DESC
"""
UNREAD = ("SELECT count(*) AS n FROM deliveries WHERE resident_id = %s AND channel = 'inbox' "
          "AND status = 'delivered'")
INBOX_ITEM = ("SELECT id, status, notice_id FROM deliveries WHERE id = %s AND resident_id = %s "
              "AND channel = 'inbox' FOR UPDATE")
MARK_READ = ("UPDATE deliveries SET status = 'read', read_at = now(), updated_at = now() "
             "WHERE id = %s AND status = 'delivered'")
DELIVERIES_OF = ("SELECT id, resident_id, community_code, channel, status, attempts, provider, error, due_at, "
                 "sent_at, delivered_at, read_at FROM deliveries WHERE notice_id = %(notice_id)s "
                 "AND (%(status)s::text IS NULL OR status = %(status)s) AND (%(after)s::bigint IS NULL OR id > %(after)s) "
                 "ORDER BY id LIMIT %(limit)s")
DELIVERY_COUNTS = ("SELECT channel, status, count(*) AS n FROM deliveries WHERE notice_id = %s "
                   "GROUP BY channel, status ORDER BY channel, status")
# A person reached on two channels counts once (rules.rollup is the spec of this query).
ROLLUP = """
SELECT community_code, count(*) AS targeted, count(*) FILTER (WHERE reached) AS reached,
       count(*) FILTER (WHERE read) AS read
FROM (SELECT d.community_code, d.resident_id,
             bool_or(coalesce(b.status, d.status) IN ('sent', 'delivered', 'read')) AS reached,
             bool_or(coalesce(b.status, d.status) = 'read') AS read
      FROM deliveries d LEFT JOIN deliveries b ON b.id = d.bundled_into  -- a digest item counts as its digest
      WHERE d.notice_id = %s GROUP BY d.community_code, d.resident_id) people
GROUP BY community_code ORDER BY community_code
"""
CANCEL_DELIVERIES = ("UPDATE deliveries SET status = 'cancelled', updated_at = now() "
                     "WHERE notice_id = %s AND status IN ('queued', 'held')")
UNSETTLED = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE notice_id = %s AND status IN ('queued', 'held')) AS open"

# -- digests ----------------------------------------------------------------------------------
DUE_DIGESTS = """
SELECT d.resident_id, d.channel, min(d.community_code) AS community_code,
       array_agg(d.id ORDER BY d.id) AS ids, array_agg(d.notice_id ORDER BY d.id) AS notice_ids
FROM deliveries d WHERE d.status = 'held' AND d.due_at <= now()
GROUP BY d.resident_id, d.channel LIMIT %s
"""
LOCK_HELD = "SELECT id, notice_id FROM deliveries WHERE id = ANY(%s) AND status = 'held' ORDER BY id FOR UPDATE SKIP LOCKED"
BUNDLE = ("UPDATE deliveries SET status = 'bundled', bundled_into = %s, updated_at = now() WHERE id = ANY(%s)")
ADD_DELIVERY = ("INSERT INTO deliveries (notice_id, resident_id, community_code, channel, rank, status, due_at) "
                "VALUES (%s, %s, %s, %s, %s, 'queued', now()) ON CONFLICT DO NOTHING RETURNING id")

# -- broadcasts -------------------------------------------------------------------------------
BROADCAST_COLUMNS = ("id, request_id, directive_id, prefix, title, message, channels, status, version, created_by, "
                     "edited_by, approved_by, reason, notice_id, created_at, updated_at")
BROADCAST = f"SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = %s"
BROADCAST_FOR_UPDATE = BROADCAST + " FOR UPDATE"
BROADCAST_BY_REQUEST = f"SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE request_id = %s"
BROADCAST_BY_DIRECTIVE = f"SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE directive_id = %s"
ADD_BROADCAST = ("INSERT INTO broadcasts (request_id, directive_id, prefix, title, message, channels, status, "
                 "created_by, edited_by, approved_by) VALUES (%(request_id)s, %(directive_id)s, %(prefix)s, "
                 "%(title)s, %(message)s, %(channels)s, %(status)s, %(actor)s, %(actor)s, %(approved_by)s) "
                 "ON CONFLICT DO NOTHING RETURNING id")
EDIT_BROADCAST = ("UPDATE broadcasts SET prefix = %(prefix)s, title = %(title)s, message = %(message)s, "
                  "channels = %(channels)s, version = version + 1, edited_by = %(actor)s, status = 'draft', "
                  "reason = NULL, updated_at = now() WHERE id = %(id)s RETURNING version")
MOVE_BROADCAST = ("UPDATE broadcasts SET status = %(status)s, approved_by = coalesce(%(approved_by)s, approved_by), "
                  "reason = coalesce(%(reason)s, reason), notice_id = coalesce(%(notice_id)s, notice_id), "
                  "updated_at = now() WHERE id = %(id)s")
ADD_BROADCAST_VERSION = ("INSERT INTO broadcast_versions (broadcast_id, version, prefix, title, message, channels, "
                         "actor) SELECT id, version, prefix, title, message, channels, edited_by FROM broadcasts "
                         "WHERE id = %s")
BROADCAST_VERSIONS = ("SELECT version, prefix, title, message, channels, actor, created_at FROM broadcast_versions "
                      "WHERE broadcast_id = %s ORDER BY version")
LOG_BROADCAST = ("INSERT INTO broadcast_log (broadcast_id, status, version, actor, reason) "
                 "SELECT id, status, version, %s, %s FROM broadcasts WHERE id = %s")
BROADCAST_LOG = "SELECT at, status, version, actor, reason FROM broadcast_log WHERE broadcast_id = %s ORDER BY at"
BROADCASTS = (f"SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE starts_with(prefix, %(under)s) "
              "AND (%(status)s::text IS NULL OR status = %(status)s) AND (%(after)s::bigint IS NULL OR id < %(after)s) "
              "ORDER BY id DESC LIMIT %(limit)s")
SENDING_BROADCASTS = "SELECT id, notice_id FROM broadcasts WHERE status = 'sending'"
RELEASE_HELD = "UPDATE deliveries SET status = 'queued', due_at = now(), updated_at = now() WHERE id = ANY(%s)"
READER = ("SELECT s.name, coalesce(p.locale, 'zh') AS locale FROM subscribers s "
          "LEFT JOIN preferences p USING (resident_id) WHERE s.resident_id = %s")

# -- directives up and down -------------------------------------------------------------------
# Cancelled ones too: their people were targeted (broadcasts.rollup counts them), some reached before the
# cancel, and an inbox message delivered by then can still be read; left out, the level above never
# heard of what the street's own figures show.
# In its first week every pass looks; after it, only when a delivery changed since the last look. The
# margin: a delivery's updated_at is its transaction's start, which may lie before a look that did not
# see it yet committed, so a change is looked at again for ten minutes after it.
DIRECTIVE_BROADCASTS = """
SELECT b.id, b.directive_id, b.notice_id FROM broadcasts b
WHERE b.directive_id IS NOT NULL AND b.notice_id IS NOT NULL AND b.status IN ('sending', 'sent', 'cancelled')
  AND (b.created_at > now() - interval '7 days' OR b.acknowledged_through IS NULL
       OR EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = b.notice_id
                  AND d.updated_at > b.acknowledged_through - interval '10 minutes'))
ORDER BY b.id
"""
ACKNOWLEDGED_THROUGH = "UPDATE broadcasts SET acknowledged_through = now() WHERE id = %s"
REPORTED = ("SELECT community_code, targeted, reached, read FROM acknowledgement_reports "
            "WHERE broadcast_id = %s FOR UPDATE")
SET_REPORTED = ("INSERT INTO acknowledgement_reports (broadcast_id, community_code, targeted, reached, read) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (broadcast_id, community_code) DO UPDATE SET "
                "targeted = excluded.targeted, reached = excluded.reached, read = excluded.read, updated_at = now()")

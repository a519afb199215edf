"""SQL of the consultation service, in one place."""

# Trigram similarity above which an open matter is offered as the same one. Chinese text gives low
# whole-text scores for rewordings (a reworded parking complaint scores ≈ 0.18 against ≈ 0.09 for a
# noise complaint), so the score is the better of whole-text similarity and word similarity (how well
# the new text matches part of the old), which scores the rewording ≈ 0.26 and the noise 0.
SIMILARITY = 0.2

MATTER_COLUMNS = ("id, request_id, community_code, building, category, urgency, channel, title, description, "
                  "raiser_resident_id, attachments, status, duplicate_of, similar_to, backers, level_code, raised_at, "
                  "screening_due_at, settle_due_at, screened_at, screened_by, screen_note, referred_to, escalated_at, "
                  "agenda_item_id, settled_at, version")
MATTER = f"SELECT {MATTER_COLUMNS} FROM matters WHERE id = %s"
MATTER_FOR_UPDATE = MATTER + " FOR UPDATE"
MATTERS_FOR_UPDATE = f"SELECT {MATTER_COLUMNS} FROM matters WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
MATTER_BY_REQUEST = f"SELECT {MATTER_COLUMNS} FROM matters WHERE request_id = %s"
ADD_MATTER = ("INSERT INTO matters (request_id, community_code, building, category, urgency, channel, title, "
              "description, raiser_resident_id, attachments, level_code, raised_at, screening_due_at, settle_due_at, "
              "similar_to) "
              "VALUES (%(request_id)s, %(community_code)s, %(building)s, %(category)s, %(urgency)s, %(channel)s, "
              "%(title)s, %(description)s, %(raiser_resident_id)s, %(attachments)s, %(level_code)s, %(raised_at)s, "
              "%(screening_due_at)s, %(settle_due_at)s, %(similar_to)s) "
              "ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING id")
SIMILAR = ("SELECT * FROM (SELECT id, title, status, backers, "
           "greatest(similarity(title || ' ' || description, %(text)s), "
           "word_similarity(%(text)s, title || ' ' || description)) AS similarity "
           "FROM matters WHERE community_code = %(community_code)s AND category = %(category)s "
           "AND status NOT IN ('settled', 'rejected', 'merged')) m "
           "WHERE similarity >= %(threshold)s ORDER BY similarity DESC, id LIMIT 5")
SET_STATUS = ("UPDATE matters SET status = %(status)s, version = version + 1 WHERE id = %(id)s RETURNING version")
# Times come from the service's clock, like raised_at, so durations never come out negative.
SCREEN = ("UPDATE matters SET status = %(status)s, "
          "screened_at = CASE WHEN %(rescreen)s THEN NULL ELSE coalesce(screened_at, %(now)s) END, "
          "screening_due_at = %(screening_due_at)s, screened_by = %(actor)s, "
          "screen_note = %(note)s, referred_to = %(referred_to)s, duplicate_of = %(duplicate_of)s, "
          "level_code = %(level_code)s, escalated_at = CASE WHEN %(status)s = 'escalated' THEN %(now)s "
          "ELSE escalated_at END, version = version + 1 WHERE id = %(id)s RETURNING version")
DETACH = "UPDATE matters SET agenda_item_id = NULL WHERE id = %s"
MOVE_BACKERS = ("INSERT INTO backers (matter_id, resident_id) "
                "SELECT %(to)s, resident_id FROM backers WHERE matter_id = %(from)s "
                "UNION SELECT %(to)s, %(raiser)s::bigint WHERE %(raiser)s::bigint IS NOT NULL "
                "EXCEPT SELECT %(to)s, raiser_resident_id FROM matters WHERE id = %(to)s "
                "ON CONFLICT DO NOTHING")
SETTLE = ("UPDATE matters SET status = 'settled', settled_at = %s, version = version + 1 WHERE id = %s "
          "RETURNING version")
ADD_HISTORY = ("INSERT INTO matter_history (matter_id, version, status, note, actor) VALUES (%s, %s, %s, %s, %s)")
HISTORY = "SELECT version, status, note, actor, at FROM matter_history WHERE matter_id = %s ORDER BY version"
ADD_BACKER = "INSERT INTO backers (matter_id, resident_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
COUNT_BACKER = "UPDATE matters SET backers = backers + %s WHERE id = %s"
IS_BACKER = "SELECT 1 FROM backers WHERE matter_id = %s AND resident_id = %s"
LIST_MATTERS = (f"SELECT {MATTER_COLUMNS} FROM matters WHERE starts_with(community_code, %(under)s) "
                "AND (%(status)s::text IS NULL OR status = %(status)s) "
                "AND (%(category)s::text IS NULL OR category = %(category)s) "
                "AND (NOT %(overdue)s OR (status NOT IN ('settled', 'rejected', 'merged') AND settle_due_at < now())) "
                "AND (NOT %(screening_overdue)s OR (status IN ('raised', 'escalated') AND screening_due_at < now())) "
                "AND (NOT %(escalated)s OR level_code <> community_code) "
                "AND id > %(after)s ORDER BY id LIMIT %(limit)s")
DEADLINES = "SELECT category, urgency, screening_hours, settle_days FROM deadlines"
SET_DEADLINE = ("INSERT INTO deadlines (category, urgency, screening_hours, settle_days) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (category, urgency) DO UPDATE SET screening_hours = excluded.screening_hours, "
                "settle_days = excluded.settle_days")

# -- deliberation ------------------------------------------------------------------------------

AGENDA_ITEM = "SELECT id, community_code, title, status, created_by, created_at FROM agenda_items WHERE id = %s"
AGENDA_ITEM_FOR_UPDATE = AGENDA_ITEM + " FOR UPDATE"
ADD_AGENDA_ITEM = ("INSERT INTO agenda_items (community_code, title, created_by) VALUES (%s, %s, %s) RETURNING id")
ATTACH_MATTERS = "UPDATE matters SET agenda_item_id = %s WHERE id = ANY(%s)"
MATTERS_OF_ITEM = f"SELECT {MATTER_COLUMNS} FROM matters WHERE agenda_item_id = %s ORDER BY id"
OPTIONS_OF_ITEM = "SELECT id, title, description, budget FROM options WHERE agenda_item_id = %s ORDER BY id"
# Where an item went: its meetings and its decision, so a worker can follow a matter to them.
MEETINGS_OF_ITEM = ("SELECT m.id, m.title, m.starts_at, m.status FROM meetings m JOIN meeting_items mi "
                    "ON mi.meeting_id = m.id WHERE mi.agenda_item_id = %s ORDER BY m.starts_at, m.id")
DECISION_OF_ITEM = "SELECT id FROM decisions WHERE agenda_item_id = %s"
ADD_OPTION = ("INSERT INTO options (agenda_item_id, title, description, budget) VALUES (%s, %s, %s, %s) "
              "RETURNING id")
OPTION = "SELECT id, agenda_item_id, title, description, budget FROM options WHERE id = %s"

MEETING_COLUMNS = ("id, community_code, title, starts_at, place, quorum, status, minutes, created_by, created_at, "
                   "version")
MEETING = f"SELECT {MEETING_COLUMNS} FROM meetings WHERE id = %s"
MEETING_FOR_UPDATE = MEETING + " FOR UPDATE"
ADD_MEETING = ("INSERT INTO meetings (request_id, community_code, title, starts_at, place, quorum, created_by) "
               "VALUES (%(request_id)s, %(community_code)s, %(title)s, %(starts_at)s, %(place)s, %(quorum)s, "
               "%(actor)s) "
               "ON CONFLICT (request_id) DO NOTHING RETURNING id")
MEETING_BY_REQUEST = "SELECT id, community_code FROM meetings WHERE request_id = %s"
ADD_MEETING_ITEM = "INSERT INTO meeting_items (meeting_id, agenda_item_id) VALUES (%s, %s)"
ITEMS_OF_MEETING = ("SELECT a.id, a.title, a.status FROM meeting_items mi JOIN agenda_items a "
                    "ON a.id = mi.agenda_item_id WHERE mi.meeting_id = %s ORDER BY a.id")
ADD_PARTICIPANT = ("INSERT INTO participants (meeting_id, role, resident_id, name, affiliation) "
                   "VALUES (%(meeting_id)s, %(role)s, %(resident_id)s, %(name)s, %(affiliation)s) RETURNING id")
PARTICIPANTS = ("SELECT id, role, resident_id, name, affiliation, attended FROM participants "
                "WHERE meeting_id = %s ORDER BY id")
MARK_ATTENDED = "UPDATE participants SET attended = (id = ANY(%s)) WHERE meeting_id = %s"
MOVE_MEETING = ("UPDATE meetings SET starts_at = %(starts_at)s, place = %(place)s, version = version + 1 "
                "WHERE id = %(id)s")
SET_MEETING_STATUS = ("UPDATE meetings SET status = %s, minutes = coalesce(%s, minutes), version = version + 1 "
                      "WHERE id = %s")
ADD_VOTE = ("INSERT INTO votes (meeting_id, participant_id, agenda_item_id, option_id, score, choice) "
            "VALUES (%(meeting_id)s, %(participant_id)s, %(agenda_item_id)s, %(option_id)s, %(score)s, %(choice)s)")
# Only the votes of participants marked present count, should the attendance be corrected after a vote.
SCORES = ("SELECT v.score FROM votes v JOIN participants p ON p.id = v.participant_id AND p.attended "
          "WHERE v.meeting_id = %s AND v.agenda_item_id = %s AND v.option_id IS NULL")
CHOICES = ("SELECT o.id AS option_id, "
           "count(v.*) FILTER (WHERE v.choice = 'approve') AS approve, "
           "count(v.*) FILTER (WHERE v.choice = 'oppose') AS oppose, "
           "count(v.*) FILTER (WHERE v.choice = 'abstain') AS abstain "
           "FROM options o LEFT JOIN (votes v JOIN participants p ON p.id = v.participant_id AND p.attended) "
           "ON v.option_id = o.id AND v.meeting_id = %s "
           "WHERE o.agenda_item_id = %s GROUP BY o.id ORDER BY o.id")

# -- decision, implementation, publication -----------------------------------------------------

DECISION_COLUMNS = ("d.id, d.agenda_item_id, d.meeting_id, d.option_id, d.approve, d.oppose, d.abstain, d.attended, "
                    "d.responsible, d.budget, d.deadline, d.decided_by, d.decided_at, d.published_at, d.summary, "
                    "d.public_summary, "
                    "a.community_code, a.title AS item_title, o.title AS option_title")
DECISION_FROM = "FROM decisions d JOIN agenda_items a ON a.id = d.agenda_item_id JOIN options o ON o.id = d.option_id"
DECISION = f"SELECT {DECISION_COLUMNS} {DECISION_FROM} WHERE d.id = %s"
DECISION_FOR_UPDATE = DECISION + " FOR UPDATE OF d"
ADD_DECISION = ("INSERT INTO decisions (agenda_item_id, meeting_id, option_id, approve, oppose, abstain, attended, "
                "responsible, budget, deadline, decided_by, summary) VALUES (%(agenda_item_id)s, %(meeting_id)s, "
                "%(option_id)s, %(approve)s, %(oppose)s, %(abstain)s, %(attended)s, %(responsible)s, %(budget)s, "
                "%(deadline)s, %(actor)s, %(summary)s) ON CONFLICT (agenda_item_id) DO NOTHING RETURNING id")
ITEM_DECIDED = "UPDATE agenda_items SET status = 'decided' WHERE id = %s"
PUBLISH = "UPDATE decisions SET published_at = now(), public_summary = %s WHERE id = %s"
TASKS = ("SELECT id, decision_id, title, responsible, due_on, progress, created_at FROM tasks "
         "WHERE decision_id = %s ORDER BY id")
TASK_FOR_UPDATE = ("SELECT t.id, t.decision_id, t.title, t.responsible, t.due_on, t.progress, a.community_code "
                   "FROM tasks t JOIN decisions d ON d.id = t.decision_id "
                   "JOIN agenda_items a ON a.id = d.agenda_item_id "
                   "WHERE t.id = %s FOR UPDATE OF t")
ADD_TASK = ("INSERT INTO tasks (request_id, decision_id, title, responsible, due_on) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING id")
TASK_BY_REQUEST = "SELECT id, decision_id FROM tasks WHERE request_id = %s"
LAST_TASK_UPDATE = "SELECT progress, note FROM task_updates WHERE task_id = %s ORDER BY id DESC LIMIT 1"
SET_PROGRESS = "UPDATE tasks SET progress = %s WHERE id = %s"
ADD_TASK_UPDATE = "INSERT INTO task_updates (task_id, progress, note, actor) VALUES (%s, %s, %s, %s)"
TASK_UPDATES = "SELECT progress, note, actor, at FROM task_updates WHERE task_id = %s ORDER BY id"

# -- satisfaction and figures --------------------------------------------------------------------

ADD_RATING = ("INSERT INTO ratings (matter_id, resident_id, score, comment) VALUES (%s, %s, %s, %s) "
              "ON CONFLICT DO NOTHING")
RATINGS_OF = "SELECT score FROM ratings WHERE matter_id = %s"
IN_ROSTER = ("SELECT 1 FROM participants p JOIN meeting_items mi ON mi.meeting_id = p.meeting_id "
             "JOIN meetings mt ON mt.id = p.meeting_id AND mt.status <> 'cancelled' "
             "WHERE mi.agenda_item_id = %s AND p.resident_id = %s AND p.attended LIMIT 1")
RATED_ITEM = ("SELECT 1 FROM ratings r JOIN matters m ON m.id = r.matter_id "
              "WHERE m.agenda_item_id = %s AND r.resident_id = %s LIMIT 1")
FIGURE_ROWS = ("SELECT id, community_code, category, status, similar_to, raised_at, screening_due_at, "
               "settle_due_at, screened_at, "
               "settled_at FROM matters WHERE starts_with(community_code, %(under)s) "
               "AND (%(category)s::text IS NULL OR category = %(category)s) "
               "AND raised_at >= %(since)s AND raised_at < %(until)s")
FIGURE_RATINGS = ("SELECT m.community_code, m.category, r.score FROM ratings r JOIN matters m ON m.id = r.matter_id "
                  "WHERE starts_with(m.community_code, %(under)s) "
                  "AND (%(category)s::text IS NULL OR m.category = %(category)s) "
                  "AND m.raised_at >= %(since)s AND m.raised_at < %(until)s")

# -- the public view: published results, nothing personal ---------------------------------------

PUBLIC_RESULTS = ("SELECT d.id, d.meeting_id, a.community_code, a.title AS item_title, o.title AS option_title, "
                  "d.public_summary AS summary, d.budget, "
                  "d.deadline, d.decided_at, d.published_at, d.approve, d.oppose, d.abstain, d.attended, "
                  "(SELECT array_agg(DISTINCT m.category) FROM matters m WHERE m.agenda_item_id = a.id) AS categories, "
                  "(SELECT coalesce(round(avg(t.progress)), 0) FROM tasks t WHERE t.decision_id = d.id) AS progress, "
                  "(SELECT count(*) FROM ratings r JOIN matters m ON m.id = r.matter_id "
                  " WHERE m.agenda_item_id = a.id) AS ratings, "
                  "(SELECT count(*) FROM ratings r JOIN matters m ON m.id = r.matter_id "
                  " WHERE m.agenda_item_id = a.id AND r.score >= 4) AS satisfied "
                  f"{DECISION_FROM} WHERE d.published_at IS NOT NULL AND starts_with(a.community_code, %(under)s) "
                  "AND d.id > %(after)s ORDER BY d.id LIMIT %(limit)s")
ROLES_ATTENDED = ("SELECT role, count(*) FILTER (WHERE attended) AS attended FROM participants WHERE meeting_id = %s "
                  "GROUP BY role ORDER BY role")

# -- cases between levels ---------------------------------------------------------------------
ADD_CASE = ("INSERT INTO cases (case_id, from_code, community_code, category, urgency, channel, reason, raised_on) "
            "VALUES (%(case_id)s, %(from_code)s, %(community_code)s, %(category)s, %(urgency)s, %(channel)s, "
            "%(reason)s, %(raised_on)s) ON CONFLICT (case_id) DO NOTHING RETURNING case_id")
CASE_COLUMNS = ("case_id, from_code, community_code, category, urgency, channel, reason, raised_on, status, outcome, "
                "answer, referred_to, answered_by, answered_at, received_at")
CASE = f"SELECT {CASE_COLUMNS} FROM cases WHERE case_id = %s"
CASE_FOR_UPDATE = CASE + " FOR UPDATE"
CASES = (f"SELECT {CASE_COLUMNS} FROM cases WHERE starts_with(from_code, %(under)s) "
         "AND (%(status)s::text IS NULL OR status = %(status)s) ORDER BY received_at DESC LIMIT %(limit)s")
ANSWER_CASE = ("UPDATE cases SET status = 'answered', outcome = %(outcome)s, answer = %(answer)s, "
               "referred_to = %(referred_to)s, "
               "answered_by = %(actor)s, answered_at = now() WHERE case_id = %(case_id)s")

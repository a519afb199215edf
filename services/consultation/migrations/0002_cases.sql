-- Matters escalated from a street to its district arrive at the district as de-identified cases
-- (no raiser, no resident's words: the category, urgency, channel, community and the street's
-- reason for escalating). The district's answer goes back down to the street that raised it.
CREATE TABLE cases (
    case_id        text PRIMARY KEY CHECK (length(case_id) BETWEEN 3 AND 100),   -- '<street>:<matter id>'
    from_code      text NOT NULL CHECK (from_code ~ '^[0-9]{9}$'),
    community_code text NOT NULL CHECK (community_code ~ '^[0-9]{12}$'),
    category       text NOT NULL,
    urgency        text NOT NULL,
    channel        text NOT NULL,
    reason         text,
    raised_on      date NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered')),
    outcome        text CHECK (outcome IN ('answered', 'referred')),
    answer         text CHECK (length(answer) BETWEEN 1 AND 2000),
    referred_to    text,
    answered_by    text,
    answered_at    timestamptz,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_open ON cases (from_code, received_at) WHERE status = 'open';

-- Notification, second part: notices (what is to be said, and why), deliveries (one per notice,
-- person and channel), and emergency broadcasts with their versions and two-person approval.

-- Addresses are sealed (AES-GCM, like the registry's phones); the in-app inbox needs none.
ALTER TABLE subscriber_channels RENAME COLUMN address TO address_cipher;
ALTER TABLE subscriber_channels DROP CONSTRAINT subscriber_channels_address_check;
ALTER TABLE subscriber_channels ALTER COLUMN address_cipher TYPE bytea USING convert_to(address_cipher, 'UTF8');
-- Where the address came from: the registry's phone, or given by the resident or a worker.
ALTER TABLE subscriber_channels ADD COLUMN source text NOT NULL DEFAULT 'given'
    CHECK (source IN ('registry', 'given'));

-- Roles and organisation memberships, from the registry's events. They live apart from the
-- subscriber row because their events travel on other queues than the resident's and may come
-- first; each link keeps the time of the event that set it, so an older event never undoes a newer.
CREATE TABLE subscriber_links (
    resident_id bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('role', 'organization')),
    value       text NOT NULL,
    active      boolean NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (resident_id, kind, value)
);
CREATE INDEX subscriber_links_value ON subscriber_links (kind, value) WHERE active;
INSERT INTO subscriber_links (resident_id, kind, value, active, at)
    SELECT resident_id, 'role', unnest(roles), true, updated_at FROM subscribers;
ALTER TABLE subscribers DROP COLUMN roles;

-- Residents whose phone is to be fetched from the registry (registered, or their phone changed). A
-- timer asks in batches, so an event is never held up, or lost, while the registry is away.
CREATE TABLE phone_requests (
    resident_id  bigint PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE preferences ADD COLUMN locale text NOT NULL DEFAULT 'zh' CHECK (locale IN ('zh', 'en'));

CREATE TABLE notices (
    id               bigserial PRIMARY KEY,
    -- Why it exists, once: '<event type>:<event id>' for a trigger, 'notice:<request id>' for a
    -- targeted notice, 'broadcast:<id>' for a broadcast, 'digest:<resident>:<channel>:<day>'.
    trigger_key      text NOT NULL UNIQUE CHECK (length(trigger_key) BETWEEN 3 AND 200),
    kind             text NOT NULL CHECK (kind IN ('trigger', 'targeted', 'broadcast', 'digest')),
    category         text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('digest', 'normal', 'urgent', 'critical')),
    template_code    text NOT NULL REFERENCES templates (code),
    template_version integer NOT NULL,
    context          jsonb NOT NULL,
    target           jsonb,
    channels         text[] NOT NULL,
    -- The node the notice was sent within: a token must reach it to read the notice.
    scope_code       text NOT NULL CHECK (scope_code ~ '^[0-9]{2,15}$'),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- People a notice names whom the registry's events have not brought here yet: the notice waits
-- for them (a day at most) instead of missing them.
CREATE TABLE notice_waits (
    notice_id   bigint NOT NULL REFERENCES notices (id),
    resident_id bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notice_id, resident_id)
);

CREATE TABLE deliveries (
    id             bigserial PRIMARY KEY,
    notice_id      bigint NOT NULL REFERENCES notices (id),
    resident_id    bigint NOT NULL,
    community_code text NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('sms', 'wechat', 'email', 'inbox', 'webhook')),
    -- 0 critical, 1 urgent, 2 normal, 3 digest: the sender takes the lowest first.
    rank           smallint NOT NULL CHECK (rank BETWEEN 0 AND 3),
    status         text NOT NULL CHECK (status IN ('held', 'queued', 'sent', 'delivered', 'failed', 'read',
                                                   'cancelled', 'bundled')),
    due_at         timestamptz NOT NULL,           -- not before: quiet hours, back-off, the digest hour
    attempts       smallint NOT NULL DEFAULT 0,
    provider       text,
    provider_ref   text,
    error          text,
    bundled_into   bigint REFERENCES deliveries (id),
    sent_at        timestamptz,
    delivered_at   timestamptz,
    read_at        timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- The idempotency key: one delivery per notice, person and channel, however often it is asked for.
    UNIQUE (notice_id, resident_id, channel)
) WITH (fillfactor = 80);
CREATE INDEX deliveries_due ON deliveries (rank, due_at) WHERE status = 'queued';
CREATE INDEX deliveries_held ON deliveries (due_at) WHERE status = 'held';
CREATE INDEX deliveries_receipt ON deliveries (provider, provider_ref) WHERE provider_ref IS NOT NULL;
CREATE INDEX deliveries_inbox ON deliveries (resident_id, id) WHERE channel = 'inbox';

-- Receipts for messages not settled yet (a provider may answer faster than the sender commits).
CREATE TABLE early_receipts (
    provider     text NOT NULL,
    provider_ref text NOT NULL,
    status       text NOT NULL CHECK (status IN ('delivered', 'failed', 'read')),
    error        text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_ref, status)
);

CREATE TABLE broadcasts (
    id           bigserial PRIMARY KEY,
    request_id   text UNIQUE CHECK (length(request_id) BETWEEN 1 AND 100),
    -- Set when a directive from a superior level started it (the multi-level issue carries it down).
    directive_id text UNIQUE CHECK (length(directive_id) BETWEEN 1 AND 100),
    prefix       text NOT NULL CHECK (prefix ~ '^[0-9]{2,15}$'),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    message      text NOT NULL CHECK (length(message) BETWEEN 1 AND 1000),
    channels     text[] NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft', 'pending_approval', 'approved', 'rejected', 'sending',
                                                 'sent', 'cancelled')),
    version      integer NOT NULL DEFAULT 1,
    created_by   text NOT NULL,
    edited_by    text NOT NULL,                    -- who wrote the current version
    approved_by  text,
    reason       text,                             -- why it was rejected or cancelled
    notice_id    bigint REFERENCES notices (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every edit is kept: what was approved is the version named in broadcasts.version at approval.
CREATE TABLE broadcast_versions (
    broadcast_id bigint NOT NULL REFERENCES broadcasts (id),
    version      integer NOT NULL,
    prefix       text NOT NULL,
    title        text NOT NULL,
    message      text NOT NULL,
    channels     text[] NOT NULL,
    actor        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast_id, version)
);

-- Every move of a broadcast (submitted, approved, rejected, cancelled, sent) with who and why.
CREATE TABLE broadcast_log (
    broadcast_id bigint NOT NULL REFERENCES broadcasts (id),
    at           timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL,
    version      integer NOT NULL,
    actor        text NOT NULL,
    reason       text
);
CREATE INDEX broadcast_log_of ON broadcast_log (broadcast_id, at);

-- The templates the service's own triggers use; a street may add versions of them.
INSERT INTO templates (code, category) VALUES
    ('meeting_scheduled', 'meetings'), ('meeting_moved', 'meetings'), ('meeting_cancelled', 'meetings'),
    ('matter_status', 'matters'), ('points_posted', 'points'), ('points_redeemed', 'points'),
    ('organization_notice', 'organizations'), ('emergency', 'emergency'), ('notice', 'general'),
    ('digest', 'digest');
INSERT INTO template_versions (code, version, locale, subject, body, actor) VALUES
    ('meeting_scheduled', 1, 'zh', '议事会通知：{{ meeting.title }}',
     '{{ name }}您好，{{ meeting.title }}定于{{ meeting.starts_at }}在{{ meeting.place }}召开，请准时参加。', 'system'),
    ('meeting_scheduled', 1, 'en', 'Meeting: {{ meeting.title }}',
     'Dear {{ name }}, {{ meeting.title }} takes place at {{ meeting.place }} on {{ meeting.starts_at }}.', 'system'),
    ('meeting_moved', 1, 'zh', '议事会改期：{{ meeting.title }}',
     '{{ name }}您好，{{ meeting.title }}改为{{ meeting.starts_at }}在{{ meeting.place }}召开。', 'system'),
    ('meeting_moved', 1, 'en', 'Meeting moved: {{ meeting.title }}',
     'Dear {{ name }}, {{ meeting.title }} now takes place at {{ meeting.place }} on {{ meeting.starts_at }}.', 'system'),
    ('meeting_cancelled', 1, 'zh', '议事会取消：{{ meeting.title }}',
     '{{ name }}您好，原定{{ meeting.starts_at }}召开的{{ meeting.title }}已取消。', 'system'),
    ('matter_status', 1, 'zh', '您反映的“{{ matter.title }}”有新进展',
     '{{ name }}您好，您反映的“{{ matter.title }}”（编号{{ matter.id }}）当前状态：{{ matter.status_name }}。', 'system'),
    ('matter_status', 1, 'en', 'News on "{{ matter.title }}"',
     'Dear {{ name }}, the matter you raised (no. {{ matter.id }}) is now: {{ matter.status }}.', 'system'),
    ('points_posted', 1, 'zh', '服务积分到账 {{ points }} 分',
     '{{ name }}您好，您{{ served_on }}的服务（{{ hours }} 小时）已确认，获得 {{ points }} 分。', 'system'),
    ('points_redeemed', 1, 'zh', '积分兑换成功',
     '{{ name }}您好，您已用 {{ points }} 分兑换“{{ category }}”。', 'system'),
    ('organization_notice', 1, 'zh', '{{ organization }}通知',
     '{{ name }}您好，{{ organization }}通知：{{ notice }}', 'system'),
    ('emergency', 1, 'zh', '【应急通知】{{ area }}', '{{ message }}', 'system'),
    ('emergency', 1, 'en', '[Emergency] {{ area }}', '{{ message }}', 'system'),
    ('notice', 1, 'zh', '{{ title }}', '{{ name }}您好，{{ message }}', 'system'),
    ('digest', 1, 'zh', '今日社区消息（{{ items | length }} 条）',
     '{{ name }}您好，今日消息：{% for i in items %}{{ "\n" ~ loop.index }}. {{ i.subject }}{% endfor %}', 'system');

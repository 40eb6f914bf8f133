CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT,
    sent BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

-- The list, newest first, and the live channel's latest campaigns read
-- this index in order instead of sorting the table; the campaigns in
-- one status (sending, expanding) are found through the next one.
CREATE INDEX IF NOT EXISTS campaigns_by_created ON campaigns (created_at DESC, id);

CREATE INDEX IF NOT EXISTS campaigns_by_status ON campaigns (status, created_at);

CREATE TABLE IF NOT EXISTS outcomes (
    notification_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS campaign_dead_letters (
    campaign_id TEXT PRIMARY KEY,
    dead_lettered BIGINT NOT NULL
);

-- Of a campaign's recipients not sent (`campaigns.failed`), those
-- suppressed: apart, like the dead letters, so that `failed` keeps
-- its meaning in rows written before either existed.
CREATE TABLE IF NOT EXISTS campaign_suppressed (
    campaign_id TEXT PRIMARY KEY,
    suppressed BIGINT NOT NULL
);

-- Of a campaign's recipients not sent, those cancelled: each
-- notification settled `cancelled` (counted in `campaigns.failed`, as
-- the suppressed are), and apart, those never requested because the
-- campaign was cancelled before its expansion reached them (set once
-- by the expansion's last announcement, so not in `campaigns.failed`).
CREATE TABLE IF NOT EXISTS campaign_cancelled (
    campaign_id TEXT PRIMARY KEY,
    cancelled BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS campaign_not_expanded (
    campaign_id TEXT PRIMARY KEY,
    not_expanded BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS campaign_failures (
    notification_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    status TEXT NOT NULL,
    recipient TEXT,
    detail TEXT
);

CREATE INDEX IF NOT EXISTS campaign_failures_by_campaign ON campaign_failures (campaign_id, notification_id);

CREATE TABLE IF NOT EXISTS announcements (
    campaign_id TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL
);

-- The trace of a campaign created within a caller's trace; the others
-- are traced by their id.
CREATE TABLE IF NOT EXISTS campaign_traces (
    campaign_id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL
);

-- The Idempotency-Key of each campaign created with one (store::create):
-- a creation retried with the same key gets that campaign back.
CREATE TABLE IF NOT EXISTS campaign_idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL
);

-- When a scheduled campaign is to start (send_at), and when it did.
CREATE TABLE IF NOT EXISTS campaign_schedules (
    campaign_id TEXT PRIMARY KEY,
    send_at BIGINT NOT NULL,
    started_at BIGINT
);

-- The audience filter of each campaign created with one (the others go
-- to every user).
CREATE TABLE IF NOT EXISTS campaign_audiences (
    campaign_id TEXT PRIMARY KEY,
    filter TEXT NOT NULL
);

-- The campaign each resend goes back to: its recipients not reached.
CREATE TABLE IF NOT EXISTS campaign_resends (
    campaign_id TEXT PRIMARY KEY,
    resend_of TEXT NOT NULL
);

-- The HTML body of each campaign created with one (the others are text
-- only): a table of its own, so that an older database gains it at start.
CREATE TABLE IF NOT EXISTS campaign_html (
    campaign_id TEXT PRIMARY KEY,
    html TEXT NOT NULL
);

-- The send rate of each campaign created with one (emails a second): a
-- table of its own, for the same reason.
CREATE TABLE IF NOT EXISTS campaign_rates (
    campaign_id TEXT PRIMARY KEY,
    rate_per_s DOUBLE PRECISION NOT NULL
);

-- Transactional messages (routes/messages.rs): one email each, sent now,
-- settled by its outcome. `email` is the email.requested it publishes, to
-- publish again if its entry may have been lost (store::messages).
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    created_at BIGINT NOT NULL,
    announced_at BIGINT NOT NULL,
    settled_at BIGINT
);

CREATE INDEX IF NOT EXISTS messages_by_status ON messages (status, announced_at);

-- Each outcome a message's email had (a dead letter, then its replay's
-- real outcome), once each, with how many tries email-service made; `n`
-- numbers them in the order they came.
CREATE TABLE IF NOT EXISTS message_attempts (
    message_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    tries BIGINT,
    at BIGINT NOT NULL,
    PRIMARY KEY (message_id, outcome)
);

-- The hash of each message's address (contracts::consent::address_hash),
-- for erasing a user to find the messages sent to them
-- (store/message_erasure.rs). A table of its own, so that a database
-- made before it gains it as it starts.
CREATE TABLE IF NOT EXISTS message_recipients (
    message_id TEXT PRIMARY KEY,
    address_hash TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS message_recipients_by_address ON message_recipients (address_hash);

-- Stored message templates (routes/templates.rs): each change a new
-- version, a message naming one by name gets the latest (or the version
-- it asks for). `variables` is the JSON array of the names it declares.
CREATE TABLE IF NOT EXISTS message_templates (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    html TEXT,
    variables TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Webhook endpoints (webhooks/, routes/webhooks.rs): where events are
-- POSTed, signed with `secret`, and which kinds (`events`, a JSON array).
-- `failures` and `retry_at` space out the tries of an endpoint that fails.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    batch_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    retry_at BIGINT NOT NULL,
    last_success_at BIGINT,
    last_error TEXT,
    last_error_at BIGINT
);

-- Each event until its endpoint has it: deleted once delivered, kept with
-- `dead_at` once its tries ran out, until an operator replays it.
-- `recipient` and `detail` apart from `data`, for erasures.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    notification_id TEXT,
    recipient TEXT,
    detail TEXT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    dead_at BIGINT,
    PRIMARY KEY (endpoint_id, event_id)
);

CREATE INDEX IF NOT EXISTS webhook_deliveries_in_order ON webhook_deliveries (endpoint_id, next_at, event_id) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_notification ON webhook_deliveries (notification_id);

-- The campaigns whose end has been made an event, and when they ended:
-- the next round looks only at the campaigns that ended since (less a
-- margin), through campaigns_by_completion.
CREATE TABLE IF NOT EXISTS webhook_campaigns (
    campaign_id TEXT PRIMARY KEY,
    completed_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS campaigns_by_completion ON campaigns (completed_at);

-- The copy of the suppression list (servicekit::suppressed, as
-- email-service's): a message to an address on it is refused at the door.
CREATE TABLE IF NOT EXISTS suppressed_addresses (
    address_hash TEXT PRIMARY KEY,
    suppressed BIGINT NOT NULL,
    reason TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

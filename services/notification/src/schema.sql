CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    updated_at BIGINT NOT NULL
);

-- A campaign's counts per status read this index alone, not the table.
CREATE INDEX IF NOT EXISTS notifications_by_campaign ON notifications (campaign_id, status);

CREATE TABLE IF NOT EXISTS templates (
    campaign_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    body TEXT NOT NULL
);

-- The HTML body of each campaign that has one (store::templates): a
-- table of its own, so that an older database gains it at start.
CREATE TABLE IF NOT EXISTS templates_html (
    campaign_id TEXT PRIMARY KEY,
    html TEXT NOT NULL
);

-- The send rate of each campaign that has its own (emails a second), put
-- on each of its email requests: a table of its own, for the same reason.
CREATE TABLE IF NOT EXISTS templates_rate (
    campaign_id TEXT PRIMARY KEY,
    rate_per_s DOUBLE PRECISION NOT NULL
);

-- The campaigns with notifications held back by a pause (`held`), each
-- with a generation moved by every hold: the round that requests them
-- again (or cancels them) forgets a campaign only at the generation it
-- saw, so a hold racing with it is never forgotten.
CREATE TABLE IF NOT EXISTS held_campaigns (
    campaign_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);

-- Resends (crate::resend): each one's audience, fixed when it was
-- announced (the old notification of each recipient not reached: no
-- personal data of its own), and how far it has been published.
CREATE TABLE IF NOT EXISTS resends (
    campaign_id TEXT PRIMARY KEY,
    resend_of TEXT NOT NULL,
    total BIGINT NOT NULL,
    cursor BIGINT NOT NULL,
    published BIGINT NOT NULL,
    ended BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS resend_recipients (
    campaign_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    source_id TEXT NOT NULL,
    PRIMARY KEY (campaign_id, user_id)
);

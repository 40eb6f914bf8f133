-- The optional attributes (crate::profile) are added to a table made
-- before them by crate::store::migrate: keep the two lists alike.
CREATE TABLE IF NOT EXISTS users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT,
    locale TEXT,
    plan TEXT,
    signed_up_at BIGINT,
    attributes TEXT
);

-- A user's tags, a row each: `'beta' in tags` is an EXISTS on the key.
CREATE TABLE IF NOT EXISTS user_tags (
    user_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (user_id, tag)
);

CREATE TABLE IF NOT EXISTS expansions (
    campaign_id TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    total BIGINT,
    done BIGINT NOT NULL
);

-- How many notifications each expansion has published, page by page
-- (with its cursor): its campaign's total at the end, exactly what was
-- requested whatever changed in the users meanwhile.
CREATE TABLE IF NOT EXISTS expansion_progress (
    campaign_id TEXT PRIMARY KEY,
    published BIGINT NOT NULL
);

-- Of an expansion ended by its campaign's cancellation, the users of
-- its audience never requested.
CREATE TABLE IF NOT EXISTS expansion_cancellations (
    campaign_id TEXT PRIMARY KEY,
    not_expanded BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS expansion_leases (
    campaign_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);

-- The suppression list (crate::suppressions).
CREATE TABLE IF NOT EXISTS suppressions (
    address_hash TEXT PRIMARY KEY,
    address TEXT,
    user_id BIGINT,
    suppressed BIGINT NOT NULL,
    reason TEXT NOT NULL,
    campaign_id TEXT,
    detail TEXT,
    changed_at BIGINT NOT NULL
);

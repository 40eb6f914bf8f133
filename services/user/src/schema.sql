CREATE TABLE IF NOT EXISTS users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS expansions (
    campaign_id TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    total BIGINT,
    done BIGINT NOT NULL
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

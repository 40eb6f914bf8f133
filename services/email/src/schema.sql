CREATE TABLE IF NOT EXISTS send_ledger (
    notification_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    detail TEXT
);

-- The copy of the suppression list (servicekit::suppressed).
CREATE TABLE IF NOT EXISTS suppressed_addresses (
    address_hash TEXT PRIMARY KEY,
    suppressed BIGINT NOT NULL,
    reason TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

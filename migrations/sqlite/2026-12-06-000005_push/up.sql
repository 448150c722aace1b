-- Push of the change feed to the product's URLs (Standard Webhooks), outside every ingest
-- transaction: each configured endpoint follows the feed from where it was first configured;
-- each change it must receive is one delivery, and each try of a delivery one attempt row.

-- One row per configured URL. `id` is derived from the whole URL; `display` drops what may
-- hold a credential (user info, query), so it can be listed and logged.
CREATE TABLE push_endpoints (
    id          TEXT PRIMARY KEY CHECK (length(id) <= 64),
    display     TEXT NOT NULL CHECK (length(display) <= 2048),
    -- The feed position it starts after: the newest record when it was first configured.
    start_after BIGINT NOT NULL CHECK (start_after >= 0),
    created_at  TEXT NOT NULL
);

-- One row per (endpoint, change record): its state and when it is next tried.
CREATE TABLE push_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT NOT NULL REFERENCES push_endpoints (id) ON DELETE CASCADE,
    change_seq      BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Every attempt made, and the failed ones since the last success or replay (they set the
    -- backoff and when to give up).
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (endpoint_id, change_seq),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The pusher's "what is due" read.
CREATE INDEX push_deliveries_due ON push_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
-- billingctl's listing by status.
CREATE INDEX push_deliveries_status ON push_deliveries (status, id);

-- One row per HTTP attempt.
CREATE TABLE push_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES push_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    started_at  TEXT NOT NULL,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    -- The product's HTTP status, when it answered.
    status_code INTEGER,
    -- Why it failed (no answer, a timeout, a non-2xx status), without the response body.
    error       TEXT CHECK (length(error) <= 1024),
    outcome     TEXT NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed'))
);
CREATE INDEX push_attempts_delivery ON push_attempts (delivery_id, id);

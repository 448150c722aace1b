-- API keys for /v1 created by `billingctl keys create`, besides the bootstrap keys of
-- BILLING_API_KEYS. Only the key's SHA-256 is stored (hex), with a short non-secret prefix
-- to recognise it; a revoked key keeps its row (and its name) with the time it was revoked.
CREATE TABLE api_keys (
    name       TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

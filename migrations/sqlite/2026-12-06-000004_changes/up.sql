-- The change feed's transactional outbox: one row per change of a user's access, written in
-- the transaction of the event (or the grace-period job) that caused it.
--
-- SQLite runs one writing transaction at a time, so a row's `seq` (the feed's cursor) is
-- assigned at insert, one past the highest: insert order is commit order. (Postgres numbers
-- rows after their commit instead; see its migration.)
CREATE TABLE changes (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    seq                 BIGINT UNIQUE,
    change_id           TEXT NOT NULL UNIQUE CHECK (length(change_id) <= 64),
    user_id             TEXT NOT NULL CHECK (length(user_id) <= 255),
    customer_id         TEXT CHECK (length(customer_id) <= 255),
    kind                TEXT NOT NULL CHECK (kind IN ('tier_changed', 'status_changed',
                            'grace_started', 'grace_ended', 'credits_granted', 'payment_failed',
                            'payment_succeeded', 'refund', 'dispute')),
    before_tier         TEXT NOT NULL,
    before_status       TEXT,
    before_reason       TEXT NOT NULL,
    before_grace_end    TEXT,
    before_credits      BIGINT NOT NULL,
    after_tier          TEXT NOT NULL,
    after_status        TEXT,
    after_reason        TEXT NOT NULL,
    after_grace_end     TEXT,
    after_credits       BIGINT NOT NULL,
    amount_minor        BIGINT,
    currency            TEXT CHECK (length(currency) <= 16),
    stripe_event_id     TEXT CHECK (length(stripe_event_id) <= 255),
    dedupe_key          TEXT UNIQUE CHECK (length(dedupe_key) <= 600),
    created_at          TEXT NOT NULL,
    CHECK ((amount_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX changes_user_kind ON changes (user_id, kind);

-- The change feed's transactional outbox: one row per change of a user's access, written in
-- the transaction of the event (or the grace-period job) that caused it.
--
-- `id` is drawn at insert time, `seq` (the feed's cursor) is assigned later, in commit order:
-- a bigserial alone is not commit order (a transaction that drew id 9 may commit after one
-- that drew id 10, and a reader past 10 would skip 9). Rows are written with `seq` NULL; a
-- reader first numbers every committed row still NULL, under one transaction-scoped advisory
-- lock, continuing from the highest `seq`, in `id` order. Rows committed later get larger
-- numbers than everything already numbered, so a cursor never passes a row it has not seen.
-- Two rows of one user are written under that user's `feed:` lock, so their ids, and their
-- numbers, follow their commit order.
CREATE TABLE changes (
    id                  BIGSERIAL PRIMARY KEY,
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
    before_grace_end    TIMESTAMPTZ,
    before_credits      BIGINT NOT NULL,
    after_tier          TEXT NOT NULL,
    after_status        TEXT,
    after_reason        TEXT NOT NULL,
    after_grace_end     TIMESTAMPTZ,
    after_credits       BIGINT NOT NULL,
    amount_minor        BIGINT,
    currency            TEXT CHECK (length(currency) <= 16),
    stripe_event_id     TEXT CHECK (length(stripe_event_id) <= 255),
    dedupe_key          TEXT UNIQUE CHECK (length(dedupe_key) <= 600),
    created_at          TIMESTAMPTZ NOT NULL,
    CHECK ((amount_minor IS NULL) = (currency IS NULL))
);
-- The rows still to number.
CREATE INDEX changes_unnumbered ON changes (id) WHERE seq IS NULL;
-- The grace-period job's "already recorded?" check.
CREATE INDEX changes_user_kind ON changes (user_id, kind);

-- The reconciliation cursor: how far the catch-up from Stripe's Events API has applied.
-- One row per cursor, by name (today only 'events').
CREATE TABLE reconcile_cursors (
    name               TEXT PRIMARY KEY,
    event_id           TEXT CHECK (length(event_id) <= 255),
    event_created      TIMESTAMPTZ,
    last_success_at    TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL,
    CHECK ((event_id IS NULL) = (event_created IS NULL))
);

-- The reconciliation cursor: how far the catch-up from Stripe's Events API has applied.
-- One row per cursor, by name (today only 'events').
CREATE TABLE reconcile_cursors (
    name               TEXT PRIMARY KEY NOT NULL,
    event_id           TEXT CHECK (length(event_id) <= 255),
    event_created      TEXT,
    last_success_at    TEXT,
    updated_at         TEXT NOT NULL,
    CHECK ((event_id IS NULL) = (event_created IS NULL))
);

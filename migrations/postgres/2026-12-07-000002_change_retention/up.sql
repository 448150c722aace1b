-- The change feed's retention (CHANGE_RETENTION_DAYS): records are deleted oldest first, and
-- the horizon says through which position they may be gone. Every record after it is kept;
-- a reader whose cursor is before it may have lost records and is told so (410
-- cursor_expired). It is moved before the records are deleted, so no reader ever misses a
-- record without being told.
CREATE TABLE change_horizon (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through BIGINT NOT NULL CHECK (purged_through >= 0)
);
INSERT INTO change_horizon (id, purged_through) VALUES (1, 0);

-- The purge keeps the records of deliveries not yet succeeded and deletes the succeeded
-- deliveries of purged positions: both find deliveries by position.
CREATE INDEX push_deliveries_change ON push_deliveries (change_seq);

-- The tables and indexes of the Postgres migration of the same name, which says why.
CREATE TABLE change_horizon (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through BIGINT NOT NULL CHECK (purged_through >= 0)
);
INSERT INTO change_horizon (id, purged_through) VALUES (1, 0);
CREATE INDEX push_deliveries_change ON push_deliveries (change_seq);

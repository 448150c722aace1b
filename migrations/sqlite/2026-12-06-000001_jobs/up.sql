-- Failed events say whether they may be retried automatically and when (the sweeper), and
-- background jobs run on one replica at a time under a lease row.

-- permanent: the payload can never apply as sent (a value refused, an object that cannot be
-- read); transient: anything else, retried by the sweeper with backoff.
ALTER TABLE stripe_events ADD COLUMN failure_kind TEXT
    CHECK (failure_kind IN ('transient', 'permanent'));
-- when the sweeper may next re-apply a transient failure
ALTER TABLE stripe_events ADD COLUMN next_attempt_at TEXT;
-- Failures recorded before this migration: their kind is unknown, so the sweeper tries them.
UPDATE stripe_events SET failure_kind = 'transient', next_attempt_at = received_at
    WHERE status = 'failed';
CREATE INDEX stripe_events_retry ON stripe_events (next_attempt_at) WHERE status = 'failed';

CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY,                 -- the job's name (retention, sweeper, …)
    holder      TEXT NOT NULL,                    -- the process that took it last
    taken_at    TEXT NOT NULL,
    expires_at  TEXT NOT NULL,                    -- free for another holder from then on
    next_run_at TEXT NOT NULL,                    -- the job's next run is due then
    runs        BIGINT NOT NULL CHECK (runs >= 0) -- how many times the lease was taken
);

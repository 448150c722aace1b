DROP TABLE job_leases;
DROP INDEX stripe_events_retry;
ALTER TABLE stripe_events DROP COLUMN next_attempt_at;
ALTER TABLE stripe_events DROP COLUMN failure_kind;

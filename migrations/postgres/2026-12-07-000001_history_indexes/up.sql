-- Indexes for statements that scanned a whole table, found by running the server with
-- auto_explain against a database holding 200 000 to 400 000 rows per table
-- (docs/benchmarks.md, "Statements that read a whole table"). Each cost grew with history.

-- A customer linked to a user gives it the rows stored before the link
-- (`attribute_customer_rows`: `UPDATE payments SET user_id … WHERE stripe_customer_id = $1
-- AND user_id IS NULL`, inside an ingest transaction). payments had no index to find them:
-- 71 ms a statement at 400 000 payments, under the customer's lock. Only rows not yet given a
-- user are indexed, so the index stays small and most payment writes do not touch it.
CREATE INDEX IF NOT EXISTS payments_unattributed ON payments (stripe_customer_id) WHERE user_id IS NULL;
-- The same for orders: orders_user finds the NULL user rows, then every unattributed order
-- of every customer is read; this finds the customer's alone.
CREATE INDEX IF NOT EXISTS orders_unattributed ON orders (stripe_customer_id) WHERE user_id IS NULL;

-- The grace-period job (every minute): past-due subscriptions whose grace period ended.
-- 44 ms a run at 200 000 subscriptions, a full scan.
CREATE INDEX IF NOT EXISTS subscriptions_grace_ended ON subscriptions (status, grace_period_end);

-- The indexes of the Postgres migration of the same name, which says why: statements that
-- read a whole table, at a cost that grew with history.
CREATE INDEX IF NOT EXISTS payments_unattributed ON payments (stripe_customer_id) WHERE user_id IS NULL;
CREATE INDEX IF NOT EXISTS orders_unattributed ON orders (stripe_customer_id) WHERE user_id IS NULL;
CREATE INDEX IF NOT EXISTS subscriptions_grace_ended ON subscriptions (status, grace_period_end);

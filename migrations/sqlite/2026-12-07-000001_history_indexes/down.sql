DROP INDEX IF EXISTS subscriptions_grace_ended;
DROP INDEX IF EXISTS orders_unattributed;
DROP INDEX IF EXISTS payments_unattributed;

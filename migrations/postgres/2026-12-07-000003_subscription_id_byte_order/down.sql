ALTER TABLE subscriptions ALTER COLUMN stripe_subscription_id TYPE TEXT COLLATE "default";

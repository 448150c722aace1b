UPDATE orders SET dispute_status = 'won' WHERE dispute_status = 'closed_without_chargeback';
ALTER TABLE orders DROP CONSTRAINT orders_dispute_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_dispute_status_check
    CHECK (dispute_status IN ('none', 'open', 'won', 'lost'));

DELETE FROM payments WHERE payment_intent_id IS NULL;
UPDATE payments SET dispute_status = 'won' WHERE dispute_status = 'closed_without_chargeback';
ALTER TABLE payments DROP CONSTRAINT payments_dispute_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_dispute_status_check
    CHECK (dispute_status IN ('none', 'open', 'won', 'lost'));
ALTER TABLE payments DROP CONSTRAINT payments_key_is_an_id;
ALTER TABLE payments DROP CONSTRAINT payments_identified;
ALTER TABLE payments DROP COLUMN dispute_stripe_status, DROP COLUMN status_at, DROP COLUMN charge_id;
ALTER TABLE payments DROP CONSTRAINT payments_payment_intent_id_key;
ALTER TABLE payments DROP CONSTRAINT payments_pkey;
ALTER TABLE payments DROP COLUMN payment_key;
ALTER TABLE payments ADD PRIMARY KEY (payment_intent_id);

ALTER TABLE subscriptions DROP COLUMN status_event_id, DROP COLUMN status_event_rank,
    DROP COLUMN status_event_created, DROP COLUMN item_price_ids;
ALTER TABLE subscriptions RENAME COLUMN snapshot_event_id TO last_event_id;
ALTER TABLE subscriptions RENAME COLUMN snapshot_event_rank TO last_event_rank;
ALTER TABLE subscriptions RENAME COLUMN snapshot_event_created TO last_event_created;

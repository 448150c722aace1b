-- Ordering redone: a subscription's own snapshots and the statuses inferred from its invoices
-- are ordered apart. Payments may be known by their charge alone (Charges API), and a
-- dispute keeps Stripe's status beside the outcome derived from it.

-- Subscriptions: the position of the last applied snapshot (the authority for price, items,
-- period, cancellation and trial) and, apart from it, the position of whatever last set the
-- status (that snapshot, or an invoice-derived inference).
ALTER TABLE subscriptions RENAME COLUMN last_event_created TO snapshot_event_created;
ALTER TABLE subscriptions RENAME COLUMN last_event_rank TO snapshot_event_rank;
ALTER TABLE subscriptions RENAME COLUMN last_event_id TO snapshot_event_id;
ALTER TABLE subscriptions
    ADD COLUMN item_price_ids       TEXT,                  -- JSON array: every item's price, in item order
    ADD COLUMN status_event_created TIMESTAMPTZ,
    ADD COLUMN status_event_rank    SMALLINT CHECK (status_event_rank >= 0),
    ADD COLUMN status_event_id      TEXT;
UPDATE subscriptions SET
    item_price_ids = CASE WHEN price_id IS NULL THEN '[]' ELSE json_build_array(price_id)::text END,
    status_event_created = snapshot_event_created,
    status_event_rank = snapshot_event_rank,
    status_event_id = snapshot_event_id;
ALTER TABLE subscriptions
    ALTER COLUMN item_price_ids SET NOT NULL,
    ALTER COLUMN status_event_created SET NOT NULL,
    ALTER COLUMN status_event_rank SET NOT NULL,
    ALTER COLUMN status_event_id SET NOT NULL;

-- Payments: keyed by the payment intent, or by the charge when there is none.
ALTER TABLE payments DROP CONSTRAINT payments_pkey;
ALTER TABLE payments ADD COLUMN payment_key TEXT;
UPDATE payments SET payment_key = payment_intent_id;
ALTER TABLE payments ALTER COLUMN payment_key SET NOT NULL;
ALTER TABLE payments ADD PRIMARY KEY (payment_key);
ALTER TABLE payments ALTER COLUMN payment_intent_id DROP NOT NULL;
ALTER TABLE payments ADD CONSTRAINT payments_payment_intent_id_key UNIQUE (payment_intent_id);
ALTER TABLE payments
    ADD COLUMN charge_id             TEXT UNIQUE,          -- ch_… (latest charge, or the charge alone)
    ADD COLUMN status_at             TIMESTAMPTZ,          -- `created` of the event that set the status
    ADD COLUMN dispute_stripe_status TEXT CHECK (dispute_stripe_status <> ''),
    ADD CONSTRAINT payments_identified CHECK (payment_intent_id IS NOT NULL OR charge_id IS NOT NULL),
    ADD CONSTRAINT payments_key_is_an_id CHECK (payment_key = payment_intent_id OR payment_key = charge_id);
ALTER TABLE payments DROP CONSTRAINT payments_dispute_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_dispute_status_check
    CHECK (dispute_status IN ('none', 'open', 'won', 'lost', 'closed_without_chargeback'));
ALTER TABLE orders DROP CONSTRAINT orders_dispute_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_dispute_status_check
    CHECK (dispute_status IN ('none', 'open', 'won', 'lost', 'closed_without_chargeback'));

-- Ordering redone: a subscription's own snapshots and the statuses inferred from its invoices
-- are ordered apart. Payments may be known by their charge alone (Charges API), and a
-- dispute keeps Stripe's status beside the outcome derived from it.
-- SQLite cannot change a column's constraints in place: the three tables are rebuilt.

CREATE TABLE subscriptions_next (
    stripe_subscription_id TEXT PRIMARY KEY,               -- sub_…
    stripe_customer_id     TEXT NOT NULL REFERENCES customers (stripe_customer_id),
    price_id               TEXT,                           -- the item price deciding the tier
    item_price_ids         TEXT NOT NULL,                  -- JSON array: every item's price, in item order
    tier                   TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status <> ''),
    current_period_start   TEXT,
    current_period_end     TEXT,
    cancel_at_period_end   BOOLEAN NOT NULL,
    canceled_at            TEXT,
    trial_end              TEXT,
    grace_period_end       TEXT,
    dunning_invoice_id     TEXT,
    snapshot_event_created TEXT NOT NULL,                  -- position of the last applied snapshot
    snapshot_event_rank    INTEGER NOT NULL CHECK (snapshot_event_rank >= 0),
    snapshot_event_id      TEXT NOT NULL,
    status_event_created   TEXT NOT NULL,                  -- position of what last set the status
    status_event_rank      INTEGER NOT NULL CHECK (status_event_rank >= 0),
    status_event_id        TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
INSERT INTO subscriptions_next
SELECT stripe_subscription_id, stripe_customer_id, price_id,
       CASE WHEN price_id IS NULL THEN '[]' ELSE json_array(price_id) END,
       tier, status, current_period_start, current_period_end, cancel_at_period_end,
       canceled_at, trial_end, grace_period_end, dunning_invoice_id,
       last_event_created, last_event_rank, last_event_id,
       last_event_created, last_event_rank, last_event_id, updated_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_next RENAME TO subscriptions;
CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);

CREATE TABLE payments_next (
    payment_key           TEXT PRIMARY KEY,                -- the payment intent id, else the charge id
    payment_intent_id     TEXT UNIQUE,                     -- pi_…
    charge_id             TEXT UNIQUE,                     -- ch_… (latest charge, or the charge alone)
    stripe_customer_id    TEXT,
    user_id               TEXT,
    amount_minor          BIGINT NOT NULL,
    currency              TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status                TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'processing', 'requires_action', 'requires_capture', 'canceled')),
    status_at             TEXT,                            -- `created` of the event that set the status
    last_error            TEXT,
    amount_refunded       BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    dispute_status        TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost', 'closed_without_chargeback')),
    dispute_stripe_status TEXT CHECK (dispute_stripe_status <> ''),
    updated_at            TEXT NOT NULL,
    CHECK (payment_intent_id IS NOT NULL OR charge_id IS NOT NULL),
    CHECK (payment_key = payment_intent_id OR payment_key = charge_id)
);
INSERT INTO payments_next (payment_key, payment_intent_id, stripe_customer_id, user_id,
    amount_minor, currency, status, last_error, amount_refunded, dispute_status, updated_at)
SELECT payment_intent_id, payment_intent_id, stripe_customer_id, user_id, amount_minor,
       currency, status, last_error, amount_refunded, dispute_status, updated_at
FROM payments;
DROP TABLE payments;
ALTER TABLE payments_next RENAME TO payments;

CREATE TABLE orders_next (
    checkout_session_id TEXT PRIMARY KEY,                  -- cs_…
    payment_intent_id   TEXT UNIQUE,
    stripe_customer_id  TEXT,
    user_id             TEXT,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status              TEXT NOT NULL CHECK (status IN ('paid', 'unpaid', 'no_payment_required')),
    refund_status       TEXT NOT NULL DEFAULT 'none' CHECK (refund_status IN ('none', 'partial', 'full')),
    amount_refunded     BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_minor),
    dispute_status      TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost', 'closed_without_chargeback')),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((refund_status = 'none') = (amount_refunded = 0)),
    CHECK ((refund_status = 'full') = (amount_refunded = amount_minor AND amount_minor > 0))
);
INSERT INTO orders_next SELECT * FROM orders;
DROP TABLE orders;
ALTER TABLE orders_next RENAME TO orders;
CREATE INDEX orders_user ON orders (user_id);

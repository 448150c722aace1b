CREATE TABLE orders_prev (
    checkout_session_id TEXT PRIMARY KEY,
    payment_intent_id   TEXT UNIQUE,
    stripe_customer_id  TEXT,
    user_id             TEXT,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status              TEXT NOT NULL CHECK (status IN ('paid', 'unpaid', 'no_payment_required')),
    refund_status       TEXT NOT NULL DEFAULT 'none' CHECK (refund_status IN ('none', 'partial', 'full')),
    amount_refunded     BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_minor),
    dispute_status      TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost')),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((refund_status = 'none') = (amount_refunded = 0)),
    CHECK ((refund_status = 'full') = (amount_refunded = amount_minor AND amount_minor > 0))
);
INSERT INTO orders_prev SELECT checkout_session_id, payment_intent_id, stripe_customer_id,
    user_id, amount_minor, currency, status, refund_status, amount_refunded,
    CASE dispute_status WHEN 'closed_without_chargeback' THEN 'won' ELSE dispute_status END,
    created_at, updated_at FROM orders;
DROP TABLE orders;
ALTER TABLE orders_prev RENAME TO orders;
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE payments_prev (
    payment_intent_id  TEXT PRIMARY KEY,
    stripe_customer_id TEXT,
    user_id            TEXT,
    amount_minor       BIGINT NOT NULL,
    currency           TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status             TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'processing', 'requires_action', 'requires_capture', 'canceled')),
    last_error         TEXT,
    amount_refunded    BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    dispute_status     TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost')),
    updated_at         TEXT NOT NULL
);
INSERT INTO payments_prev SELECT payment_intent_id, stripe_customer_id, user_id, amount_minor,
    currency, status, last_error, amount_refunded,
    CASE dispute_status WHEN 'closed_without_chargeback' THEN 'won' ELSE dispute_status END,
    updated_at FROM payments WHERE payment_intent_id IS NOT NULL;
DROP TABLE payments;
ALTER TABLE payments_prev RENAME TO payments;

CREATE TABLE subscriptions_prev (
    stripe_subscription_id TEXT PRIMARY KEY,
    stripe_customer_id     TEXT NOT NULL REFERENCES customers (stripe_customer_id),
    price_id               TEXT,
    tier                   TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status <> ''),
    current_period_start   TEXT,
    current_period_end     TEXT,
    cancel_at_period_end   BOOLEAN NOT NULL,
    canceled_at            TEXT,
    trial_end              TEXT,
    grace_period_end       TEXT,
    dunning_invoice_id     TEXT,
    last_event_created     TEXT NOT NULL,
    last_event_rank        INTEGER NOT NULL CHECK (last_event_rank >= 0),
    last_event_id          TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
INSERT INTO subscriptions_prev SELECT stripe_subscription_id, stripe_customer_id, price_id, tier,
    status, current_period_start, current_period_end, cancel_at_period_end, canceled_at,
    trial_end, grace_period_end, dunning_invoice_id, snapshot_event_created,
    snapshot_event_rank, snapshot_event_id, updated_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_prev RENAME TO subscriptions;
CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);

-- The billing state. Constraints hold the invariants; application code only relies on them.

CREATE TABLE stripe_events (
    id            TEXT PRIMARY KEY,                        -- Stripe event id (evt_…)
    event_type    TEXT NOT NULL,
    api_version   TEXT,
    livemode      BOOLEAN NOT NULL,
    created       TIMESTAMPTZ NOT NULL,                    -- Stripe's `created`
    payload       TEXT NOT NULL,                           -- the verified raw body
    status        TEXT NOT NULL CHECK (status IN ('received', 'processed', 'failed', 'ignored', 'stale')),
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    received_at   TIMESTAMPTZ NOT NULL,
    processed_at  TIMESTAMPTZ,
    CHECK ((status IN ('processed', 'ignored', 'stale')) = (processed_at IS NOT NULL))
);
CREATE INDEX stripe_events_status_received ON stripe_events (status, received_at);

CREATE TABLE customers (
    stripe_customer_id TEXT PRIMARY KEY,                   -- cus_…
    user_id            TEXT UNIQUE,                        -- NULL until the link is known
    email              TEXT,
    deleted            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscriptions (
    stripe_subscription_id TEXT PRIMARY KEY,               -- sub_…
    stripe_customer_id     TEXT NOT NULL REFERENCES customers (stripe_customer_id),
    price_id               TEXT,
    tier                   TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status <> ''),  -- Stripe's status, future ones included
    current_period_start   TIMESTAMPTZ,
    current_period_end     TIMESTAMPTZ,
    cancel_at_period_end   BOOLEAN NOT NULL,
    canceled_at            TIMESTAMPTZ,
    trial_end              TIMESTAMPTZ,
    grace_period_end       TIMESTAMPTZ,
    dunning_invoice_id     TEXT,
    last_event_created     TIMESTAMPTZ NOT NULL,            -- ordering position of the last applied event
    last_event_rank        SMALLINT NOT NULL CHECK (last_event_rank >= 0),
    last_event_id          TEXT NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);

CREATE TABLE payments (
    payment_intent_id  TEXT PRIMARY KEY,                   -- pi_…
    stripe_customer_id TEXT,
    user_id            TEXT,
    amount_minor       BIGINT NOT NULL,
    currency           TEXT NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status             TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'processing', 'requires_action', 'requires_capture', 'canceled')),
    last_error         TEXT,
    amount_refunded    BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    dispute_status     TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost')),
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE orders (
    checkout_session_id TEXT PRIMARY KEY,                  -- cs_…
    payment_intent_id   TEXT UNIQUE,
    stripe_customer_id  TEXT,
    user_id             TEXT,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency            TEXT NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status              TEXT NOT NULL CHECK (status IN ('paid', 'unpaid', 'no_payment_required')),
    refund_status       TEXT NOT NULL DEFAULT 'none' CHECK (refund_status IN ('none', 'partial', 'full')),
    amount_refunded     BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_minor),
    dispute_status      TEXT NOT NULL DEFAULT 'none' CHECK (dispute_status IN ('none', 'open', 'won', 'lost')),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    CHECK ((refund_status = 'none') = (amount_refunded = 0)),
    CHECK ((refund_status = 'full') = (amount_refunded = amount_minor AND amount_minor > 0))
);
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE credit_ledger (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            TEXT,
    stripe_customer_id TEXT,
    amount             BIGINT NOT NULL CHECK (amount <> 0),
    reason             TEXT NOT NULL CHECK (reason IN ('subscription_period', 'usage', 'adjustment', 'refund')),
    source_key         TEXT NOT NULL UNIQUE,               -- a grant can exist at most once
    created_at         TIMESTAMPTZ NOT NULL,
    CHECK (user_id IS NOT NULL OR stripe_customer_id IS NOT NULL)
);
CREATE INDEX credit_ledger_user ON credit_ledger (user_id);
CREATE INDEX credit_ledger_customer ON credit_ledger (stripe_customer_id);

CREATE TABLE usage_counters (
    user_id      TEXT NOT NULL,
    metric       TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    used         BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, metric, period_start)
);

CREATE TABLE usage (
    id              BIGSERIAL PRIMARY KEY,
    user_id         TEXT NOT NULL,
    metric          TEXT NOT NULL,
    period_start    TIMESTAMPTZ NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity >= 0),
    idempotency_key TEXT NOT NULL,
    allowed         BOOLEAN NOT NULL,
    used_after      BIGINT NOT NULL CHECK (used_after >= 0),
    limit_value     BIGINT CHECK (limit_value >= 0),       -- NULL when unlimited
    recorded_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

CREATE TABLE stripe_requests (
    id                 BIGSERIAL PRIMARY KEY,
    operation          TEXT NOT NULL,
    stable_id          TEXT NOT NULL,
    idempotency_key    TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) <= 255),
    fingerprint        TEXT NOT NULL,
    stripe_id          TEXT,
    response           TEXT,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    last_error         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (operation, stable_id),
    CHECK ((status = 'succeeded') = (stripe_id IS NOT NULL))
);

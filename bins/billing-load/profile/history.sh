#!/usr/bin/env bash
# Ingest with history: `just bench-ingest`'s load against a database that already holds
# HISTORY stored events (default 1 000 000; PURGEABLE of them, default 200 000, older than the
# 30-day retention, so the server's purge at start-up deletes them while the load runs), and
# the rows such a history leaves: CUSTOMERS past customers (default 200 000), each with a user,
# a subscription, two payments, an order, two credits and a change record.
# Usage: history.sh [billing-load ARGS…]; needs the release binaries
# (cargo build --release -p billing-server -p billing-load). BENCH_POSTGRES as for bench-ingest.
set -euo pipefail
history="${HISTORY:-1000000}"
purgeable="${PURGEABLE:-200000}"
customers="${CUSTOMERS:-200000}"
source "$(dirname "$0")/bench-server.sh"
bench_start_server # applies the migrations
bench_stop_server
echo "storing $history events of history ($purgeable past the retention)…" >&2
# Payloads of ~1.3 KB of hex (md5 chains: not compressible to nothing), Stripe-shaped ids.
psql "$base/$db" -q <<SQL
INSERT INTO stripe_events (id, event_type, api_version, livemode, created, payload, status,
                           attempts, received_at, processed_at)
SELECT 'evt_1H' || substr(md5(i::text), 1, 22),
       (ARRAY['invoice.paid', 'customer.subscription.updated', 'charge.succeeded',
              'payment_intent.succeeded', 'customer.created'])[1 + i % 5],
       '2024-06-20', false, t, '{"id":"evt_1H' || substr(md5(i::text), 1, 22) || '","data":"'
           || (SELECT string_agg(md5((i * 40 + k)::text), '') FROM generate_series(1, 40) k) || '"}',
       'processed', 0, t, t
FROM generate_series(1, $history) i,
     LATERAL (SELECT now() - CASE WHEN i <= $purgeable THEN interval '40 days'
                                  ELSE interval '29 days' * (i::float / $history) END AS t) times;
INSERT INTO customers (stripe_customer_id, user_id, created_at, updated_at)
SELECT 'cus_' || substr(md5('c' || g), 1, 14), 'user_' || substr(md5('u' || g), 1, 12),
       now() - interval '200 days', now() - interval '200 days'
FROM generate_series(1, $customers) g;
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, price_id, tier, status,
    cancel_at_period_end, snapshot_event_created, snapshot_event_rank, snapshot_event_id,
    updated_at, item_price_ids, status_event_created, status_event_rank, status_event_id)
SELECT 'sub_1H' || substr(md5('s' || g), 1, 22), 'cus_' || substr(md5('c' || g), 1, 14),
       'price_1HpRoMonthly', 'PRO', (ARRAY['active', 'canceled', 'past_due'])[1 + g % 3], false,
       now() - interval '100 days', 0, 'evt_1H' || substr(md5('e' || g), 1, 22),
       now() - interval '100 days', '["price_1HpRoMonthly"]', now() - interval '100 days', 0,
       'evt_1H' || substr(md5('e' || g), 1, 22)
FROM generate_series(1, $customers) g;
INSERT INTO payments (payment_key, payment_intent_id, charge_id, stripe_customer_id, user_id,
    amount_minor, currency, status, updated_at)
SELECT 'pi_3H' || substr(md5('p' || g), 1, 22), 'pi_3H' || substr(md5('p' || g), 1, 22),
       'ch_3H' || substr(md5('h' || g), 1, 22), 'cus_' || substr(md5('c' || (g / 2 + 1)), 1, 14),
       'user_' || substr(md5('u' || (g / 2 + 1)), 1, 12), 2900, 'usd', 'succeeded', now()
FROM generate_series(1, $customers * 2) g;
INSERT INTO orders (checkout_session_id, payment_intent_id, stripe_customer_id, user_id,
    amount_minor, currency, status, created_at, updated_at)
SELECT 'cs_live_' || substr(md5('o' || g), 1, 24), 'pi_3H' || substr(md5('q' || g), 1, 22),
       'cus_' || substr(md5('c' || g), 1, 14), 'user_' || substr(md5('u' || g), 1, 12), 2900,
       'usd', 'paid', now(), now()
FROM generate_series(1, $customers) g;
INSERT INTO credit_ledger (user_id, stripe_customer_id, amount, reason, source_key, created_at)
SELECT 'user_' || substr(md5('u' || (g / 2 + 1)), 1, 12),
       'cus_' || substr(md5('c' || (g / 2 + 1)), 1, 14), 100, 'subscription_period',
       'invoice:in_1H' || substr(md5('i' || g), 1, 22), now()
FROM generate_series(1, $customers * 2) g;
INSERT INTO changes (seq, change_id, user_id, customer_id, kind, before_tier, before_reason,
    before_credits, after_tier, after_status, after_reason, after_credits, created_at)
SELECT g, 'chg_' || substr(md5('g' || g), 1, 24), 'user_' || substr(md5('u' || g), 1, 12),
       'cus_' || substr(md5('c' || g), 1, 14), 'tier_changed', 'FREE', 'none', 0, 'PRO',
       'active', 'subscription', 0, now() - interval '100 days'
FROM generate_series(1, $customers) g;
ANALYZE;
-- The first start ran the retention job on the empty database and scheduled its next run an
-- hour later (job_leases.next_run_at): make it due, so the restarted server purges during the load.
UPDATE job_leases SET next_run_at = now() WHERE job = 'retention';
SQL
psql "$base/$db" -Atc "SELECT count(*), pg_size_pretty(pg_total_relation_size('stripe_events')) FROM stripe_events" >&2
bench_start_server # purges at start-up, while the load below runs
STRIPE_WEBHOOK_SECRET="$secret" "$bin/billing-load" --url "$url" \
    --server-pid "$pid" --postgres-cpu --database-url "$base/$db" --pgbench "$@"
echo "events left past the retention: $(psql "$base/$db" -Atc "SELECT count(*) FROM stripe_events WHERE received_at < now() - interval '30 days'")" >&2
grep -h 'done events purged' "$dir/server.log" | tail -3 >&2 || true

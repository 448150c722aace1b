#!/usr/bin/env bash
# Ingest with history: `just bench-ingest`'s load against a database that already holds
# HISTORY stored events (default 1 000 000; PURGEABLE of them, default 200 000, older than the
# 30-day retention, so the server's purge at start-up deletes them while the load runs).
# Usage: history.sh [billing-load ARGS…]; needs the release binaries
# (cargo build --release -p billing-server -p billing-load). BENCH_POSTGRES as for bench-ingest.
set -euo pipefail
history="${HISTORY:-1000000}"
purgeable="${PURGEABLE:-200000}"
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
ANALYZE stripe_events;
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

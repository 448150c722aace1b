#!/usr/bin/env bash
# The gate under load (`just bench-gate`): the release server on a fresh Postgres database
# (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432; dropped afterwards) with the
# example plans, their usage limits raised so no consume is refused (a refusal is a 402, which
# wrk counts as an error); a realistic stream ingested first (billing-load, GATE_SEED_EVENTS
# events, default 3000) so users have customers, subscriptions and credits; then wrk
# (GATE_CONNECTIONS connections, default 64; GATE_SECONDS each, default 10; 2 threads) on
# /healthz, the feature check and entitlements over 64 users, and the usage consume of one hot
# user and of 64 users. Prints one line per route: answers/s, its share of /healthz, p50, p99,
# errors; then pgbench's single-INSERT rate at the same concurrency and the consumes' share of
# it. Needs wrk (apt-get install wrk), pgbench and the release binaries (the recipe builds them).
set -euo pipefail
connections="${GATE_CONNECTIONS:-64}"
seconds="${GATE_SECONDS:-10}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
source "$(dirname "$0")/../profile/bench-server.sh"
# The example plans with every finite limit raised to 10^12.
sed -E 's/^(api_calls|ai_generations) = [0-9]+$/\1 = 1000000000000/' "$root/plans.toml" > "$dir/plans.toml"
bench_start_server "$dir/plans.toml" HTTP_MAX_CONNECTIONS=10000
STRIPE_WEBHOOK_SECRET="$secret" "$bin/billing-load" --url "$url" \
    --events "${GATE_SEED_EVENTS:-3000}" --concurrency 16 --plans "$dir/plans.toml" \
    --json-file "$dir/seed.json" > /dev/null 2>&1 || { echo "seeding failed" >&2; exit 1; }
# Users with a customer, those with a live subscription first.
users=$(psql "$base/$db" -Atc "SELECT c.user_id FROM customers c
    LEFT JOIN subscriptions s ON s.stripe_customer_id = c.stripe_customer_id
    WHERE c.user_id IS NOT NULL
    GROUP BY c.user_id ORDER BY bool_or(s.status IN ('active', 'trialing')) DESC NULLS LAST, c.user_id
    LIMIT 64" | paste -sd, -)
[ -n "$users" ] || { echo "the seed stream left no user with a customer" >&2; exit 1; }
hot=${users%%,*}
echo "server pid $pid, $(echo "$users" | tr , '\n' | wc -l) users, hot user $hot, $connections connections, ${seconds}s per route"
healthz_rps=""
printf '%-22s %12s %10s %9s %9s %8s\n' route answers/s of_healthz p50_ms p99_ms errors
run() {
    local name=$1 route=$2 who=$3
    local line
    line=$(GATE_ROUTE=$route GATE_USERS=$who GATE_KEY=$key GATE_RUN="$db-$name" \
        wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$root/bins/billing-load/gate/gate.lua" \
        "http://127.0.0.1:$port" | grep '^GATE ')
    local rps p50 p99 errors non2xx
    rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
    errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")
    [ -n "$healthz_rps" ] || healthz_rps=$rps
    last_rps=$rps
    printf '%-22s %12s %9.1f%% %9s %9s %8s\n' "$name" "$rps" \
        "$(python3 -c "print(100 * $rps / $healthz_rps)")" "$p50" "$p99" "$((errors + non2xx))"
}
run healthz healthz ""
run "feature check" features "$users"
run entitlements entitlements "$users"
run "consume, one user" consume "$hot"
hot_rps=$last_rps
run "consume, 64 users" consume "$users"
spread_rps=$last_rps
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "server RSS now $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB"
# Postgres' own commit rate at the same concurrency (pgbench, one 1 KB INSERT per transaction,
# as beside `just bench-ingest`), on a scratch table of the bench database: the consume's share.
psql "$base/$db" -qc "CREATE TABLE gate_pgbench (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
echo "INSERT INTO gate_pgbench (payload) VALUES (repeat(md5(random()::text), 32));" > "$dir/pgbench.sql"
tps=$(pgbench -n -c "$connections" -j 2 -T "$seconds" -f "$dir/pgbench.sql" "$base/$db" 2>/dev/null |
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p')
[ -n "$tps" ] || { echo "pgbench gave no rate" >&2; exit 1; }
python3 -c "print('pgbench, %d clients: %.0f tps; consume one user %.1f %%, 64 users %.1f %% of it'
    % ($connections, $tps, 100 * $hot_rps / $tps, 100 * $spread_rps / $tps))"

#!/usr/bin/env bash
# Starts the release billing-server for profiling, as `just bench-ingest` does (fresh Postgres
# database on BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432; the example plans;
# JSON logs), and prints "PID PORT DATABASE". Build first: cargo build --release -p billing-server.
#
#   serve.sh start [--log-statements | --callgrind FILE]   start; print PID PORT DATABASE
#   serve.sh stop PID DATABASE                             stop the server, drop the database
#
# --log-statements sets log_min_duration_statement = 0 on the database (every statement and its
# duration in the Postgres log, for statements.py); --callgrind runs the server under
# valgrind --tool=callgrind (the profile is written to FILE when the server stops).
set -euo pipefail
base="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/release/billing-server"
case "${1:-}" in
start)
    db="billing_profile_$(date +%s)_$$"
    psql "$base/postgres" -qc "CREATE DATABASE $db"
    wrap=()
    case "${2:-}" in
    --log-statements) psql "$base/postgres" -qc "ALTER DATABASE $db SET log_min_duration_statement = 0" ;;
    --callgrind) wrap=(valgrind --tool=callgrind "--callgrind-out-file=$3") ;;
    "") ;;
    *) echo "unknown option $2" >&2; exit 2 ;;
    esac
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    DATABASE_URL="$base/$db" BIND_ADDR="127.0.0.1:$port" PLANS_FILE="$root/plans.toml" \
        STRIPE_WEBHOOK_SECRET=whsec_bench_local_only STRIPE_SECRET_KEY=sk_test_bench_local_only \
        BILLING_API_KEYS=bench_api_key_local_only LOG_FORMAT=json \
        "${wrap[@]}" "$bin" > "/tmp/$db.log" 2>&1 < /dev/null &
    pid=$!
    for _ in $(seq 600); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { tail -20 "/tmp/$db.log" >&2; exit 1; }
    echo "$pid $port $db"
    ;;
stop)
    kill -TERM "$2"
    while kill -0 "$2" 2>/dev/null; do sleep 0.2; done
    psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $3 WITH (FORCE)"
    rm -f "/tmp/$3.log"
    ;;
*)
    echo "usage: serve.sh start [--log-statements | --callgrind FILE] | serve.sh stop PID DATABASE" >&2
    exit 2
    ;;
esac

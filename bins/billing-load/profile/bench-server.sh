# Sourced by the benchmark scripts (`just bench-ingest`, gate/bench-gate.sh, profile/history.sh):
# a fresh Postgres database on BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432) and
# the release billing-server on a free 127.0.0.1 port, both removed when the script exits.
# BENCH_SERVER_POSTGRES, when set, is the address the server reaches that Postgres by (the same
# database: a proxy in front of it, such as profile/delay_proxy.py); the tools use BENCH_POSTGRES.
#
# Sets root, bin, base, db, dir, port, url (the webhook endpoint), secret, key and pid (the
# running server's, empty when none), and defines:
#   bench_start_server [PLANS_FILE] [VAR=value…]   start the server (extra environment after
#                                                  the plans), wait until /readyz answers
#   bench_stop_server                              stop it (the database stays)
# The server's output is appended to $dir/server.log. Needs the release binaries
# (cargo build --release -p billing-server -p billing-load).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
base="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
db="billing_bench_$(date +%s)_$$"
dir=$(mktemp -d)
pid=""
secret=whsec_bench_local_only
key=bench_api_key_local_only
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/webhooks/stripe"

bench_stop_server() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    pid=""
}

bench_cleanup() {
    bench_stop_server
    psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    rm -rf "$dir"
}
trap bench_cleanup EXIT

bench_start_server() {
    local plans="${1:-$root/plans.toml}"
    shift || true
    env DATABASE_URL="${BENCH_SERVER_POSTGRES:-$base}/$db" BIND_ADDR="127.0.0.1:$port" PLANS_FILE="$plans" \
        STRIPE_WEBHOOK_SECRET="$secret" STRIPE_SECRET_KEY=sk_test_bench_local_only \
        BILLING_API_KEYS="$key" LOG_FORMAT=json "$@" \
        "$bin/billing-server" >> "$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -50 "$dir/server.log" >&2
    exit 1
}

psql "$base/postgres" -qc "CREATE DATABASE $db"

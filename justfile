# Billing server tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Every check CI runs: formatting, lints, all tests (unit, integration, doc), the examples, the
# crate docs and packages, the fault proofs, the API contract.
test: tools fmt-check lint nextest doctest examples doc package chaos contract

# Development defaults for `run` and `demo`; set the variables yourself for anything real.
export STRIPE_WEBHOOK_SECRET := env_var_or_default("STRIPE_WEBHOOK_SECRET", "whsec_dev_local_only_not_secret")
export STRIPE_SECRET_KEY := env_var_or_default("STRIPE_SECRET_KEY", "sk_test_dev_offline_placeholder")
export BILLING_API_KEYS := env_var_or_default("BILLING_API_KEYS", "dev_api_key_local_only")

# Start the server (SQLite under ./data when DATABASE_URL is unset) with the example plans.
run *ARGS:
    @echo "webhook signing secret: $STRIPE_WEBHOOK_SECRET"
    @echo "API key:                $BILLING_API_KEYS"
    cargo run -p billing-server -- {{ARGS}}

# Play a signed event story against the server started by `just run` (another terminal):
# `billingctl trigger` (default subscription-lifecycle; also one-time-refund-dispute,
# trial-conversion), printing the user's entitlements after each step.
demo SCENARIO="subscription-lifecycle" *ARGS:
    cargo run -q -p billingctl -- trigger {{SCENARIO}} --url http://127.0.0.1:8080 {{ARGS}}

# Install the tools the recipes need when they are missing (nextest; localstripe, the
# stateful fake of Stripe's HTTP API that the Stripe client's tests start on 127.0.0.1).
tools:
    @command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
    @python3 -c "import localstripe" 2>/dev/null || python3 -m pip install --quiet localstripe==1.15.10

# Fail when code is not formatted.
fmt-check:
    cargo fmt --all -- --check

# Clippy over every target, warnings are errors.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Unit and integration tests through nextest (benches are compiled by `lint`; the fault proofs
# of billing-chaos run in `chaos`). The build is the whole workspace's, billing-chaos included,
# and the filter leaves its tests out: `chaos`, `examples` and `contract` then reuse every
# artifact instead of building the dependency tree again with other features.
nextest:
    cargo nextest run --workspace --no-fail-fast -E 'not package(billing-chaos)'

# The binaries and examples with the features and profile of the test build above (`--examples`
# brings in the dev-dependencies, as tests do), so nothing is compiled twice.
build-for-tests:
    cargo build --workspace --bins --examples --profile test

# The fault proofs (crates/billing-chaos, docs/operations.md "What we promise under faults"):
# fuzzing, kill -9 under load, database restart, secrets in trace logs. Each scenario starts
# the real server binary and its own Postgres cluster (initdb/pg_ctl, free 127.0.0.1 port).
# CHAOS_SEED replays a run; CHAOS_FUZZ_SECONDS sets the fuzzing time boxes (default 10).
chaos: build-for-tests
    BILLING_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/billing-server" timeout 900 \
        cargo nextest run --workspace -E 'package(billing-chaos)' \
        --config-file crates/billing-chaos/nextest.toml --profile chaos

# Doc tests (nextest does not run them).
doctest:
    cargo test --workspace --doc

# The examples that are programs of their own (the others run in their crates' tests):
# billing-app embedded in a service, on SQLite.
examples: build-for-tests
    "${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/embedded"

# Rustdoc of every crate without its dependencies; warnings (broken links, …) are errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Every publishable crate packaged as crates.io would receive it: its files, the normalised
# manifest, each workspace dependency resolved from the other packages. Not rebuilt from the
# packages (`--no-verify`): each package resolves its own features, so verifying compiled the
# whole dependency tree again per crate (> 20 min on 2 cores). What the build cannot catch, a
# file included from outside the crate, is linked into it instead (migrations, fixtures, plans).
package:
    cargo package --workspace --no-verify --allow-dirty --exclude billing-chaos

# Criterion benchmarks (numbers go into docs/benchmarks.md).
bench *ARGS:
    cargo bench --workspace {{ARGS}}

# Fresh seeded streams of realistic signed events (10 % duplicates, bounded reordering)
# replayed at 1, 16 and 64 in flight; deliveries/s, p50/p90/p99 and errors. ARGS go to the
# tool: `--server-pid`, `--database-url`, `--pgbench`, `--json`, … (`billing-load --help`).
# Load any Stripe webhook endpoint with billing-load (release build).
bench-load URL SECRET *ARGS:
    cargo build --release -p billing-load
    STRIPE_WEBHOOK_SECRET='{{SECRET}}' "${CARGO_TARGET_DIR:-$PWD/target}/release/billing-load" \
        --url '{{URL}}' {{ARGS}}

# The release server on a fresh Postgres database (a unique name on BENCH_POSTGRES, default
# postgres://postgres@127.0.0.1:5432; dropped afterwards), then billing-load at 1, 16 and 64
# in flight with the server's CPU and RSS, Postgres' CPU, pgbench beside each level and the
# final-state check; the server is stopped at the end. ARGS go to billing-load (`--events
# 5000`, `--json`, …).
# Ingest under load, the figures of docs/benchmarks.md "Ingest under load".
bench-ingest *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p billing-server -p billing-load
    source bins/billing-load/profile/bench-server.sh
    bench_start_server
    STRIPE_WEBHOOK_SECRET="$secret" "$bin/billing-load" --url "$url" \
        --server-pid "$pid" --postgres-cpu --database-url "$base/$db" --pgbench {{ARGS}}

# The gate under load: the release server with the example plans (limits raised), a seeded
# stream, then wrk on /healthz, the feature check, entitlements and the usage consume (one hot
# user, 64 users); answers/s against /healthz, p50/p99, errors. GATE_CONNECTIONS (64),
# GATE_SECONDS (10), GATE_SEED_EVENTS (3000). Needs wrk (`apt-get install wrk`).
bench-gate:
    cargo build --release -p billing-server -p billing-load
    bins/billing-load/gate/bench-gate.sh

# Regenerate docs/openapi.yaml from the server's types (a test fails when it drifts).
openapi:
    UPDATE_OPENAPI=1 cargo nextest run -p billing-http -E 'test(docs_openapi_yaml_is_the_served_document)'

# The API contract against the running server: the real binary on a free 127.0.0.1 port over a
# fresh SQLite file with the example plans (its /openapi.json lists their metrics, features,
# prices and tiers), Stripe faked by localstripe (with the Checkout and portal sessions it lacks:
# crates/billing-http/contract/fake_stripe.py), and schemathesis (pinned) generating requests
# from /openapi.json with every check (schemathesis.toml: the one exception and its reason);
# any finding fails. CONTRACT_SECONDS bounds the run (fuzzing repeats until it is spent),
# CONTRACT_EXAMPLES the examples per operation and round, CONTRACT_SEED replays a run.
contract: build-for-tests
    #!/usr/bin/env bash
    set -euo pipefail
    version=4.32.5
    installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
    [ "$installed" = "$version" ] || python3 -m pip install --quiet "schemathesis==$version"
    python3 -c "import localstripe" 2>/dev/null || python3 -m pip install --quiet localstripe==1.15.10
    bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/billing-server"
    dir=$(mktemp -d)
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    stripe_port=$(free_port)
    python3 "{{justfile_directory()}}/crates/billing-http/contract/fake_stripe.py" "$stripe_port" > "$dir/localstripe.log" 2>&1 &
    pids+=($!)
    port=$(free_port)
    key=contract_api_key
    DATABASE_URL="sqlite://$dir/contract.sqlite" BIND_ADDR="127.0.0.1:$port" \
        PLANS_FILE="{{justfile_directory()}}/plans.toml" \
        BILLING_API_KEYS="$key" STRIPE_API_BASE="http://127.0.0.1:$stripe_port/" \
        STRIPE_SECRET_KEY=sk_test_contract STRIPE_WEBHOOK_SECRET=whsec_contract \
        RUST_LOG=warn "$bin" > "$dir/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    cd "$dir"  # schemathesis keeps its cache in the working directory
    st --config-file "{{justfile_directory()}}/schemathesis.toml" \
        run "http://127.0.0.1:$port/openapi.json" --url "http://127.0.0.1:$port" \
        -H "Authorization: Bearer $key" --max-examples "${CONTRACT_EXAMPLES:-25}" \
        --max-time "${CONTRACT_SECONDS:-75}" --seed "${CONTRACT_SEED:-1}" --generation-database none \
        || { echo "server log: $dir/server.log"; tail -50 "$dir/server.log"; exit 1; }

# Regenerate the signature test vectors with the official Stripe SDKs (Python and Node).
vectors:
    bash crates/stripe-webhook-signature/vectors/generate.sh

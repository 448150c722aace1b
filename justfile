# Billing server tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Every check CI runs: formatting, lints, all tests (unit, integration, doc).
test: tools fmt-check lint nextest doctest

# Start the server (SQLite under ./data when DATABASE_URL is unset).
run *ARGS: tools
    cargo run -p billing-server -- {{ARGS}}

# Install the tools the recipes need when they are missing.
tools:
    @command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

# Fail when code is not formatted.
fmt-check:
    cargo fmt --all -- --check

# Clippy over every target, warnings are errors.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Unit and integration tests through nextest (benches are compiled by `lint`).
nextest:
    cargo nextest run --workspace --no-fail-fast

# Doc tests (nextest does not run them).
doctest:
    cargo test --workspace --doc

# Criterion benchmarks (numbers go into docs/benchmarks.md).
bench *ARGS:
    cargo bench --workspace {{ARGS}}

# Regenerate the signature test vectors with the official Stripe SDKs (Python and Node).
vectors:
    bash crates/stripe-webhook-signature/vectors/generate.sh

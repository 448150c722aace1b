//! The client against the real server (on port 0 over a fresh Postgres database, started
//! in-process as billing-http's black-box tests start it) and against wiremock for what a
//! healthy server cannot be made to answer (5xx, timeouts, change-feed pages).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod cache_and_feed;
mod errors;
mod retries;
mod round_trip;

// billing-http's black-box helpers (Server::build_with on port 0, the test settings, signed
// webhooks), reused rather than copied.
#[path = "../../../billing-http/tests/api/helpers.rs"]
#[allow(dead_code)]
mod server;

/// A random id with `prefix`, as Stripe's look (`user_8f3a…`).
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 14];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
        .collect();
    format!("{prefix}_{suffix}")
}

/// A client of `base` with the test API key and quick retries.
pub fn client(base: &str) -> billing_client::ClientBuilder {
    billing_client::Client::builder(base)
        .api_key(server::API_KEY)
        .retry_delays(
            std::time::Duration::from_millis(5),
            std::time::Duration::from_millis(20),
        )
}

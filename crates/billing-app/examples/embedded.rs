//! The billing engine as a library, without the server: a Rust service that receives Stripe's
//! webhooks itself verifies one, applies it exactly once on an embedded SQLite database, and
//! reads the user's entitlements, all in-process.
//!
//! Run it with `cargo run -p billing-app --example embedded`. It creates a fresh SQLite file in
//! the system's temporary directory and removes it at the end.
//!
//! The steps a service takes (each one line below):
//! 1. open the store and run its migrations (`DieselStore`, here `sqlite://…`);
//! 2. build the app on it with a plan catalog (`BillingApp::new`);
//! 3. for each webhook: verify the `Stripe-Signature` header on the raw body
//!    (`stripe_webhook_signature::Verifier`), parse it (`billing_stripe::parse_event`), and
//!    `ingest` it: answer Stripe 2xx only when `ingest` returned `Ok`;
//! 4. ask `entitlements` / `feature` / `record_usage` wherever the product decides.

#![allow(
    clippy::print_stdout,
    reason = "an example program reports to the terminal"
)]

use std::sync::Arc;

use billing_app::{AppSettings, BillingApp, IngestOutcome};
use billing_domain::Catalog;
use billing_ports::SystemClock;
use billing_store_diesel::DieselStore;
use stripe_webhook_signature::{Verifier, sign};

/// A catalog of two tiers: what `plans.toml` holds for the server.
const PLANS: &str = r#"
default_grace_period_days = 3

[[tiers]]
id = "FREE"
name = "Free"
price_ids = []
credits_per_period = 0
[tiers.limits]
api_calls = 100
[tiers.features]
advanced_analytics = false

[[tiers]]
id = "PRO"
name = "Pro"
price_ids = ["price_1QpRoMonthlyExample"]
credits_per_period = 1000
[tiers.limits]
api_calls = 10000
[tiers.features]
advanced_analytics = true
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = format!("whsec_{}", random_id(32)?);
    let db_path = std::env::temp_dir().join(format!("billing-embedded-{}.db", random_id(12)?));

    // 1. The store: embedded SQLite (a `postgres://` URL works the same way).
    let store = DieselStore::connect(&format!("sqlite://{}", db_path.display()), 4)?;
    store.run_migrations().await?;

    // 2. The app: store, catalog, clock, no outgoing Stripe client (ingest needs none).
    let catalog = Arc::new(Catalog::from_toml_str(PLANS)?);
    let app = BillingApp::new(
        Arc::new(store),
        catalog,
        Arc::new(SystemClock),
        None,
        AppSettings::default(),
    );
    let verifier = Verifier::new([secret.as_str()])?;

    // 3. A webhook as Stripe sends it: a raw body and its signature header.
    let user_id = format!("user_{}", random_id(10)?);
    let now = chrono::Utc::now().timestamp();
    let body = subscription_created(&user_id, now)?;
    let header = sign(body.as_bytes(), &secret, now);

    for delivery in 1..=2 {
        // Stripe may deliver an event twice: the second is a duplicate, nothing changes.
        verifier.verify_at(body.as_bytes(), &header, now)?;
        let event = billing_stripe::parse_event(body.as_bytes())?;
        let outcome = app.ingest(event, body.clone()).await?;
        println!("delivery {delivery}: {}", describe(&outcome));
    }

    // 4. The product's questions.
    let entitlements = app.entitlements(&user_id).await?;
    println!(
        "{user_id}: tier {}, reason {}, advanced_analytics = {}",
        entitlements.tier.as_str(),
        entitlements.reason.code(),
        entitlements.features["advanced_analytics"],
    );
    assert_eq!(entitlements.tier.as_str(), "PRO");

    drop(app);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    Ok(())
}

/// What one delivery did, in words.
fn describe(outcome: &IngestOutcome) -> &'static str {
    match outcome {
        IngestOutcome::Processed => "applied",
        IngestOutcome::Ignored => "ignored (a type the engine does not act on)",
        IngestOutcome::Stale => "stale (older than what is stored)",
        IngestOutcome::Duplicate(_) => "duplicate (already applied)",
    }
}

/// A `customer.subscription.created` event of API version 2025-03-31.basil for a new customer
/// whose metadata names `user_id`, on the PRO price, created at `now`.
fn subscription_created(user_id: &str, now: i64) -> Result<String, Box<dyn std::error::Error>> {
    let period_end = now + 30 * 86_400;
    Ok(serde_json::json!({
        "id": format!("evt_{}", random_id(24)?),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": now,
        "type": "customer.subscription.created",
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": format!("req_{}", random_id(14)?), "idempotency_key": null},
        "data": {"object": {
            "id": format!("sub_{}", random_id(24)?),
            "object": "subscription",
            "customer": format!("cus_{}", random_id(14)?),
            "status": "active",
            "created": now,
            "start_date": now,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "trial_end": null,
            "metadata": {"user_id": user_id},
            "items": {"object": "list", "has_more": false, "data": [{
                "id": format!("si_{}", random_id(14)?),
                "object": "subscription_item",
                "created": now,
                "current_period_start": now,
                "current_period_end": period_end,
                "quantity": 1,
                "price": {
                    "id": "price_1QpRoMonthlyExample",
                    "object": "price",
                    "currency": "usd",
                    "unit_amount": 2900,
                    "recurring": {"interval": "month", "interval_count": 1}
                }
            }]}
        }}
    })
    .to_string())
}

/// `len` random base62 characters, the alphabet of Stripe's ids.
fn random_id(len: usize) -> Result<String, Box<dyn std::error::Error>> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| format!("the system's random source: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

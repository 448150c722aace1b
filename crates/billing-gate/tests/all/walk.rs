//! One user walks FREE → PRO → past due in grace → FREE while the example product, gated by
//! the local backend over the billing server's Postgres database (or the remote one over its
//! API), answers every route, and the change feed records each change of access.

use std::sync::Arc;

use billing_gate::{LocalBackend, RemoteBackend};
use billing_ports::ManualClock;
use billing_store_diesel::testing::TestDatabase;
use chrono::{Datelike, TimeDelta, TimeZone, Utc};
use serde_json::json;

use crate::support::{
    Answer, Billing, Product, Story, product_app, spawn_billing, spawn_product, story,
};

/// The three gated reads' answers for `user`: (advanced report, priority support, domains).
async fn reads(product: &Product, user: &str) -> (Answer, Answer, Answer) {
    (
        product
            .call("GET", "/reports/advanced", Some(user), &[])
            .await,
        product
            .call("GET", "/support/priority", Some(user), &[])
            .await,
        product.call("GET", "/domains", Some(user), &[]).await,
    )
}

fn generate(product: &Product, user: &str, key: Option<&str>) -> impl Future<Output = Answer> {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let user = user.to_owned();
    async move {
        product
            .call("POST", "/generate", Some(&user), &headers)
            .await
    }
}

#[actix_web::test]
async fn a_user_walks_from_free_to_pro_into_grace_and_back_to_free_on_the_local_backend() {
    let db = TestDatabase::postgres().await;
    let t0 = crate::support::now();
    let clock = Arc::new(ManualClock::new(t0));
    let billing = spawn_billing(db.store().clone(), clock.clone()).await;
    let app = product_app(db.url(), clock.clone());
    let channel = crate::product::listen(&app).unwrap();
    assert!(channel.is_some(), "Postgres has a gate channel");
    let product = spawn_product(LocalBackend::new(app), false).await;
    // The product decides on the same clock as billing: Retry-After is exact.
    walk(&billing, &product, &story(t0), 0).await;
    product.handle.stop(true).await;
    billing.handle.stop(true).await;
    if let Some(channel) = channel {
        channel.stop();
    }
}

#[actix_web::test]
async fn a_user_walks_from_free_to_pro_into_grace_and_back_to_free_on_the_remote_backend() {
    let db = TestDatabase::postgres().await;
    let t0 = crate::support::now();
    let clock = Arc::new(ManualClock::new(t0));
    let billing = spawn_billing(db.store().clone(), clock.clone()).await;
    let client = || {
        billing_client::Client::builder(billing.address.as_str())
            .api_key(crate::helpers::API_KEY)
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap()
    };
    let product = spawn_product(RemoteBackend::new(client()), false).await;
    let fails_open = spawn_product(RemoteBackend::new(client()), true).await;
    // The product reads the system clock, billing its manual one (a few seconds apart).
    walk(&billing, &product, &story(t0), 5).await;

    // The billing server stops: fail closed (503) by default, open when told.
    billing.handle.stop(true).await;
    let user = "user_while_billing_is_down";
    for (method, path) in crate::unavailable::ROUTES {
        let closed = product.call(method, path, Some(user), &[]).await;
        assert_eq!(
            (closed.status, closed.code()),
            (503, "billing_unavailable"),
            "{method} {path}"
        );
        let open = fails_open.call(method, path, Some(user), &[]).await;
        assert_eq!(open.status, 200, "{method} {path}: {:?}", open.body);
        assert_eq!(open.body["failed_open"], true);
    }
    product.handle.stop(true).await;
    fails_open.handle.stop(true).await;
}

/// Walks `story`'s user FREE → PRO → past due in grace → FREE on `billing` (whose clock starts
/// at the story's `t0`), checking every route of `product` at each step. `Retry-After` may be
/// off by `slack` seconds (a product reading another clock than billing's).
pub async fn walk(billing: &Billing, product: &Product, story: &Story, slack: u64) {
    let clock = &billing.clock;
    let t0 = billing_ports::Clock::now(&**clock);
    let user = story.user.as_str();
    let (none, mut cursor) = billing.changes(user, "0").await;
    assert!(none.is_empty());

    // FREE: no subscription.
    assert_eq!(
        product
            .call("GET", "/reports/advanced", None, &[])
            .await
            .status,
        401
    );
    let (report, support, domains) = reads(product, user).await;
    assert_eq!(
        (report.status, report.code()),
        (402, "feature_not_included")
    );
    assert_eq!(report.body["error"]["tier"], "FREE");
    assert_eq!(report.body["error"]["reason"], "no_subscription");
    assert_eq!(
        (support.status, support.code()),
        (402, "feature_not_included")
    );
    assert_eq!((domains.status, domains.code()), (402, "tier_too_low"));
    assert_eq!(domains.body["error"]["required"], "PRO");
    // Metered: FREE has 10 generations a calendar month; a retry with the same key counts once.
    let first = generate(product, user, Some("gen-1")).await;
    let retried = generate(product, user, Some("gen-1")).await;
    assert_eq!((first.status, first.body["used"].as_u64()), (200, Some(1)));
    assert_eq!(
        (retried.status, retried.body["used"].as_u64()),
        (200, Some(1))
    );
    for n in 2..=10 {
        let answer = generate(product, user, None).await;
        assert_eq!(
            (answer.status, answer.body["used"].as_u64()),
            (200, Some(n))
        );
    }
    let refused = generate(product, user, None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (429, "usage_limit_exceeded")
    );
    assert_eq!(refused.body["error"]["limit"], 10);
    let month_end = if t0.month() == 12 {
        Utc.with_ymd_and_hms(t0.year() + 1, 1, 1, 0, 0, 0)
    } else {
        Utc.with_ymd_and_hms(t0.year(), t0.month() + 1, 1, 0, 0, 0)
    }
    .unwrap();
    let to_month_end = (month_end - t0).num_seconds() as u64;
    let retry_after = refused.retry_after.unwrap();
    assert!(
        retry_after <= to_month_end && retry_after + slack >= to_month_end,
        "Retry-After {retry_after}, the month ends in {to_month_end} s"
    );
    let usage = billing.entitlements(user).await;
    assert_eq!(usage["usage"]["ai_generations"], 10, "{usage}");
    // Metering changes no access: no change record.
    let (records, next) = billing.changes(user, &cursor).await;
    assert_eq!(records, Vec::<serde_json::Value>::new());
    cursor = next;

    // PRO: bought a day ago, first invoice paid.
    for body in &story.bought {
        assert_eq!(billing.webhook(body).await, 200);
    }
    let report = product
        .settled("/reports/advanced", user, |a| a.status == 200)
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.body["tier"], "PRO");
    let (_, support, domains) = reads(product, user).await;
    assert_eq!(
        (support.status, support.code()),
        (402, "feature_not_included")
    );
    assert_eq!(support.body["error"]["tier"], "PRO");
    assert_eq!(support.body["error"]["reason"], "active");
    assert_eq!(
        (domains.status, domains.body["tier"].as_str()),
        (200, Some("PRO"))
    );
    // The subscription's period is a new metering period with PRO's 500.
    let generated = generate(product, user, None).await;
    assert_eq!(generated.status, 200);
    assert_eq!(generated.body["remaining"], 499);
    assert_eq!(billing.entitlements(user).await["tier"], "PRO");
    let (records, next) = billing.changes(user, &cursor).await;
    cursor = next;
    let upgrade = one(&records, "tier_changed");
    assert_eq!(
        (&upgrade["before"]["tier"], &upgrade["after"]["tier"]),
        (&json!("FREE"), &json!("PRO"))
    );
    assert!(
        upgrade["stripe_event_id"]
            .as_str()
            .unwrap()
            .starts_with("evt_")
    );
    // The first invoice's payment, once (by the invoice; its payment intent writes none).
    let paid = one(&records, "payment_succeeded");
    assert!(paid["amount"]["value"].as_i64() > Some(0), "{paid}");
    assert_eq!(one(&records, "credits_granted")["after"]["credits"], 1000);
    assert_eq!(records.last().unwrap()["after"]["tier"], "PRO");

    // Past due in grace: the renewal a month later fails; PRO is kept for three days.
    clock.set(story.renewed_at + TimeDelta::hours(2));
    for body in &story.renewal_failed {
        assert_eq!(billing.webhook(body).await, 200);
    }
    let entitlements = billing.entitlements(user).await;
    assert_eq!(entitlements["tier"], "PRO", "{entitlements}");
    assert_eq!(entitlements["reason"], "in_grace_period");
    assert_eq!(entitlements["status"], "past_due");
    let support = product
        .settled("/support/priority", user, |a| {
            a.body["error"]["reason"] == "in_grace_period"
        })
        .await;
    assert_eq!(
        (support.status, support.code()),
        (402, "feature_not_included")
    );
    assert_eq!(support.body["error"]["reason"], "in_grace_period");
    let (report, _, domains) = reads(product, user).await;
    assert_eq!((report.status, domains.status), (200, 200));
    let generated = generate(product, user, None).await;
    assert_eq!(
        (generated.status, generated.body["used"].as_u64()),
        (200, Some(1))
    );
    let (records, next) = billing.changes(user, &cursor).await;
    cursor = next;
    let grace = one(&records, "grace_started");
    assert_eq!(grace["after"]["tier"], "PRO");
    assert_eq!(grace["after"]["reason"], "in_grace_period");
    assert!(grace["after"]["grace_period_end"].is_string());
    // The failed renewal, once.
    one(&records, "payment_failed");
    assert!(
        records.iter().all(|r| r["kind"] != "tier_changed"),
        "grace keeps the tier: {records:?}"
    );

    // FREE again: the grace period ended without a payment.
    clock.set(story.renewed_at + TimeDelta::days(3) + TimeDelta::hours(1));
    // What the `grace_ended` job does at its next run (every minute), run now.
    assert_eq!(billing.app.record_grace_ended().await.unwrap(), 1);
    assert_eq!(billing.app.record_grace_ended().await.unwrap(), 0, "once");
    let (records, _) = billing.changes(user, &cursor).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let ended = one(&records, "grace_ended");
    assert_eq!(
        (&ended["before"]["tier"], &ended["after"]["tier"]),
        (&json!("PRO"), &json!("FREE"))
    );
    assert_eq!(ended["after"]["reason"], "grace_period_over");
    assert_eq!(ended["stripe_event_id"], serde_json::Value::Null);
    let entitlements = billing.entitlements(user).await;
    assert_eq!(entitlements["tier"], "FREE", "{entitlements}");
    assert_eq!(entitlements["reason"], "grace_period_over");
    let (report, support, domains) = reads(product, user).await;
    assert_eq!(
        (report.status, report.code()),
        (402, "feature_not_included")
    );
    assert_eq!(report.body["error"]["reason"], "grace_period_over");
    assert_eq!(
        (support.status, support.code()),
        (402, "feature_not_included")
    );
    assert_eq!((domains.status, domains.code()), (402, "tier_too_low"));
    assert_eq!(domains.body["error"]["tier"], "FREE");
    // FREE's limit of 10 in the same period, one used in grace.
    let generated = generate(product, user, None).await;
    assert_eq!(
        (generated.status, generated.body["remaining"].as_u64()),
        (200, Some(8))
    );
}

/// The one record of `kind` among `records`.
fn one<'a>(records: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    let found: Vec<&serde_json::Value> = records.iter().filter(|r| r["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} among {records:?}");
    found[0]
}

//! Every route and body type through the running server: what the client reads, written back,
//! is the JSON the server sent.

use std::pin::pin;
use std::time::Duration;

use billing_client::api::{Catalog, ChangeKind, ChangesPage, ErrorBody};
use billing_client::{CheckoutRequest, Denial, Error, Mode, PortalRequest};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::server::{self, spawn_app, subscription_event};
use crate::{client, random_id};

/// `typed` written as JSON is `raw`, the server's own answer.
fn same_json<T: Serialize>(typed: &T, raw: &Value) {
    assert_eq!(&serde_json::to_value(typed).unwrap(), raw);
}

#[actix_web::test]
async fn every_route_round_trips_through_the_running_server() {
    let app = spawn_app().await;
    let billing = client(&app.address).build().unwrap();
    let user = random_id("user");
    let event = subscription_event(
        &random_id("evt"),
        "customer.subscription.created",
        &user,
        "active",
        "price_pro_monthly",
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(app.webhook(&event).await.0, 200);

    let entitlements = billing.entitlements(&user).await.unwrap();
    assert_eq!(
        (entitlements.tier.as_str(), entitlements.reason.as_str()),
        ("PRO", "active")
    );
    let (_, raw) = app.get(&format!("/v1/users/{user}/entitlements")).await;
    same_json(&*entitlements, &raw);

    let feature = billing.feature(&user, "custom_domain").await.unwrap();
    assert!(feature.allowed);
    let (_, raw) = app
        .get(&format!("/v1/users/{user}/features/custom_domain"))
        .await;
    same_json(&feature, &raw);
    let denied = billing
        .require_feature(&user, "priority_support")
        .await
        .unwrap_err();
    assert_eq!(
        denied,
        Error::Denied {
            reason: Denial::Feature {
                feature: "priority_support".into(),
                tier: "PRO".into(),
                reason: "active".into()
            }
        }
    );

    let key = random_id("usage");
    let counted = billing
        .consume(&user, "ai_generations", 498, &key)
        .await
        .unwrap();
    assert_eq!(
        (
            counted.used,
            counted.limit,
            counted.remaining,
            counted.replayed
        ),
        (498, Some(500), Some(2), false)
    );
    let again = billing
        .consume(&user, "ai_generations", 498, &key)
        .await
        .unwrap();
    assert!(again.replayed, "the same key counts once");
    assert_eq!(again.used, 498);
    let over = billing
        .consume(&user, "ai_generations", 3, &random_id("usage"))
        .await
        .unwrap_err();
    let Error::Denied {
        reason: Denial::UsageLimit(refused),
    } = &over
    else {
        panic!("{over:?}");
    };
    assert_eq!((refused.used, refused.limit), (498, Some(500)));
    assert_eq!(refused.period_end, counted.period_end);
    assert_eq!(
        refused.error.code,
        billing_client::api::ErrorCode::UsageLimitExceeded
    );
    let key = random_id("usage");
    let (status, raw) = app
        .post(
            &format!("/v1/users/{user}/usage"),
            &json!({"metric": "api_calls", "quantity": 1, "idempotency_key": key}),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let replayed = billing.consume(&user, "api_calls", 1, &key).await.unwrap();
    let mut raw_replayed = raw.clone();
    raw_replayed["replayed"] = json!(true);
    same_json(&replayed, &raw_replayed);

    let checkout = CheckoutRequest {
        user_id: user.clone(),
        email: Some(format!("{user}@example.com")),
        mode: Mode::Subscription,
        price_id: None,
        tier: Some("ENTERPRISE".into()),
        success_url: "https://product.example/ok".into(),
        cancel_url: "https://product.example/no".into(),
        trial_days: Some(14),
    };
    let checkout_key = random_id("checkout");
    let session = billing.checkout(&checkout, &checkout_key).await.unwrap();
    assert!(!session.replayed);
    let (status, raw) = app
        .post(
            "/v1/checkout/sessions",
            &serde_json::to_value(&checkout).unwrap(),
            &[("Idempotency-Key", &checkout_key)],
        )
        .await;
    assert_eq!(status, 200);
    let replayed = billing.checkout(&checkout, &checkout_key).await.unwrap();
    assert!(replayed.replayed);
    assert_eq!(replayed.id, session.id);
    same_json(&replayed, &raw);

    let portal = PortalRequest {
        user_id: user.clone(),
        return_url: "https://product.example/account".into(),
    };
    let session = billing.portal(&portal).await.unwrap();
    let (status, raw) = app
        .post(
            "/v1/portal/sessions",
            &serde_json::to_value(&portal).unwrap(),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(raw.as_object().unwrap().len(), 1);
    assert!(session.url.starts_with("http"), "{}", session.url);

    let synced = billing.sync(&user).await.unwrap();
    let (status, raw) = app
        .post(&format!("/v1/users/{user}/sync"), &json!({}), &[])
        .await;
    assert_eq!(status, 200);
    same_json(&synced, &raw);

    let catalog: Catalog = billing.catalog().await.unwrap();
    let (_, raw) = app.get("/v1/catalog").await;
    same_json(&catalog, &raw);
    assert_eq!(
        catalog
            .tiers
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["FREE", "PRO", "ENTERPRISE"]
    );
    assert_eq!(
        catalog.feature("priority_support").unwrap().tiers,
        ["ENTERPRISE"]
    );
    assert_eq!(
        catalog.metric("api_calls").unwrap().limits["ENTERPRISE"],
        None
    );
}

#[actix_web::test]
async fn the_change_feed_round_trips_through_the_running_server() {
    let app = spawn_app().await;
    let billing = client(&app.address).build().unwrap();
    let user = random_id("user");
    let created = chrono::Utc::now().timestamp() - 120;
    let upgrade_event = random_id("evt");
    let event = subscription_event(
        &upgrade_event,
        "customer.subscription.created",
        &user,
        "active",
        "price_pro_monthly",
        created,
    );
    assert_eq!(app.webhook(&event).await.0, 200);

    let page = billing.changes(None, Some(100), None).await.unwrap();
    let (_, raw) = app.get("/v1/changes?limit=100").await;
    same_json(&page, &raw);
    let upgrade = page
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::TierChanged)
        .expect("the upgrade's tier_changed record");
    assert_eq!(upgrade.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(
        (upgrade.before.tier.as_str(), upgrade.after.tier.as_str()),
        ("FREE", "PRO")
    );
    assert_eq!(
        upgrade.stripe_event_id.as_deref(),
        Some(upgrade_event.as_str())
    );

    // The stream resumes after the kept cursor and is woken by the next commit.
    let mut stream = pin!(billing.changes_stream(Some(page.next_cursor.clone())));
    let cancel_event = random_id("evt");
    let canceled = subscription_event(
        &cancel_event,
        "customer.subscription.deleted",
        &user,
        "canceled",
        "price_pro_monthly",
        created + 60,
    );
    assert_eq!(app.webhook(&canceled).await.0, 200);
    let mut downgrade = None;
    while downgrade.is_none() {
        let record = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("a record within the long poll")
            .expect("the stream goes on")
            .unwrap();
        assert_eq!(
            record.stripe_event_id.as_deref(),
            Some(cancel_event.as_str())
        );
        if record.kind == ChangeKind::TierChanged {
            downgrade = Some(record);
        }
    }
    let downgrade = downgrade.unwrap();
    assert_eq!(
        (
            downgrade.before.tier.as_str(),
            downgrade.after.tier.as_str()
        ),
        ("PRO", "FREE")
    );

    // A cursor the server never gave is refused, and says why.
    let refused = billing.changes(Some("c-17"), None, None).await.unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidInput { code, .. } if code == "invalid_cursor"),
        "{refused:?}"
    );
}

#[actix_web::test]
async fn the_servers_refusals_become_the_matching_errors() {
    let app = spawn_app().await;
    let billing = client(&app.address).build().unwrap();
    let user = random_id("user");

    let unknown = billing.feature(&user, "teleportation").await.unwrap_err();
    assert!(
        matches!(&unknown, Error::NotFound { code, .. } if code == "unknown_feature"),
        "{unknown:?}"
    );
    let no_customer = billing
        .portal(&PortalRequest {
            user_id: user.clone(),
            return_url: "https://product.example/account".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&no_customer, Error::NotFound { code, .. } if code == "unknown_user"),
        "{no_customer:?}"
    );
    let metric = billing
        .consume(&user, "teleports", 1, &random_id("usage"))
        .await
        .unwrap_err();
    assert!(
        matches!(&metric, Error::InvalidInput { code, .. } if code == "unknown_metric"),
        "{metric:?}"
    );
    let bad_user = billing.entitlements("a\u{7}b").await.unwrap_err();
    assert!(
        matches!(&bad_user, Error::InvalidInput { code, .. } if code == "invalid_user_id"),
        "{bad_user:?}"
    );
    let wrong_key = billing_client::Client::builder(&app.address)
        .api_key("not_the_key_0123456789")
        .build()
        .unwrap();
    let refused = wrong_key.entitlements(&user).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Unauthorized { code, .. } if code == "invalid_api_key"),
        "{refused:?}"
    );
    // The error body is billing_api's type, code and all.
    let (status, raw) = app
        .get(&format!("/v1/users/{user}/features/teleportation"))
        .await;
    assert_eq!(status, 404);
    let body: ErrorBody = serde_json::from_value(raw.clone()).unwrap();
    same_json(&body, &raw);
}

#[test]
fn change_feed_pages_as_the_feed_writes_them_read_back_unchanged() {
    let page = json!({
        "changes": [{
            "cursor": "c_00000042",
            "id": "chg_5hQm2Xz8",
            "user_id": "user_8f3a",
            "customer_id": "cus_Q1w2E3r4",
            "kind": "grace_started",
            "before": {"tier": "PRO", "status": "active", "reason": "active",
                       "grace_period_end": null, "credits": 1500},
            "after": {"tier": "PRO", "status": "past_due", "reason": "in_grace_period",
                      "grace_period_end": "2026-12-09T02:15:00Z", "credits": 1500},
            "amount": {"value": 1999, "currency": "usd"},
            "stripe_event_id": "evt_1Qx9",
            "created_at": "2026-12-06T02:15:00Z",
        }, {
            "cursor": "c_00000043",
            "id": "chg_9dK1",
            "user_id": null,
            "customer_id": "cus_Z9",
            "kind": "grace_ended",
            "before": {"tier": "PRO", "status": "past_due", "reason": "in_grace_period",
                       "grace_period_end": "2026-12-09T02:15:00Z", "credits": 0},
            "after": {"tier": "FREE", "status": "past_due", "reason": "grace_period_over",
                      "grace_period_end": "2026-12-09T02:15:00Z", "credits": 0},
            "amount": null,
            "stripe_event_id": null,
            "created_at": "2026-12-09T02:15:01Z",
        }],
        "next_cursor": "c_00000043",
    });
    let typed: ChangesPage = serde_json::from_value(page.clone()).unwrap();
    assert_eq!(
        typed.changes[0].kind,
        billing_client::ChangeKind::GraceStarted
    );
    assert_eq!(typed.changes[1].user_id, None);
    same_json(&typed, &page);
    let _ = server::API_KEY;
}

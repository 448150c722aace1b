//! `billingctl deliveries list | replay` over push rows written as the server's pusher writes
//! them: listed newest first with the last attempt, filtered by status, failed ones replayed.

use billing_domain::{SubscriptionStatus, TierId};
use billing_ports::{
    AccessSnapshot, AttemptOutcome, BillingStore, ChangeKind, NewChange, PushAttempt, PushStore,
    StoreError, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeDelta, Utc};

use crate::support::billingctl;

fn access(tier: &str) -> AccessSnapshot {
    AccessSnapshot {
        tier: TierId::new(tier),
        status: Some(SubscriptionStatus::Active),
        reason: "active".to_owned(),
        grace_period_end: None,
        credits: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_listed_with_their_last_error_and_replayed() {
    let db = TestDatabase::postgres().await;
    let store = db.store().clone();
    let now = Utc::now();
    store
        .register_push_endpoint(
            "ep_5f2c9a1b7e3d4f60a8b1c2d3",
            "https://product.example/hooks",
            now,
        )
        .await
        .unwrap();
    for (id, user) in [
        ("chg_Lq7Zx2Vb9Nm4Kt1R", "user_8fk2Qa"),
        ("chg_Wp3Hs8Jd6Fg2Yc5E", "user_3mX9vB"),
    ] {
        let change = NewChange {
            change_id: id.to_owned(),
            user_id: user.to_owned(),
            customer_id: Some(format!("cus_{user}")),
            kind: ChangeKind::TierChanged,
            before: access("FREE"),
            after: access("PRO"),
            amount: None,
            stripe_event_id: Some("evt_1Qm2Lx8Zb4Vn6Kc".to_owned()),
            dedupe_key: None,
            created_at: now,
        };
        store
            .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
                Box::pin(async move { tx.insert_change(&change).await })
            })
            .await
            .unwrap();
    }
    let endpoint = "ep_5f2c9a1b7e3d4f60a8b1c2d3";
    assert_eq!(store.enqueue_pushes(endpoint, now, 10).await.unwrap(), 2);
    let due = store.due_pushes(endpoint, now, 10).await.unwrap();
    let attempts = [
        PushAttempt {
            delivery_id: due[0].delivery_id,
            attempt: 1,
            started_at: now,
            duration_ms: 12,
            status_code: Some(200),
            error: None,
            outcome: AttemptOutcome::Succeeded,
        },
        PushAttempt {
            delivery_id: due[1].delivery_id,
            attempt: 1,
            started_at: now,
            duration_ms: 5_000,
            status_code: Some(503),
            error: Some("answered HTTP 503 Service Unavailable".to_owned()),
            outcome: AttemptOutcome::Failed,
        },
    ];
    store.record_push_attempts(&attempts, now).await.unwrap();

    let listed = billingctl(&db, &["--json", "deliveries", "list"]).json();
    let deliveries = listed["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    // Newest first.
    assert_eq!(deliveries[0]["change_id"], "chg_Wp3Hs8Jd6Fg2Yc5E");
    assert_eq!(deliveries[0]["status"], "failed");
    assert_eq!(deliveries[0]["last_status_code"], 503);
    assert_eq!(
        deliveries[0]["last_error"],
        "answered HTTP 503 Service Unavailable"
    );
    assert_eq!(deliveries[0]["endpoint"], "https://product.example/hooks");
    assert_eq!(deliveries[1]["status"], "succeeded");
    assert_eq!(deliveries[1]["attempts"], 1);
    assert_eq!(deliveries[1]["user_id"], "user_8fk2Qa");

    let run = billingctl(&db, &["deliveries", "list", "--status", "failed"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("ID"), "{}", run.stdout);
    assert!(
        run.stdout.contains("chg_Wp3Hs8Jd6Fg2Yc5E"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("chg_Lq7Zx2Vb9Nm4Kt1R"),
        "{}",
        run.stdout
    );

    let replayed = billingctl(&db, &["--json", "deliveries", "replay", "--failed"]).json();
    assert_eq!(replayed["replayed"], 1);
    let pending = billingctl(
        &db,
        &["--json", "deliveries", "list", "--status", "pending"],
    )
    .json();
    let pending = pending["deliveries"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["change_id"], "chg_Wp3Hs8Jd6Fg2Yc5E");
    assert!(pending[0]["next_attempt_at"].is_string());
    // Due now: the pusher's next round takes it.
    let due = store
        .due_pushes(endpoint, Utc::now() + TimeDelta::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].failures, 0, "a replay resets the failure count");
    assert_eq!(due[0].attempts, 1);

    let run = billingctl(&db, &["--json", "deliveries", "replay", "987654321"]);
    assert_eq!(
        (run.code, run.json()["error"]["code"].as_str()),
        (1, Some("not_found"))
    );
    assert_eq!(billingctl(&db, &["deliveries", "replay"]).code, 2);
}

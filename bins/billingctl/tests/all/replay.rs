//! `events replay`: stored payloads re-applied through the server's ingest, each outcome said.

use billing_ports::{Backoff, BillingStore, Failure, FailureKind, NewEvent};
use billing_store_diesel::testing::TestDatabase;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::support::{billingctl, event_id};

/// A basil fixture of billing-stripe under a fresh event id, stored as failed (`kind`) the
/// way a delivery that could not be applied leaves it.
async fn failed_fixture(db: &TestDatabase, fixture: &str, kind: FailureKind) -> String {
    let path = format!(
        "{}/../../crates/billing-stripe/tests/fixtures/basil/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let id = event_id();
    body["id"] = Value::String(id.clone());
    let created = DateTime::from_timestamp(body["created"].as_i64().unwrap(), 0).unwrap();
    let received = Utc::now() - TimeDelta::minutes(10);
    let event = NewEvent {
        id: id.clone(),
        event_type: body["type"].as_str().unwrap().to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: false,
        created,
        payload: body.to_string(),
        received_at: received,
    };
    let failure = Failure {
        error: "store: database unavailable: connection refused",
        kind,
        backoff: Backoff::default(),
    };
    db.store()
        .record_failure(&event, &failure, received)
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_event_applies_once_and_again_is_a_duplicate() {
    let db = TestDatabase::postgres().await;
    let id = failed_fixture(&db, "customer.subscription.created", FailureKind::Transient).await;

    let run = billingctl(&db, &["events", "replay", &id]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let row = run.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("applied"), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 applied, 0 ignored"),
        "{}",
        run.stdout
    );
    let shown = billingctl(&db, &["--json", "events", "show", &id]).json();
    assert_eq!(shown["status"], "processed");

    let again = billingctl(&db, &["--json", "events", "replay", &id]).json();
    assert_eq!(again["events"][0]["outcome"], "duplicate");
    assert_eq!(again["events"][0]["status"], "processed");
    assert_eq!(again["counts"]["duplicate"], 1);
    assert_eq!(again["counts"]["applied"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_failed_event_says_what_became_of_each_and_fails_when_one_still_fails() {
    let db = TestDatabase::postgres().await;
    let good = failed_fixture(&db, "invoice.paid", FailureKind::Transient).await;
    let also_good = failed_fixture(&db, "customer.created", FailureKind::Permanent).await;
    // A stored body no release can read: its replay fails again, permanently.
    let broken = crate::support::stored_event(
        &db,
        "invoice.paid",
        billing_ports::EventStatus::Failed,
        TimeDelta::minutes(5),
        Some("object: missing field `amount_paid`"),
    )
    .await;

    let run = billingctl(&db, &["--json", "events", "replay", "--failed"]);
    assert_eq!(run.code, 1, "one is still failing: {}", run.stdout);
    let error = &run.json()["error"];
    assert_eq!(error["code"], "not_applied");
    assert_eq!(error["message"], "1 of 3 event(s) not applied");
    let events = error["details"]["events"].as_array().unwrap();
    let outcome = |id: &str| {
        events
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not replayed: {events:?}"))
            .clone()
    };
    assert_eq!(outcome(&good)["outcome"], "applied");
    assert_eq!(outcome(&also_good)["outcome"], "applied");
    assert_eq!(outcome(&broken)["outcome"], "failed");
    assert_eq!(outcome(&broken)["failure_kind"], "permanent");
    assert_eq!(error["details"]["counts"]["failed"], 1);

    // The applied ones are done; only the broken one is left, with one more attempt.
    let failed = billingctl(&db, &["--json", "events", "list", "--status", "failed"]).json();
    let failed = failed["events"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], broken.as_str());
    assert_eq!(failed[0]["attempts"], 2);

    let run = billingctl(&db, &["events", "replay", "evt_1QnotStoredAnywhere0000x"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("not_found"), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 1 event(s) not applied"),
        "{}",
        run.stderr
    );

    let run = billingctl(&db, &["events", "replay"]);
    assert_eq!(run.code, 2, "ids or --failed are required: {}", run.stderr);
}

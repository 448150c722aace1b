//! The server's scheduled jobs as `Server::run` starts them: the reconciliation job catches up a
//! missed event from Stripe's Events API on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_http::{JobSchedule, JobSettings, Settings};
use billing_ports::{BillingStore, EventStatus, ListedEvent};
use billing_store_diesel::testing::TestDatabase;

use crate::helpers::{Limits, fake_gateway, settings, spawn_server, subscription_event};

#[actix_web::test]
async fn the_scheduled_reconciliation_applies_an_event_no_webhook_delivered() {
    let db = TestDatabase::postgres().await;
    let stripe = fake_gateway();
    // An event Stripe has but never delivered (the endpoint was down).
    let created = chrono::Utc::now().timestamp() - 120;
    let missed = subscription_event(
        "evt_1QhR3mXk8VbT2nYw5cLp9Zd4",
        "customer.subscription.created",
        "u_missed",
        "active",
        "price_pro_monthly",
        created,
    );
    let payload = missed.to_string();
    let parsed = billing_stripe::parse_event(payload.as_bytes()).unwrap();
    stripe.put_event(ListedEvent {
        payload,
        parsed: Ok(parsed),
    });
    let settings = Settings {
        jobs: JobSettings {
            reconcile: JobSchedule {
                enabled: true,
                interval: Duration::from_secs(1),
            },
            ..JobSettings::default()
        },
        ..settings(Limits::default())
    };
    let app = spawn_server(
        settings,
        db.store().clone(),
        None,
        Arc::new(stripe.clone()),
        stripe,
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored = db
            .store()
            .event("evt_1QhR3mXk8VbT2nYw5cLp9Zd4")
            .await
            .unwrap();
        if stored.is_some_and(|e| e.status == EventStatus::Processed) {
            break;
        }
        assert!(Instant::now() < deadline, "the job never applied the event");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = app.get_text("/metrics").await;
    let runs = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"billing_job_runs_total{job="reconcile",outcome="success"} "#)
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(runs >= 1, "{metrics}");
    let last = metrics
        .lines()
        .find_map(|l| l.strip_prefix("billing_reconcile_last_success_timestamp_seconds "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(last > 0.0, "{metrics}");
}

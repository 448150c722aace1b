//! The server's scheduled jobs as `Server::run` starts them: the reconciliation job catches up a
//! missed event from Stripe's Events API on its own; the retention job purges the change feed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_http::{JobSchedule, JobSettings, Settings};
use billing_ports::{BillingStore, EventStatus, FeedStore, ListedEvent};
use billing_store_diesel::testing::TestDatabase;

use billing_ports::testing::FakeGateway;

use crate::helpers::{
    Limits, TestApp, fake_gateway, settings, spawn_server, subscribe, subscription_event,
};

/// A job switched on, every second.
const EVERY_SECOND: JobSchedule = JobSchedule {
    enabled: true,
    interval: Duration::from_secs(1),
};

/// The server over `db` with `settings` and these `jobs`, Stripe being `stripe`.
async fn spawn_with_jobs(
    db: &TestDatabase,
    stripe: FakeGateway,
    jobs: JobSettings,
    settings: Settings,
) -> TestApp {
    let settings = Settings { jobs, ..settings };
    let gateway = Arc::new(stripe.clone());
    spawn_server(settings, db.store().clone(), None, gateway, stripe).await
}

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
    let jobs = JobSettings {
        reconcile: EVERY_SECOND,
        ..JobSettings::default()
    };
    let app = spawn_with_jobs(&db, stripe, jobs, settings(Limits::default())).await;

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

#[actix_web::test]
async fn the_retention_job_purges_the_change_feed() {
    let db = TestDatabase::postgres().await;
    let jobs = JobSettings {
        retention: EVERY_SECOND,
        ..JobSettings::default()
    };
    let settings = Settings {
        // Every record is past it as soon as it is written.
        change_retention: chrono::TimeDelta::zero(),
        ..settings(Limits::default())
    };
    let app = spawn_with_jobs(&db, fake_gateway(), jobs, settings).await;
    subscribe(&app, "RetainJob", 2).await;

    // Four records (numbered by this first read); the job's next run keeps the newest alone,
    // and the first cursor expires.
    assert_eq!(app.get("/v1/changes").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = app.get("/v1/changes?after=1").await;
        if status == 410 {
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the job never purged the feed");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, page) = app.get("/v1/changes").await;
    let kept: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["4"]);
    assert_eq!(db.store().change_horizon().await.unwrap(), 3);
}

//! Two servers on one Postgres database, as two replicas run: a webhook applied by one shows
//! in the other's next answer through the gate channel, long before the gate cache's time to
//! live (an hour here), and the channel's metrics say so.

use std::time::{Duration, Instant};

use billing_store_diesel::testing::TestDatabase;

use crate::helpers::{spawn_replica, subscription_event};

/// Reads one unlabelled series' value from a `/metrics` text.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[actix_web::test]
async fn a_webhook_on_one_replica_shows_on_the_other_and_is_counted() {
    let db = TestDatabase::postgres().await;
    let hour = Duration::from_secs(3600);
    let a = spawn_replica(db.store().clone(), hour).await;
    let b = spawn_replica(db.store().clone(), hour).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    // Both channels are up (the recorder is the process's: both servers share the gauge, so
    // count the connections too). Should B's LISTEN still come after A's notification, B
    // flushes its cache when it starts listening, which shows the change all the same.
    while value(
        &b.get_text("/metrics").await.1,
        "billing_gate_channel_listening",
    ) != Some(1.0)
        || gate_connections(&db).await < 2
    {
        assert!(Instant::now() < deadline, "the gate channels do not listen");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    let (_, before) = b.get("/v1/users/u_rep/entitlements").await;
    assert_eq!(before["tier"], "FREE", "{before}");
    let event = subscription_event(
        "evt_rep_1",
        "customer.subscription.created",
        "u_rep",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    assert_eq!(a.webhook(&event).await.0, 200);
    loop {
        let (_, now) = b.get("/v1/users/u_rep/entitlements").await;
        if now["tier"] == "PRO" {
            break;
        }
        assert!(Instant::now() < deadline, "B still answers {now}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = b.get_text("/metrics").await.1;
    assert!(
        value(&metrics, "billing_gate_notifications_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("billing_gate_channel_reconnects_total 0"),
        "{metrics}"
    );
}

/// The gate channels connected to the test's database.
async fn gate_connections(db: &TestDatabase) -> i64 {
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = actix_web::rt::spawn(connection);
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
            &[&billing_store_diesel::GateChannel::APPLICATION_NAME],
        )
        .await
        .unwrap()
        .get(0);
    drop(client);
    let _ = driver.await;
    count
}

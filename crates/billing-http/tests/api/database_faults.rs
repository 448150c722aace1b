//! A stalled or failing database: the server answers 503 within its limits (never 2xx for a
//! webhook), `/readyz` within its own 2 s, and it recovers without a restart. The stall is a
//! freezable TCP proxy in front of the shared Postgres server, which is never stopped.

use std::time::{Duration, Instant};

use billing_store_diesel::testing::{FreezableProxy, TestDatabase};
use billing_store_diesel::{DieselStore, StoreSettings};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::helpers::{Limits, quick_store_settings, spawn_with_limits, subscription_event};

fn event(n: u32) -> Value {
    subscription_event(
        &format!("evt_1QfZ8aStall{n:04}"),
        "customer.subscription.created",
        &format!("u_stall_{n}"),
        "active",
        "price_pro_monthly",
        1_700_000_000 + i64::from(n),
    )
}

/// `future`'s output and how long it took.
async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = future.await;
    (answer, started.elapsed())
}

#[actix_web::test]
async fn a_frozen_database_answers_503_within_the_limits_and_recovers_without_restart() {
    let db = TestDatabase::postgres().await;
    let proxy = FreezableProxy::start(db.url()).await;
    let settings = quick_store_settings();
    let store = DieselStore::connect_with(&proxy.url(db.url()), settings).unwrap();
    let app = spawn_with_limits(store, Some(db), Limits::default()).await;
    assert_eq!(app.webhook(&event(0)).await.0, 200);
    assert_eq!(app.get("/v1/users/u_stall_0/entitlements").await.0, 200);
    assert_eq!(app.get_text("/readyz").await.0, 200);

    proxy.freeze();
    // Webhook: the unit of work (call limit) plus recording the failure (pool timeout).
    let webhook_bound = settings.call_limit() + settings.pool_timeout + Duration::from_millis(500);
    let api_bound = settings.call_limit() + Duration::from_millis(500);
    let webhooks = futures_util::future::join_all((1..=4).map(|n| {
        let app = &app;
        timed(async move { app.webhook(&event(n)).await })
    }));
    let reads = futures_util::future::join_all((1..=4).map(|n| {
        let app = &app;
        timed(async move {
            app.get(&format!("/v1/users/u_stall_{n}/entitlements"))
                .await
        })
    }));
    let ready = futures_util::future::join_all((0..2).map(|_| {
        let app = &app;
        timed(async move {
            let (status, text) = app.get_text("/readyz").await;
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        })
    }));
    let (webhooks, reads, ready) = futures_util::join!(webhooks, reads, ready);
    for ((status, body), took) in &webhooks {
        assert_eq!(
            (*status, body["error"]["code"].as_str()),
            (503, Some("database_unavailable")),
            "{body}"
        );
        assert!(
            took <= &webhook_bound,
            "a webhook took {took:?} (bound {webhook_bound:?})"
        );
    }
    for ((status, body), took) in &reads {
        assert_eq!(
            (*status, body["error"]["code"].as_str()),
            (503, Some("database_unavailable")),
            "{body}"
        );
        assert!(
            took <= &api_bound,
            "entitlements took {took:?} (bound {api_bound:?})"
        );
    }
    for ((status, body), took) in &ready {
        assert_eq!(*status, 503);
        assert_eq!(
            body,
            &json!({"error": {"code": "not_ready", "message": "not ready"}})
        );
        assert!(took <= &(api_bound.min(Duration::from_secs(2)) + Duration::from_millis(300)));
    }
    let slowest = |answers: &[(_, Duration)]| answers.iter().map(|a| a.1).max().unwrap();
    eprintln!(
        "frozen: webhook 503 in at most {:?}, entitlements 503 in at most {:?}, readyz 503 in at most {:?}",
        slowest(&webhooks),
        slowest(&reads),
        slowest(&ready)
    );

    proxy.thaw();
    let started = Instant::now();
    assert_eq!(app.get_text("/readyz").await.0, 200);
    // Nothing of the refused deliveries was committed: Stripe's retry applies them now.
    assert_eq!(
        app.webhook(&event(1)).await,
        (200, json!({"received": true}))
    );
    let (status, body) = app.get("/v1/users/u_stall_1/entitlements").await;
    assert_eq!((status, body["tier"].as_str()), (200, Some("PRO")));
    eprintln!("thawed: serving again after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[actix_web::test]
async fn readiness_answers_within_its_own_two_seconds_whatever_the_store_waits() {
    let db = TestDatabase::postgres().await;
    let proxy = FreezableProxy::start(db.url()).await;
    let patient = StoreSettings {
        max_connections: 2,
        pool_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(20),
        recycle_timeout: Duration::from_secs(20),
        statement_timeout: Duration::from_secs(30),
        ..StoreSettings::default()
    };
    let store = DieselStore::connect_with(&proxy.url(db.url()), patient).unwrap();
    let app = spawn_with_limits(store, Some(db), Limits::default()).await;
    assert_eq!(app.get_text("/readyz").await.0, 200);
    proxy.freeze();
    let started = Instant::now();
    let (status, body) = app.get_text("/readyz").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": {"code": "not_ready", "message": "not ready"}})
    );
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_millis(2500),
        "readyz took {took:?}"
    );
    eprintln!("readyz with a patient store: 503 after {took:?}");
    proxy.thaw();
}

/// The pid of the backend of `database` waiting on a lock, once there is one.
async fn waiting_backend(admin: &mut AsyncPgConnection, database: &str) -> i32 {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    for _ in 0..300 {
        let pids: Vec<Pid> = diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind::<Text, _>(database)
        .load(admin)
        .await
        .unwrap();
        if let Some(p) = pids.into_iter().next() {
            return p.pid;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no backend started waiting on the lock");
}

#[actix_web::test]
async fn a_backend_terminated_in_the_middle_of_a_usage_consume_answers_503_not_500() {
    let db = TestDatabase::postgres().await;
    let url = db.url().to_owned();
    let store = DieselStore::connect_with(&url, quick_store_settings()).unwrap();
    let app = spawn_with_limits(store, Some(db), Limits::default()).await;
    // Another session keeps every writer out of the counters (readers still pass); the
    // request's consume statement waits for it.
    let mut holder = AsyncPgConnection::establish(&url).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE usage_counters IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "term-1"});
    let request = app.post("/v1/users/u_1QfZ8aTerm/usage", &usage, &[]);
    let terminate = async {
        let mut admin = AsyncPgConnection::establish(&url).await.unwrap();
        let database = url.rsplit('/').next().unwrap().to_owned();
        let pid = waiting_backend(&mut admin, &database).await;
        // SQLSTATE 57P01, "terminating connection due to administrator command".
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
            .execute(&mut admin)
            .await
            .unwrap();
    };
    let ((status, body), ()) = futures_util::join!(request, terminate);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    // The retry goes through and counts once.
    let (status, body) = app
        .post(
            "/v1/users/u_1QfZ8aTerm/usage",
            &json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "term-1"}),
            &[],
        )
        .await;
    assert_eq!((status, &body["used"]), (200, &json!(1)), "{body}");
}

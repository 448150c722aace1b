//! The usage consume through the application: the limit of the user's tier (from the gate
//! cache), idempotency keys, concurrency, and the metering period's rollover.

use std::sync::Arc;

use billing_app::{AppError, AppSettings, BillingApp};
use billing_ports::ManualClock;
use billing_store_diesel::DieselStore;
use chrono::TimeDelta;
use futures_util::future::join_all;

use crate::support::{self, app};

on_both_backends!(
    concurrent_consumes_of_one_user_stop_at_the_limit_and_show_at_once,
    concurrent_requests_with_one_key_count_once_and_get_one_answer,
    replays_return_the_first_answer_allowed_or_denied,
    a_new_period_starts_from_zero,
);

async fn concurrent_consumes_of_one_user_stop_at_the_limit_and_show_at_once(store: DieselStore) {
    let app = app(store);
    // Cached as a free user (100 api_calls a month) before the burst.
    assert_eq!(
        app.entitlements("user_burst").await.unwrap().usage["api_calls"],
        0
    );
    let answers = join_all((0..64).map(|n| {
        let app = &app;
        async move {
            app.record_usage("user_burst", "api_calls", 3, &format!("req_{n}"))
                .await
                .unwrap()
        }
    }))
    .await;
    let allowed = answers.iter().filter(|a| a.allowed).count() as u64;
    // 33 × 3 = 99 fit; the 34th would pass 100.
    assert_eq!(allowed, 33);
    for answer in &answers {
        assert_eq!(answer.limit, Some(100));
        assert!(answer.used <= 100, "{answer:?}");
        if !answer.allowed {
            assert!(answer.used + 3 > 100, "{answer:?}");
        }
    }
    // Read-your-writes: this replica's next check shows every counted consume.
    assert_eq!(
        app.entitlements("user_burst").await.unwrap().usage["api_calls"],
        99
    );
}

async fn concurrent_requests_with_one_key_count_once_and_get_one_answer(store: DieselStore) {
    let app = app(store);
    let answers = join_all((0..16).map(|_| {
        let app = &app;
        async move {
            app.record_usage("user_once", "ai_generations", 4, "gen-1")
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    for answer in &answers {
        assert_eq!((answer.allowed, answer.used), (true, 4), "{answer:?}");
    }
    assert_eq!(
        app.entitlements("user_once").await.unwrap().usage["ai_generations"],
        4
    );
}

async fn replays_return_the_first_answer_allowed_or_denied(store: DieselStore) {
    let app = app(store);
    let first = app
        .record_usage("user_replay", "ai_generations", 8, "a")
        .await
        .unwrap();
    assert!(first.allowed && !first.replayed);
    // The free tier allows 10: 3 more is denied, and stays denied when replayed even after
    // room would exist (another key asks for less).
    let denied = app
        .record_usage("user_replay", "ai_generations", 3, "b")
        .await
        .unwrap();
    assert_eq!((denied.allowed, denied.used), (false, 8));
    let fits = app
        .record_usage("user_replay", "ai_generations", 2, "c")
        .await
        .unwrap();
    assert_eq!(
        (fits.allowed, fits.used, fits.remaining),
        (true, 10, Some(0))
    );
    let again = app
        .record_usage("user_replay", "ai_generations", 3, "b")
        .await
        .unwrap();
    assert_eq!(again, denied_replayed(&denied));
    let again = app
        .record_usage("user_replay", "ai_generations", 8, "a")
        .await
        .unwrap();
    assert_eq!((again.allowed, again.used, again.replayed), (true, 8, true));
    // The same key for another quantity or metric is a conflict, and counts nothing.
    for (metric, quantity) in [("ai_generations", 1), ("api_calls", 8)] {
        let conflict = app.record_usage("user_replay", metric, quantity, "a").await;
        assert!(
            matches!(conflict, Err(AppError::IdempotencyConflict(_))),
            "{conflict:?}"
        );
    }
    let now = app.entitlements("user_replay").await.unwrap();
    assert_eq!(
        (now.usage["ai_generations"], now.usage["api_calls"]),
        (10, 0)
    );
}

fn denied_replayed(denied: &billing_app::UsageOutcome) -> billing_app::UsageOutcome {
    billing_app::UsageOutcome {
        replayed: true,
        ..denied.clone()
    }
}

async fn a_new_period_starts_from_zero(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(support::t0()));
    let app = BillingApp::new(
        Arc::new(store),
        support::catalog(),
        Arc::clone(&clock) as Arc<dyn billing_ports::Clock>,
        None,
        AppSettings::default(),
    );
    let full = app
        .record_usage("user_month", "api_calls", 100, "january")
        .await
        .unwrap();
    assert!(full.allowed);
    let denied = app
        .record_usage("user_month", "api_calls", 1, "january-more")
        .await
        .unwrap();
    assert!(!denied.allowed);
    // The cached entry is still fresh, but its period has ended.
    clock.set(full.period_end + TimeDelta::seconds(1));
    let next = app
        .record_usage("user_month", "api_calls", 30, "february")
        .await
        .unwrap();
    assert_eq!(
        (next.allowed, next.used, next.remaining),
        (true, 30, Some(70))
    );
    assert!(next.period_end > full.period_end);
    assert_eq!(
        app.entitlements("user_month").await.unwrap().usage["api_calls"],
        30
    );
}

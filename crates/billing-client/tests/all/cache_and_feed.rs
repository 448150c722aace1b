//! The change feed as a stream and the entitlement cache it invalidates, against wiremock
//! serving pages of the feed's wire shape (docs: FEED-WIRE).

use std::pin::pin;
use std::time::Duration;

use billing_client::{ChangeKind, Error};
use futures_util::StreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, random_id};

fn record(cursor: &str, user: &str) -> Value {
    json!({
        "cursor": cursor, "id": random_id("chg"), "user_id": user, "customer_id": random_id("cus"),
        "kind": "tier_changed",
        "before": {"tier": "FREE", "status": null, "reason": "no_subscription",
                   "grace_period_end": null, "credits": 0},
        "after": {"tier": "PRO", "status": "active", "reason": "active",
                  "grace_period_end": null, "credits": 1000},
        "amount": null, "stripe_event_id": random_id("evt"), "created_at": "2026-12-06T02:15:00Z",
    })
}

fn page(changes: Vec<Value>, next: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"changes": changes, "next_cursor": next}))
}

/// An empty page after `after`, held briefly as a long-poll would be.
async fn quiet_after(mock: &MockServer, after: &str) {
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param("after", after))
        .respond_with(page(vec![], after).set_delay(Duration::from_millis(50)))
        .mount(mock)
        .await;
}

fn entitlements_json(user: &str, tier: &str) -> Value {
    json!({
        "user_id": user, "tier": tier, "reason": "active", "status": "active",
        "subscription_id": format!("sub_{user}"), "features": {"custom_domain": tier != "FREE"},
        "limits": {"api_calls": 100}, "usage": {},
        "usage_period": {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
        "credits": 0, "period_end": "2027-01-01T00:00:00Z", "grace_period_end": null,
        "trial_end": null, "cancel_at_period_end": false,
    })
}

#[tokio::test]
async fn the_stream_reads_every_page_in_order_and_resumes_from_a_kept_cursor() {
    let mock = MockServer::start().await;
    let (a, b) = (random_id("user"), random_id("user"));
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param_is_missing("after"))
        .and(query_param("limit", "500"))
        .and(query_param("wait", "1"))
        .respond_with(page(vec![record("c1", &a), record("c2", &b)], "c2"))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param("after", "c2"))
        .respond_with(page(vec![record("c3", &a)], "c3"))
        .mount(&mock)
        .await;
    quiet_after(&mock, "c3").await;
    let billing = client(&mock.uri())
        .changes_wait(Duration::from_secs(1))
        .build()
        .unwrap();

    let records: Vec<_> = billing.changes_stream(None).take(3).collect().await;
    let seen: Vec<_> = records
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.kind, ChangeKind::TierChanged);
            (r.cursor, r.user_id.unwrap())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("c1".to_owned(), a.clone()),
            ("c2".to_owned(), b.clone()),
            ("c3".to_owned(), a.clone())
        ]
    );

    // A caller that kept "c2" resumes after it.
    let mut resumed = pin!(billing.changes_stream(Some("c2".into())));
    let next = resumed.next().await.unwrap().unwrap();
    assert_eq!(
        (next.cursor.as_str(), next.user_id.as_deref()),
        ("c3", Some(a.as_str()))
    );
    // Then it long-polls: nothing more within a few empty pages.
    let more = tokio::time::timeout(Duration::from_millis(300), resumed.next()).await;
    assert!(more.is_err(), "{more:?}");

    // One page call, as the stream makes them.
    let page = billing.changes(Some("c2"), Some(10), None).await.unwrap();
    assert_eq!(page.next_cursor, "c3");
    assert_eq!(page.changes.len(), 1);
}

#[tokio::test]
async fn an_unknown_cursor_ends_the_stream_and_an_outage_does_not() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("after", "gone"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "invalid_cursor", "message": "cursor \"gone\" is not in the feed"}
        })))
        .mount(&mock)
        .await;
    let user = random_id("user");
    Mock::given(method("GET"))
        .and(query_param("after", "c5"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(query_param("after", "c5"))
        .respond_with(page(vec![record("c6", &user)], "c6"))
        .mount(&mock)
        .await;
    quiet_after(&mock, "c6").await;
    let billing = client(&mock.uri()).retries(0).build().unwrap();

    let items: Vec<_> = billing.changes_stream(Some("gone".into())).collect().await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Err(Error::InvalidInput { code, .. }) if code == "invalid_cursor"),
        "{items:?}"
    );

    let mut feed = pin!(billing.changes_stream(Some("c5".into())));
    let first = feed.next().await.unwrap();
    assert!(
        matches!(
            first,
            Err(Error::Unavailable {
                status: Some(503),
                ..
            })
        ),
        "{first:?}"
    );
    let second = feed.next().await.unwrap().unwrap();
    assert_eq!(second.cursor, "c6");
}

#[tokio::test]
async fn the_cache_answers_until_the_feed_or_a_consume_forgets_the_user() {
    let mock = MockServer::start().await;
    let (a, b) = (random_id("user"), random_id("user"));
    for user in [&a, &b] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/users/{user}/entitlements")))
            .respond_with(ResponseTemplate::new(200).set_body_json(entitlements_json(user, "PRO")))
            .mount(&mock)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(format!("/v1/users/{b}/usage")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "allowed": true, "used": 1, "limit": 100, "remaining": 99,
            "period_end": "2027-01-01T00:00:00Z", "replayed": false,
        })))
        .mount(&mock)
        .await;
    quiet_after(&mock, "c0").await;
    let billing = client(&mock.uri())
        .cache(Duration::from_secs(60))
        .build()
        .unwrap();
    let fetches = |user: String| {
        let mock = &mock;
        async move {
            let route = format!("/v1/users/{user}/entitlements");
            mock.received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == route)
                .count()
        }
    };

    // Misses fill the cache; hits (entitlements and feature checks) ask nothing.
    for user in [&a, &b] {
        billing.entitlements(user).await.unwrap();
        billing.entitlements(user).await.unwrap();
        let answer = billing.feature(user, "custom_domain").await.unwrap();
        assert!(answer.allowed);
        let unknown = billing.feature(user, "teleportation").await.unwrap_err();
        assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");
        assert_eq!(fetches(user.clone()).await, 1);
    }

    // A consume forgets its user.
    billing
        .consume(&b, "api_calls", 1, &random_id("usage"))
        .await
        .unwrap();
    billing.entitlements(&b).await.unwrap();
    assert_eq!(fetches(b.clone()).await, 2);

    // The feed: a change of user A forgets A, and only A.
    let task = billing.spawn_cache_invalidation(Some("c0".into())).unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    billing.entitlements(&a).await.unwrap();
    assert_eq!(fetches(a.clone()).await, 1, "no change yet: still cached");
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param("after", "c0"))
        .respond_with(page(vec![record("c1", &a)], "c1"))
        .with_priority(1)
        .mount(&mock)
        .await;
    quiet_after(&mock, "c1").await;
    let refetched = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            billing.entitlements(&a).await.unwrap();
            if fetches(a.clone()).await == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refetched.is_ok(), "the feed's record did not forget user A");
    billing.entitlements(&b).await.unwrap();
    assert_eq!(fetches(b.clone()).await, 2, "B had no change: still cached");
    task.abort();

    // Without a cache there is nothing to invalidate.
    let uncached = client(&mock.uri()).build().unwrap();
    assert!(uncached.spawn_cache_invalidation(None).is_none());
}

#[tokio::test]
async fn an_expired_cursor_forgets_the_cache_and_reads_the_feed_from_the_start() {
    let mock = MockServer::start().await;
    let user = random_id("user");
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{user}/entitlements")))
        .respond_with(ResponseTemplate::new(200).set_body_json(entitlements_json(&user, "PRO")))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param("after", "17"))
        .respond_with(ResponseTemplate::new(410).set_body_json(json!({
            "error": {"code": "cursor_expired",
                      "message": "cursor 17 is before the feed's retention horizon 4096"}
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/changes"))
        .and(query_param_is_missing("after"))
        .respond_with(page(vec![], "5012"))
        .mount(&mock)
        .await;
    quiet_after(&mock, "5012").await;
    let billing = client(&mock.uri())
        .cache(Duration::from_secs(60))
        .build()
        .unwrap();

    // The stream yields the typed error, then ends.
    let items: Vec<_> = billing.changes_stream(Some("17".into())).collect().await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Err(Error::CursorExpired { message }) if message.contains("4096")),
        "{items:?}"
    );
    assert!(!items[0].as_ref().unwrap_err().is_retryable());

    // The invalidation task forgets every cached user (changes it never heard of may concern
    // any of them) and goes on from the start of what the server keeps.
    billing.entitlements(&user).await.unwrap();
    let task = billing.spawn_cache_invalidation(Some("17".into())).unwrap();
    let from_start = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let requests = mock.received_requests().await.unwrap();
            if requests.iter().any(|r| {
                r.url.path() == "/v1/changes"
                    && r.url
                        .query_pairs()
                        .any(|(k, v)| k == "after" && v == "5012")
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        from_start.is_ok(),
        "the task did not read on from the start"
    );
    billing.entitlements(&user).await.unwrap();
    let fetches = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == format!("/v1/users/{user}/entitlements"))
        .count();
    assert_eq!(fetches, 2, "the cache was forgotten");
    assert!(!task.is_finished(), "the task follows the feed on");
    task.abort();
}

//! `GET /v1/changes`: the change feed over HTTP — pages after a cursor, refused cursors and
//! limits, a long poll answered when a change commits or the server stops, and a record's
//! wire shape.

use std::time::{Duration, Instant};

use serde_json::Value;

use billing_ports::{ChangePurge, FeedStore};

use crate::helpers::{TestApp, spawn_app, subscribe, subscription_event};

fn kinds(page: &Value) -> Vec<&str> {
    page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect()
}

/// A long poll of the feed after `cursor`, waiting up to `wait_secs`, in flight on a task of
/// its own: how long it took, its status and its body.
fn long_poll(
    app: &TestApp,
    cursor: &str,
    wait_secs: u64,
) -> actix_web::rt::task::JoinHandle<(Duration, u16, Value)> {
    let client = app.client.clone();
    let url = format!("{}/v1/changes?after={cursor}&wait={wait_secs}", app.address);
    actix_web::rt::spawn(async move {
        let started = Instant::now();
        let mut response = client
            .get(url)
            .insert_header((
                "Authorization",
                format!("Bearer {}", crate::helpers::API_KEY),
            ))
            .timeout(Duration::from_secs(wait_secs + 30))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (started.elapsed(), status, body)
    })
}

#[actix_web::test]
async fn records_are_paged_after_a_cursor_in_commit_order() {
    let app = spawn_app().await;
    let (status, empty) = app.get("/v1/changes").await;
    assert_eq!(status, 200);
    assert_eq!(empty["changes"], serde_json::json!([]));
    let head = empty["next_cursor"].as_str().unwrap().to_owned();

    for (n, user) in ["u_feed_a", "u_feed_b"].into_iter().enumerate() {
        let event = subscription_event(
            &format!("evt_1QfeedPaging0000000{n}"),
            "customer.subscription.created",
            user,
            "active",
            "price_pro_monthly",
            1_700_000_000,
        );
        assert_eq!(app.webhook(&event).await.0, 200);
    }
    let (status, all) = app.get(&format!("/v1/changes?after={head}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        kinds(&all),
        [
            "tier_changed",
            "status_changed",
            "tier_changed",
            "status_changed"
        ]
    );
    let first = &all["changes"][0];
    assert_eq!(first["user_id"], "u_feed_a");
    assert_eq!(first["customer_id"], "cus_u_feed_a");
    assert_eq!(first["stripe_event_id"], "evt_1QfeedPaging00000000");
    assert!(first["id"].as_str().unwrap().starts_with("chg_"));
    assert_eq!(first["amount"], Value::Null);
    assert_eq!(
        first["before"],
        serde_json::json!({"tier": "FREE", "status": null, "reason": "no_subscription",
                           "grace_period_end": null, "credits": 0})
    );
    assert_eq!(first["after"]["tier"], "PRO");
    assert_eq!(first["after"]["status"], "active");
    // The last `after` is what the entitlements answer.
    let (_, entitlements) = app.get("/v1/users/u_feed_a/entitlements").await;
    assert_eq!(all["changes"][1]["after"]["reason"], entitlements["reason"]);

    // Two at a time: the same records, the cursor moving on.
    let (_, page1) = app.get(&format!("/v1/changes?after={head}&limit=2")).await;
    assert_eq!(page1["changes"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    assert_eq!(cursor, page1["changes"][1]["cursor"].as_str().unwrap());
    let (_, page2) = app
        .get(&format!("/v1/changes?after={cursor}&limit=2"))
        .await;
    assert_eq!(page2["changes"][0], all["changes"][2]);
    assert_eq!(page2["changes"][1], all["changes"][3]);
    let last = page2["next_cursor"].as_str().unwrap();
    let (_, end) = app.get(&format!("/v1/changes?after={last}")).await;
    assert_eq!(end["changes"], serde_json::json!([]));
    assert_eq!(end["next_cursor"], last);

    // A redelivery writes nothing.
    let again = subscription_event(
        "evt_1QfeedPaging00000000",
        "customer.subscription.created",
        "u_feed_a",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    app.webhook(&again).await;
    let (_, after_duplicate) = app.get(&format!("/v1/changes?after={last}")).await;
    assert_eq!(after_duplicate["changes"], serde_json::json!([]));
}

#[actix_web::test]
async fn a_cursor_before_the_retention_horizon_is_expired() {
    let app = spawn_app().await;
    subscribe(&app, "RetainFeed", 3).await;
    let (_, all) = app.get("/v1/changes").await;
    let cursors: Vec<i64> = all["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(cursors.len(), 6);
    let (first, last) = (cursors[0], cursors[5]);
    // Everything is past a retention ending tomorrow: all but the newest record goes.
    let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
    let purged = app.store.purge_changes(tomorrow, 1_000).await.unwrap();
    assert_eq!(
        purged,
        ChangePurge {
            horizon: last - 1,
            advanced: true,
            changes: 5,
            deliveries: 0
        }
    );

    for cursor in [first, last - 2] {
        let (status, body) = app.get(&format!("/v1/changes?after={cursor}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (410, Some("cursor_expired")),
            "{cursor}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("horizon {}", last - 1)),
            "{body}"
        );
    }
    // At the horizon nothing after it is lost; no cursor (or 0) starts there.
    for query in [
        format!("after={}", last - 1),
        String::new(),
        "after=0".into(),
    ] {
        let (status, page) = app.get(&format!("/v1/changes?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(page["changes"].as_array().unwrap().len(), 1, "{query}");
        assert_eq!(page["changes"][0], all["changes"][5], "{query}");
    }
    let (status, body) = app.get(&format!("/v1/changes?after={}", last + 1)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    // The numbering goes on from the newest record kept.
    subscribe(&app, "RetainMore", 1).await;
    let (_, more) = app.get(&format!("/v1/changes?after={last}")).await;
    assert_eq!(more["changes"][0]["cursor"], (last + 1).to_string());
}

#[actix_web::test]
async fn a_bad_cursor_limit_or_wait_is_refused() {
    let app = spawn_app().await;
    for (query, code) in [
        ("after=abc", "invalid_cursor"),
        ("after=-1", "invalid_cursor"),
        ("after=99", "invalid_cursor"),
        ("after=99999999999999999999999", "invalid_cursor"),
        ("limit=0", "invalid_input"),
        ("limit=1001", "invalid_input"),
        ("limit=ten", "invalid_input"),
        ("wait=61", "invalid_input"),
        ("wait=5m", "invalid_input"),
    ] {
        let (status, body) = app.get(&format!("/v1/changes?{query}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }
    let (status, body) = app.get("/v1/changes?after=0&limit=1000&wait=0s").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.get_text("/v1/changes").await;
    assert_eq!(status, 401, "the bearer key is required");
}

#[actix_web::test]
async fn a_long_poll_answers_when_a_change_commits() {
    let app = spawn_app().await;
    let (_, empty) = app.get("/v1/changes").await;
    let head = empty["next_cursor"].as_str().unwrap().to_owned();

    // Nothing commits: the wait runs out and the page is empty.
    let started = Instant::now();
    let (status, page) = app.get(&format!("/v1/changes?after={head}&wait=1")).await;
    assert_eq!(status, 200);
    assert_eq!(page["changes"], serde_json::json!([]));
    assert!(started.elapsed() >= Duration::from_millis(950));

    let poller = long_poll(&app, &head, 30);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let event = subscription_event(
        "evt_1QfeedLongPoll00000001",
        "customer.subscription.created",
        "u_feed_poll",
        "trialing",
        "price_pro_monthly",
        1_700_000_000,
    );
    assert_eq!(app.webhook(&event).await.0, 200);
    let (waited, status, body) = poller.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        waited < Duration::from_secs(10),
        "answered when the change committed, not at the end of the wait ({waited:?})"
    );
    assert_eq!(body["changes"][0]["user_id"], "u_feed_poll");
    assert_eq!(body["changes"][0]["after"]["status"], "trialing");
}

/// A stop (what SIGTERM does) does not wait for a long poll to run out: the poll answers at
/// once with an empty page and the server stops within seconds, not after the minute asked.
#[actix_web::test]
async fn a_stop_ends_a_long_poll_at_once() {
    let app = spawn_app().await;
    let (_, empty) = app.get("/v1/changes").await;
    let head = empty["next_cursor"].as_str().unwrap().to_owned();
    let poller = long_poll(&app, &head, 60);
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    app.stop.stop(true).await;
    let took = started.elapsed();
    let (_, status, body) = poller.await.unwrap();
    assert!(
        took < Duration::from_secs(10),
        "the stop waited for the long poll ({took:?})"
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changes"], serde_json::json!([]));
    assert_eq!(body["next_cursor"].as_str(), Some(head.as_str()));
}

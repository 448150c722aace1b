//! Listing for reconciliation: `GET /v1/events` and `GET /v1/subscriptions` against a fake that
//! pages the way Stripe does (newest first, `limit`, `starting_after`, `ending_before`,
//! `created[gte]`, `has_more`) and answers 429 when told to.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use billing_domain::Fact;
use billing_ports::{EventQuery, GatewayError, StripeGateway};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::client::support::{
    client, config, fake_stripe, field, fixture, fixture_object, query, received, stripe_error,
};

/// `prefix_` and 24 random characters of Stripe's id alphabet, never repeated.
fn stripe_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let hasher = RandomState::new();
    let mut id = format!("{prefix}_");
    while id.len() < prefix.len() + 25 {
        let bits = hasher.hash_one(DRAWS.fetch_add(1, Ordering::Relaxed));
        for shift in (0..60).step_by(6) {
            if let Some(&c) = ALPHABET.get(((bits >> shift) & 0x3f) as usize)
                && id.len() < prefix.len() + 25
            {
                id.push(char::from(c));
            }
        }
    }
    id
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 0).unwrap()
}

/// A Stripe list endpoint over `objects` (kept newest first, as Stripe lists them), answering
/// 429 to the next `throttled` requests.
struct StripeList {
    objects: Vec<Value>,
    throttled: AtomicUsize,
    pages: Mutex<Vec<String>>,
}

impl StripeList {
    fn new(mut objects: Vec<Value>) -> Self {
        // Newest first; a stable order within one second, as Stripe's.
        objects.sort_by(|a, b| b["created"].as_i64().cmp(&a["created"].as_i64()));
        Self {
            objects,
            throttled: AtomicUsize::new(0),
            pages: Mutex::new(Vec::new()),
        }
    }

    fn throttle(self, requests: usize) -> Self {
        self.throttled.store(requests, Ordering::SeqCst);
        self
    }
}

impl Respond for StripeList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self
            .throttled
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return stripe_error(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests hit the API too quickly.",
            );
        }
        let pairs = query(request);
        let limit: usize = field(&pairs, "limit").unwrap().parse().unwrap();
        let gte: i64 = field(&pairs, "created[gte]").map_or(i64::MIN, |v| v.parse().unwrap());
        let customer = field(&pairs, "customer");
        let matching: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| o["created"].as_i64().unwrap_or(0) >= gte)
            .filter(|o| customer.is_none_or(|c| o["customer"] == c))
            .collect();
        let position = |id: &str| matching.iter().position(|o| o["id"] == id);
        let (data, has_more): (Vec<&Value>, bool) = match (
            field(&pairs, "starting_after"),
            field(&pairs, "ending_before"),
        ) {
            (Some(after), None) => {
                let Some(at) = position(after) else {
                    return missing(after);
                };
                let older = &matching[at + 1..];
                (
                    older.iter().take(limit).copied().collect(),
                    older.len() > limit,
                )
            }
            (None, Some(before)) => {
                let Some(at) = position(before) else {
                    return missing(before);
                };
                let newer = &matching[..at];
                let from = newer.len().saturating_sub(limit);
                (newer[from..].to_vec(), from > 0)
            }
            (None, None) => (
                matching.iter().take(limit).copied().collect(),
                matching.len() > limit,
            ),
            (Some(_), Some(_)) => {
                return stripe_error(400, "invalid_request_error", None, "both cursors");
            }
        };
        self.pages
            .lock()
            .unwrap()
            .push(data.first().map_or(String::new(), |o| o["id"].to_string()));
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "url": request.url.path(),
            "has_more": has_more,
            "data": data,
        }))
    }
}

fn missing(id: &str) -> ResponseTemplate {
    stripe_error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such object: '{id}'"),
    )
}

/// Every webhook fixture of both stories and the real-world ones, each with a fresh event id
/// and `created` = `at(i / 3)` (three events a second), oldest first.
fn events(count: usize) -> Vec<Value> {
    let mut names = Vec::new();
    for shape in ["basil", "pre-basil", "real-world"] {
        let dir: std::path::PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", shape]
            .iter()
            .collect();
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        files.sort();
        names.extend(files.into_iter().map(|f| (shape, f)));
    }
    (0..count)
        .map(|i| {
            let (shape, name) = &names[i % names.len()];
            let mut event: Value = serde_json::from_slice(&fixture(shape, name)).unwrap();
            event["id"] = json!(stripe_id("evt"));
            // Several events share a second, as Stripe's do.
            event["created"] = json!(at(i64::try_from(i / 3).unwrap()).timestamp());
            event
        })
        .collect()
}

/// The oldest page of every event listed since `at(0)`.
async fn oldest_page(
    client: &billing_stripe::StripeClient,
) -> Result<billing_ports::EventPage, GatewayError> {
    client
        .list_events(&EventQuery {
            since: at(0),
            after: None,
        })
        .await
}

async fn serve(server: &MockServer, route: &str, list: StripeList) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(list)
        .mount(server)
        .await;
}

#[tokio::test]
async fn events_come_oldest_first_page_by_page_from_a_time_then_after_the_last_one() {
    let server = fake_stripe().await;
    let all = events(230);
    serve(&server, "/v1/events", StripeList::new(all.clone())).await;
    let client = client(&server);

    let mut asked = EventQuery {
        since: at(0),
        after: None,
    };
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.list_events(&asked).await.unwrap();
        pages += 1;
        assert!(page.events.len() <= 100);
        listed.extend(page.events.iter().cloned());
        if !page.has_more {
            break;
        }
        asked.after = Some(page.events.last().unwrap().id().to_owned());
    }
    assert_eq!(pages, 3);
    // Oldest first, each once, every one of them.
    let created: Vec<DateTime<Utc>> = listed.iter().map(|e| e.created()).collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    let mut ids: Vec<&str> = listed.iter().map(|e| e.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 230);
    // Read by the webhook parser, payload kept: every fixture parses.
    for event in &listed {
        let parsed = event.parsed.as_ref().unwrap();
        assert_eq!(
            billing_stripe::parse_event(event.payload.as_bytes()).unwrap(),
            *parsed
        );
    }
    assert!(listed.iter().any(|e| matches!(
        e.parsed.as_ref().map(|p| &p.fact),
        Ok(Fact::Subscription { .. })
    )));

    // The first call walked newest first down to the oldest page with `starting_after`; the
    // later ones went forward with `ending_before`.
    let requests = received(&server).await;
    assert_eq!(requests.len(), 5);
    for request in &requests {
        let pairs = query(request);
        assert_eq!(field(&pairs, "limit"), Some("100"));
        assert_eq!(
            field(&pairs, "created[gte]"),
            Some(at(0).timestamp().to_string().as_str())
        );
    }
    assert!(field(&query(&requests[0]), "starting_after").is_none());
    assert!(field(&query(&requests[1]), "starting_after").is_some());
    assert!(field(&query(&requests[2]), "starting_after").is_some());
    assert!(field(&query(&requests[3]), "ending_before").is_some());
}

#[tokio::test]
async fn created_gte_bounds_the_listing() {
    let server = fake_stripe().await;
    serve(&server, "/v1/events", StripeList::new(events(60))).await;
    let page = client(&server)
        .list_events(&EventQuery {
            since: at(10),
            after: None,
        })
        .await
        .unwrap();
    // 3 events a second: seconds 10..19 hold 30 events.
    assert_eq!(page.events.len(), 30);
    assert!(!page.has_more);
    assert!(page.events.iter().all(|e| e.created() >= at(10)));
}

#[tokio::test]
async fn an_event_whose_object_cannot_be_read_keeps_its_identity_and_error() {
    let server = fake_stripe().await;
    let mut all = events(3);
    let broken = stripe_id("evt");
    all[1]["id"] = json!(broken);
    all[1]["type"] = json!("customer.subscription.updated");
    all[1]["data"]["object"] =
        json!({ "id": stripe_id("sub"), "object": "subscription", "status": "" });
    serve(&server, "/v1/events", StripeList::new(all)).await;
    let page = oldest_page(&client(&server)).await.unwrap();
    assert_eq!(page.events.len(), 3);
    let unreadable = page
        .events
        .iter()
        .find_map(|e| e.parsed.as_ref().err())
        .unwrap();
    assert_eq!(unreadable.id, broken);
    assert_eq!(unreadable.event_type, "customer.subscription.updated");
    assert_eq!(unreadable.created, at(0));
    assert!(!unreadable.error.is_empty());
    assert_eq!(page.events.iter().filter(|e| e.parsed.is_ok()).count(), 2);
}

#[tokio::test]
async fn a_cursor_event_stripe_no_longer_has_is_not_found() {
    let server = fake_stripe().await;
    serve(&server, "/v1/events", StripeList::new(events(5))).await;
    let error = client(&server)
        .list_events(&EventQuery {
            since: at(0),
            after: Some(stripe_id("evt")),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::NotFound(_)), "{error:?}");
}

#[tokio::test]
async fn listing_waits_out_429s_and_repeats_only_the_throttled_page() {
    let server = fake_stripe().await;
    serve(
        &server,
        "/v1/events",
        StripeList::new(events(150)).throttle(2),
    )
    .await;
    let mut config = config(&server);
    config.max_retries = 3;
    let client = billing_stripe::StripeClient::new(config).unwrap();
    let page = oldest_page(&client).await.unwrap();
    assert_eq!(page.events.len(), 50);
    assert!(page.has_more);
    // Two 429s, then the two pages of the walk.
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn listing_gives_up_after_the_retries_when_throttled_throughout() {
    let server = fake_stripe().await;
    serve(
        &server,
        "/v1/events",
        StripeList::new(events(5)).throttle(100),
    )
    .await;
    let error = oldest_page(&client(&server)).await.unwrap_err();
    assert!(matches!(error, GatewayError::Unavailable(_)), "{error:?}");
    // One attempt and two retries.
    assert_eq!(received(&server).await.len(), 3);
}

/// `count` subscriptions of both shapes, fresh ids, half of them of `customer`.
fn subscriptions(count: usize, customer: &str) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let shape = if i % 2 == 0 { "basil" } else { "pre-basil" };
            let mut object = fixture_object(shape, "customer.subscription.updated.json");
            object["id"] = json!(stripe_id("sub"));
            object["created"] = json!(at(i64::try_from(i).unwrap()).timestamp());
            object["customer"] = if i % 2 == 0 {
                json!(customer)
            } else {
                json!(stripe_id("cus"))
            };
            object
        })
        .collect()
}

#[tokio::test]
async fn subscriptions_are_listed_with_status_all_page_by_page() {
    let server = fake_stripe().await;
    let customer = stripe_id("cus");
    let mut objects = subscriptions(210, &customer);
    let unreadable_id = stripe_id("sub");
    objects[7]["id"] = json!(unreadable_id);
    objects[7]["status"] = json!("");
    serve(&server, "/v1/subscriptions", StripeList::new(objects)).await;
    let client = client(&server);

    let mut starting_after = None;
    let mut snapshots = Vec::new();
    let mut unreadable = Vec::new();
    loop {
        let page = client
            .list_subscriptions(None, starting_after.as_deref())
            .await
            .unwrap();
        snapshots.extend(page.subscriptions);
        unreadable.extend(page.unreadable);
        match page.next {
            Some(next) => starting_after = Some(next),
            None => break,
        }
    }
    assert_eq!(snapshots.len(), 209);
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].id, unreadable_id);
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let pairs = query(request);
        assert_eq!(field(&pairs, "status"), Some("all"));
        assert_eq!(field(&pairs, "limit"), Some("100"));
        assert!(field(&pairs, "customer").is_none());
    }

    // One customer's.
    let page = client
        .list_subscriptions(Some(&customer), None)
        .await
        .unwrap();
    assert_eq!(page.subscriptions.len() + page.unreadable.len(), 100);
    assert!(page.subscriptions.iter().all(|s| s.customer_id == customer));
    assert!(page.next.is_some());
    let last = received(&server).await.pop().unwrap();
    assert_eq!(field(&query(&last), "customer"), Some(customer.as_str()));
}

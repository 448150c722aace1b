//! `reconcile` against a local fake of Stripe's list endpoints (wiremock): missed events are
//! caught up once through the ingest, a dry run changes nothing, a second run finds nothing new,
//! a subscription that differs is reported, and an unreachable Stripe is a clear failure.

use billing_store_diesel::testing::TestDatabase;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{Run, billingctl_with, event_id};

/// A basil fixture of billing-stripe under a fresh id, created `ago` seconds before now.
fn fixture(name: &str, ago: i64) -> Value {
    let path = format!(
        "{}/../../crates/billing-stripe/tests/fixtures/basil/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["id"] = json!(event_id());
    event["created"] = json!(chrono::Utc::now().timestamp() - ago);
    event
}

/// A list answer as Stripe writes it.
fn list(url: &str, data: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list", "url": url, "has_more": false, "data": data,
    }))
}

/// Stripe with `events` (newest first) and `subscriptions`: the first page lists them all, and
/// a page newer than a cursor (`ending_before`) is empty, since nothing happens meanwhile.
async fn fake_stripe(events: Vec<Value>, subscriptions: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(move |request: &Request| {
            let newer_than_cursor = request.url.query_pairs().any(|(k, _)| k == "ending_before");
            list(
                "/v1/events",
                if newer_than_cursor {
                    Vec::new()
                } else {
                    events.clone()
                },
            )
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(list("/v1/subscriptions", subscriptions))
        .mount(&server)
        .await;
    server
}

fn reconcile(db: &TestDatabase, stripe: &str, args: &[&str]) -> Run {
    let mut all = vec!["reconcile"];
    all.extend_from_slice(args);
    billingctl_with(db, &[("STRIPE_API_BASE", stripe)], &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_events_are_caught_up_once_and_a_dry_run_changes_nothing() {
    let db = TestDatabase::postgres().await;
    let created = fixture("customer.subscription.created", 600);
    let paid = fixture("invoice.paid", 300);
    let (created_id, paid_id) = (created["id"].clone(), paid["id"].clone());
    let subscription = created["data"]["object"].clone();
    let stripe = fake_stripe(vec![paid, created], vec![subscription.clone()]).await;

    let dry = reconcile(&db, &stripe.uri(), &["--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["scope"], "events");
    assert_eq!(dry["events"]["listed"], 2);
    assert_eq!(dry["events"]["would_ingest"], 2);
    assert_eq!(dry["events"]["applied"], 0);
    assert_eq!(dry["events"]["cursor_after"], Value::Null);
    let stored = crate::support::billingctl(&db, &["--json", "events", "list"]).json();
    assert_eq!(stored["events"].as_array().unwrap().len(), 0, "{stored}");

    let run = reconcile(&db, &stripe.uri(), &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("2 listed"), "{}", run.stdout);
    assert!(run.stdout.contains("2 applied"), "{}", run.stdout);
    let cursor = paid_id.as_str().unwrap();
    assert!(
        run.stdout.contains(&format!("cursor: {cursor} (was none)")),
        "the newest event is the cursor: {}",
        run.stdout
    );
    for id in [&created_id, &paid_id] {
        let shown =
            crate::support::billingctl(&db, &["--json", "events", "show", id.as_str().unwrap()])
                .json();
        assert_eq!(shown["status"], "processed", "{shown}");
    }

    // Nothing new after the cursor: nothing listed, nothing applied.
    let again = reconcile(&db, &stripe.uri(), &["--json"]).json();
    assert_eq!(again["events"]["listed"], 0);
    assert_eq!(again["events"]["cursor_after"]["event_id"], paid_id);

    // The subscription sweep: ours equals Stripe's, then Stripe's is canceled.
    let all = reconcile(&db, &stripe.uri(), &["--all", "--dry-run", "--json"]);
    assert_eq!(all.code, 0, "{}{}", all.stdout, all.stderr);
    let all = all.json();
    assert_eq!(all["subscriptions_checked"], 1);
    assert_eq!(all["differences"].as_array().unwrap().len(), 0, "{all}");
    let mut canceled = subscription;
    canceled["status"] = json!("canceled");
    canceled["canceled_at"] = json!(chrono::Utc::now().timestamp() - 60);
    let changed = fake_stripe(Vec::new(), vec![canceled]).await;
    let run = reconcile(&db, &changed.uri(), &["--all", "--dry-run"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains(" status "))
        .unwrap_or_else(|| panic!("no status difference: {}", run.stdout));
    assert!(
        row.contains("trialing") && row.contains("canceled") && row.trim_end().ends_with("no"),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_stripe_fails_clearly_and_two_scopes_are_refused() {
    let db = TestDatabase::postgres().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = reconcile(&db, &url, &["--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"]["code"], "failed", "{}", run.stdout);

    let run = reconcile(&db, &url, &["--all", "--customer", "cus_QxW7bN2mRt5yZk"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_takes_an_rfc3339_time_as_well_as_an_age() {
    let db = TestDatabase::postgres().await;
    let stripe = fake_stripe(Vec::new(), Vec::new()).await;
    let outage = chrono::Utc::now() - chrono::TimeDelta::hours(5);
    let at = outage.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let run = reconcile(&db, &stripe.uri(), &["--since", &at, "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["scope"], "since");
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(report["events"]["since"].clone()).unwrap();
    assert!(
        (since - outage).num_seconds().abs() < 60,
        "{since} is the given {at}"
    );
    let span = report["scope_value"].as_str().unwrap();
    let seconds: i64 = span.trim_end_matches('s').parse().unwrap();
    assert!((5 * 3600..5 * 3600 + 60).contains(&seconds), "{span}");

    let run = reconcile(
        &db,
        &stripe.uri(),
        &["--since", "12h", "--dry-run", "--json"],
    );
    assert_eq!(run.json()["scope_value"], "43200s");

    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let run = reconcile(&db, &stripe.uri(), &["--since", &future, "--json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["error"]["code"], "bad_request");
    let run = reconcile(&db, &stripe.uri(), &["--since", "last tuesday"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

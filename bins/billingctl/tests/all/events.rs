use billing_ports::EventStatus;
use billing_store_diesel::testing::TestDatabase;
use chrono::TimeDelta;

use crate::support::{billingctl, billingctl_with, stored_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_shows_the_newest_first_and_filters_by_status_type_and_time() {
    let db = TestDatabase::postgres().await;
    let old = stored_event(
        &db,
        "invoice.paid",
        EventStatus::Processed,
        TimeDelta::days(5),
        None,
    )
    .await;
    let failed = stored_event(
        &db,
        "customer.subscription.updated",
        EventStatus::Failed,
        TimeDelta::hours(2),
        Some("store: query failed: the price is not in the catalog and this message is long enough to be cut"),
    )
    .await;
    let new = stored_event(
        &db,
        "invoice.paid",
        EventStatus::Processed,
        TimeDelta::minutes(1),
        None,
    )
    .await;

    let run = billingctl(&db, &["events", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("LAST ERROR"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with(&new) && lines[2].starts_with(&failed) && lines[3].starts_with(&old)
    );
    assert!(lines[2].contains("failed") && lines[2].contains("2h ago") && lines[2].contains('…'));

    let run = billingctl(&db, &["--json", "events", "list", "--status", "failed"]);
    let json = run.json();
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], failed.as_str());
    assert_eq!(events[0]["status"], "failed");
    assert_eq!(events[0]["attempts"], 1);
    assert_eq!(events[0]["type"], "customer.subscription.updated");

    let run = billingctl(
        &db,
        &[
            "--json",
            "events",
            "list",
            "--type",
            "invoice.paid",
            "--since",
            "3d",
        ],
    );
    let ids: Vec<_> = run.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [new]);
    let run = billingctl(&db, &["--json", "events", "list", "--limit", "2"]);
    assert_eq!(run.json()["events"].as_array().unwrap().len(), 2);
    assert_eq!(run.json()["truncated"], true);
    let run = billingctl(&db, &["--json", "events", "list", "--limit", "3"]);
    assert_eq!(run.json()["truncated"], false, "exactly 3 stored");
    let run = billingctl(&db, &["events", "list", "--limit", "2"]);
    assert_eq!(
        run.stdout.lines().last(),
        Some("(first 2 shown; --limit to see more)"),
        "{}",
        run.stdout
    );
    let run = billingctl(&db, &["events", "list", "--limit", "3"]);
    assert!(
        !run.stdout.contains("--limit to see more"),
        "{}",
        run.stdout
    );

    let run = billingctl(&db, &["events", "list", "--since", "yesterday"]);
    assert_eq!(
        run.code, 2,
        "a bad --since is a usage error: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_prints_the_event_and_an_unknown_id_fails_with_exit_code_1() {
    let db = TestDatabase::postgres().await;
    let id = stored_event(
        &db,
        "invoice.payment_failed",
        EventStatus::Failed,
        TimeDelta::hours(1),
        Some("boom: database refused it"),
    )
    .await;

    let run = billingctl(&db, &["events", "show", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("id:          {id}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("attempts:    1"));
    assert!(
        run.stdout
            .contains("last error:  boom: database refused it")
    );
    assert!(
        run.stdout.contains("payload:\n{\n  \"data\""),
        "pretty-printed: {}",
        run.stdout
    );

    assert!(
        run.stdout
            .contains("failure:     transient; next automatic attempt"),
        "{}",
        run.stdout
    );

    let json = billingctl(&db, &["--json", "events", "show", &id]).json();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["payload"]["type"], "invoice.payment_failed");
    assert_eq!(json["last_error"], "boom: database refused it");
    assert_eq!(json["given_up"], false);
    assert!(json["next_attempt_at"].is_string(), "{json}");

    // With SWEEPER_MAX_ATTEMPTS=1 its one attempt was the last the sweeper makes.
    let max = [("SWEEPER_MAX_ATTEMPTS", "1")];
    let run = billingctl_with(&db, &max, &["events", "show", &id]);
    assert!(
        run.stdout
            .contains("failure:     transient; given up after 1 attempts: replay it by hand"),
        "{}",
        run.stdout
    );
    let json = billingctl_with(&db, &max, &["--json", "events", "show", &id]).json();
    assert_eq!(json["given_up"], true, "{json}");
    assert!(json["next_attempt_at"].is_null(), "{json}");

    let missing = crate::support::event_id();
    let run = billingctl(&db, &["events", "show", &missing]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("no stored event \"{missing}\"")),
        "{}",
        run.stderr
    );
    let run = billingctl(&db, &["--json", "events", "show", &missing]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_purge_deletes_old_done_events_only_and_never_failed_ones() {
    let db = TestDatabase::postgres().await;
    let mut old_done = Vec::new();
    for status in [
        EventStatus::Processed,
        EventStatus::Ignored,
        EventStatus::Stale,
    ] {
        old_done.push(stored_event(&db, "invoice.paid", status, TimeDelta::days(40), None).await);
    }
    let old_failed = stored_event(
        &db,
        "invoice.paid",
        EventStatus::Failed,
        TimeDelta::days(40),
        Some("still failing"),
    )
    .await;
    let recent = stored_event(
        &db,
        "invoice.paid",
        EventStatus::Processed,
        TimeDelta::days(3),
        None,
    )
    .await;

    let run = billingctl(&db, &["events", "purge", "--older-than", "30d"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("purged 3 done event(s) received before"),
        "{}",
        run.stdout
    );
    let left = billingctl(&db, &["--json", "events", "list"]).json();
    let mut ids: Vec<_> = left["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![old_failed, recent];
    expected.sort();
    assert_eq!(ids, expected);

    // Under Stripe's 3 days of redeliveries: refused unless forced.
    for age in ["0s", "2d", "71h"] {
        let run = billingctl(&db, &["events", "purge", "--older-than", age]);
        assert_eq!(run.code, 1, "{age}: {}", run.stdout);
        assert!(
            run.stderr.contains("is under 3 days") && run.stderr.contains("--force"),
            "{}",
            run.stderr
        );
    }
    let run = billingctl(&db, &["--json", "events", "purge", "--older-than", "1d"]);
    assert_eq!(run.json()["error"]["code"], "too_recent");
    assert_eq!(
        billingctl(&db, &["--json", "events", "list"]).json()["events"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing purged"
    );
    let json = billingctl(
        &db,
        &["--json", "events", "purge", "--older-than", "1d", "--force"],
    )
    .json();
    assert_eq!(json["purged"], 1);
    assert!(json["before"].as_str().unwrap().ends_with('Z'));
}

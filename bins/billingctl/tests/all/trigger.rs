use std::process::Command;

use serde_json::Value;

use crate::server::{API_KEY, SECRET, spawn_app};
use crate::support::Run;

/// `billingctl trigger …` against `url`, off the test's thread (the server's tasks run on it).
async fn trigger(args: Vec<String>) -> Run {
    actix_web::rt::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_billingctl"))
            .arg("trigger")
            .args(args)
            .env_remove("STRIPE_WEBHOOK_SECRET")
            .env_remove("BILLING_API_KEYS")
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn args(scenario: &str, url: &str, extra: &[&str]) -> Vec<String> {
    [
        scenario,
        "--url",
        url,
        "--secret",
        SECRET,
        "--api-key",
        API_KEY,
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect()
}

/// The entitlements after each step of a `--json` run, with every delivery accepted.
fn steps(report: &Value) -> Vec<&Value> {
    let steps = report["steps"].as_array().unwrap();
    for step in steps {
        for delivery in step["deliveries"].as_array().unwrap() {
            assert_eq!(delivery["status"], 200, "{delivery}");
            assert!(delivery["id"].as_str().unwrap().starts_with("evt_1"));
        }
    }
    steps.iter().map(|s| &s["entitlements"]).collect()
}

#[actix_web::test]
async fn subscription_lifecycle_goes_through_grace_and_ends_free() {
    let app = spawn_app().await;
    let run = trigger(args("subscription-lifecycle", &app.address, &["--json"])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["scenario"], "subscription-lifecycle");
    assert!(report["customer"].as_str().unwrap().starts_with("cus_"));
    let tiers: Vec<_> = steps(&report).iter().map(|e| e["tier"].clone()).collect();
    assert_eq!(tiers, ["PRO", "PRO", "PRO", "PRO", "FREE"], "{report:#}");
    let statuses: Vec<_> = steps(&report).iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses[2], "past_due", "{report:#}");
    assert_eq!(statuses[3], "active");

    // A second run is a new customer with fresh ids: nothing is a duplicate.
    let again = trigger(args("subscription-lifecycle", &app.address, &["--json"])).await;
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_ne!(again["user"], report["user"]);
    for step in again["steps"].as_array().unwrap() {
        for d in step["deliveries"].as_array().unwrap() {
            assert_eq!(d["answer"]["received"], true, "{d}");
            assert!(d["answer"]["duplicate"].is_null(), "{d}");
        }
    }
}

#[actix_web::test]
async fn one_time_refund_dispute_and_trial_conversion_print_each_step() {
    let app = spawn_app().await;
    let run = trigger(args("one-time-refund-dispute", &app.address, &[])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "== 1. one-time purchase",
        "payment_intent.succeeded",
        "== 2. partial refund",
        "charge.refunded",
        "charge.dispute.created",
        "== 4. the dispute is lost",
        "charge.dispute.closed",
        "entitlements: {",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }

    let run = trigger(args("trial-conversion", &app.address, &["--json"])).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let statuses: Vec<_> = steps(&report).iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, ["trialing", "trialing", "active"], "{report:#}");
}

#[actix_web::test]
async fn a_wrong_secret_is_refused_and_the_run_fails() {
    let app = spawn_app().await;
    let mut args = args("trial-conversion", &app.address, &[]);
    args[4] = "whsec_not_the_servers".to_owned();
    let run = trigger(args).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("-> 400"), "{}", run.stdout);
    assert!(run.stderr.contains("the server refused"), "{}", run.stderr);
}

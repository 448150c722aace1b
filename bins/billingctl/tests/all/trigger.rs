use std::process::Command;

use serde_json::Value;

use crate::server::{API_KEY, SECRET, spawn_app};
use crate::support::Run;

/// `billingctl trigger …` against `url`, off the test's thread (the server's tasks run on it).
async fn trigger(args: Vec<String>) -> Run {
    trigger_with(args, &[]).await
}

/// `billingctl trigger …` with `env` set.
async fn trigger_with(args: Vec<String>, env: &[(&str, &str)]) -> Run {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    actix_web::rt::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_billingctl"))
            .arg("trigger")
            .args(args)
            .env_remove("STRIPE_WEBHOOK_SECRET")
            .env_remove("BILLING_API_KEYS")
            .env_remove("PLANS_FILE")
            .env_remove("BILLING_CONFIG")
            .envs(env)
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
        "--plans",
        crate::support::PLANS,
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
    let run = trigger(args.clone()).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("-> 400"), "{}", run.stdout);
    assert!(run.stderr.contains("the server refused"), "{}", run.stderr);

    // Under --json: one document, the error with the run's report in its details.
    args.push("--json".to_owned());
    let run = trigger(args).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let error = &run.json()["error"];
    assert_eq!(error["code"], "refused", "{error}");
    assert_eq!(error["details"]["scenario"], "trial-conversion");
    let first = &error["details"]["steps"][0]["deliveries"][0];
    assert_eq!(first["status"], 400, "{error}");
}

/// A catalog other than the example: the stories subscribe to its cheapest paid price.
const TEAM_PLANS: &str = r#"
default_grace_period_days = 3

[[tiers]]
id = "BASIC"
name = "Basic"
price_ids = []
credits_per_period = 0
limits = { seats = 1 }
features = { sso = false }

[[tiers]]
id = "TEAM"
name = "Team"
price_ids = ["price_team_monthly", "price_team_yearly"]
credits_per_period = 0
limits = { seats = 50 }
features = { sso = true }

[[tiers]]
id = "SCALE"
name = "Scale"
price_ids = ["price_scale_monthly"]
credits_per_period = 0
limits = { seats = "unlimited" }
features = { sso = true }
"#;

#[actix_web::test]
async fn the_stories_use_the_configured_catalogs_cheapest_paid_price() {
    let db = billing_store_diesel::testing::TestDatabase::postgres().await;
    let mut settings = crate::server::settings(crate::server::Limits::default());
    settings.catalog = billing_domain::Catalog::from_toml_str(TEAM_PLANS).unwrap();
    let parts = billing_http::Parts {
        store: db.store().clone(),
        gateway: std::sync::Arc::new(crate::server::fake_gateway()),
        clock: std::sync::Arc::new(billing_ports::SystemClock),
    };
    let server = billing_http::Server::build_with(settings, parts).unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    let plans = std::env::temp_dir().join(format!(
        "billingctl-team-plans-{}.toml",
        crate::support::event_id()
    ));
    std::fs::write(&plans, TEAM_PLANS).unwrap();
    let plans = plans.to_str().unwrap().to_owned();

    // Through the configuration's PLANS_FILE (no --plans).
    let mut lifecycle = args("subscription-lifecycle", &address, &["--json"]);
    lifecycle.retain(|a| a != "--plans" && a != crate::support::PLANS);
    let run = trigger_with(lifecycle, &[("PLANS_FILE", &plans)]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        report["steps"][0]["title"],
        "subscription bought (TEAM, monthly)"
    );
    let tiers: Vec<_> = steps(&report).iter().map(|e| e["tier"].clone()).collect();
    assert_eq!(
        tiers,
        ["TEAM", "TEAM", "TEAM", "TEAM", "BASIC"],
        "{report:#}"
    );

    let trial = args("trial-conversion", &address, &["--json"])
        .into_iter()
        .map(|a| {
            if a == crate::support::PLANS {
                plans.clone()
            } else {
                a
            }
        })
        .collect();
    let run = trigger(trial).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["steps"][0]["title"], "trial started (TEAM, 14 days)");
    let tiers: Vec<_> = steps(&report).iter().map(|e| e["tier"].clone()).collect();
    assert_eq!(tiers, ["TEAM", "TEAM", "TEAM"], "{report:#}");
    let _ = std::fs::remove_file(&plans);
}

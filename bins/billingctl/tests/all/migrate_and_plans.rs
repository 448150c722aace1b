use billing_store_diesel::testing::TestDatabase;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::support::{PLANS, bare, billingctl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_check_lists_pending_migrations_and_migrate_applies_them() {
    let db = TestDatabase::postgres().await;
    let run = billingctl(&db, &["migrate", "--check"]);
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, "the database is up to date"),
        "{}",
        run.stderr
    );

    // Undo the last migration, as a database one release behind would be.
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    conn.batch_execute(
        "DROP TABLE api_keys; DELETE FROM __diesel_schema_migrations WHERE version = '20261206000003'",
    )
    .await
    .unwrap();

    let run = billingctl(&db, &["migrate", "--check"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("1 pending migration(s): 2026-12-06-000003_api_keys"),
        "{}",
        run.stderr
    );
    let run = billingctl(&db, &["--json", "migrate", "--check"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.json()["error"]["details"]["pending"][0],
        "2026-12-06-000003_api_keys"
    );
    let run = billingctl(&db, &["keys", "list"]);
    assert_eq!(run.code, 1, "nothing was applied by --check");
    assert!(
        run.stderr.contains("not migrated") && run.stderr.contains("run `billingctl migrate`"),
        "{}",
        run.stderr
    );
    let run = billingctl(&db, &["--json", "keys", "list"]);
    assert_eq!(run.json()["error"]["code"], "database", "{}", run.stdout);

    let run = billingctl(&db, &["--json", "migrate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["applied"][0], "2026-12-06-000003_api_keys");
    let run = billingctl(&db, &["migrate"]);
    assert_eq!(
        run.stdout.trim(),
        "the database is up to date; nothing applied"
    );
    assert_eq!(billingctl(&db, &["keys", "list"]).code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_the_database_code_whichever_command_meets_it() {
    let db = TestDatabase::postgres().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://postgres@{}/billing",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let down = [
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_CONNECT_TIMEOUT_MS", "500"),
        ("DATABASE_POOL_TIMEOUT_MS", "500"),
    ];
    for args in [
        &["--json", "keys", "list"][..],
        &["--json", "events", "list"],
        &["--json", "events", "show", "evt_1QgZt4LkdIwHu7ixQ2mB8rTe"],
    ] {
        let run = crate::support::billingctl_with(&db, &down, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stdout);
        assert_eq!(
            run.json()["error"]["code"],
            "database",
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_bad_configuration_is_exit_code_2_with_every_problem() {
    let run = bare(&["keys", "list"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("STRIPE_SECRET_KEY is required"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("BILLING_API_KEYS is required"),
        "{}",
        run.stderr
    );
}

#[test]
fn plans_check_accepts_the_example_and_lists_every_problem_with_its_place() {
    let run = bare(&["plans", "check", PLANS]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(": valid ("), "{}", run.stdout);
    assert_eq!(
        bare(&["--json", "plans", "check", PLANS]).json()["tiers"][0],
        "FREE"
    );

    let bad =
        std::env::temp_dir().join(format!("billingctl-bad-plans-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(PLANS).unwrap().replacen(
        "credits_per_period = 0",
        "credits_per_period = -5",
        1,
    );
    std::fs::write(&bad, format!("{text}\n[[tiers]]\nid = \"PRO\"\n")).unwrap();
    let path = bad.to_str().unwrap();
    let run = bare(&["plans", "check", path]);
    assert_eq!(run.code, 1);
    let problems: Vec<&str> = run.stdout.lines().collect();
    assert!(problems.len() >= 2, "every problem: {}", run.stdout);
    assert!(
        problems
            .iter()
            .all(|p| p.starts_with(&format!("{path}: ")) && p.contains("tiers[")),
        "{}",
        run.stdout
    );
    let json = bare(&["--json", "plans", "check", path]).json();
    assert_eq!(json["error"]["code"], "invalid_catalog");
    assert_eq!(
        json["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        problems.len()
    );
    std::fs::remove_file(&bad).unwrap();

    let run = bare(&["plans", "check", "/nonexistent/plans.toml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot read /nonexistent/plans.toml"),
        "{}",
        run.stderr
    );
}

use billing_store_diesel::testing::TestDatabase;

use crate::support::billingctl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_once_listed_without_their_secret_and_revoked() {
    let db = TestDatabase::postgres().await;
    let run = billingctl(&db, &["keys", "create", "web-frontend"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("bk_"))
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 35);

    let created = billingctl(&db, &["--json", "keys", "create", "batch.jobs"]).json();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("bk_") && secret != key);
    assert_eq!(created["prefix"], &secret[..9]);

    let run = billingctl(&db, &["keys", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{}…", &key[..9])));
    assert!(
        !run.stdout.contains(&key) && !run.stdout.contains(secret),
        "never the secret"
    );

    let revoked = billingctl(&db, &["--json", "keys", "revoke", "web-frontend"]).json();
    assert_eq!(revoked["name"], "web-frontend");
    assert!(revoked["revoked_at"].is_string());
    let keys = billingctl(&db, &["--json", "keys", "list"]).json();
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "batch.jobs");
    assert!(keys[0]["revoked_at"].is_null());
    assert_eq!(keys[1]["revoked_at"], revoked["revoked_at"]);

    let run = billingctl(&db, &["keys", "create", "web-frontend"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
    let run = billingctl(&db, &["--json", "keys", "revoke", "nobody"]);
    assert_eq!(
        (run.code, run.json()["error"]["code"].as_str()),
        (1, Some("not_found"))
    );
    let run = billingctl(&db, &["--json", "keys", "create", "has space"]);
    assert_eq!(
        (run.code, run.json()["error"]["code"].as_str()),
        (1, Some("bad_request"))
    );
}

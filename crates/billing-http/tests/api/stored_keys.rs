//! Keys stored by `billingctl keys create` are accepted besides the bootstrap keys, from an
//! in-memory copy of their hashes; a revoked one is refused after the copy's refresh
//! (300 ms in the test settings).

use std::time::Duration;

use billing_app::{NewApiKey, api_key_hash};
use billing_ports::{ApiKeyRecord, BillingStore};
use secrecy::ExposeSecret;

use crate::helpers::{API_KEY, TestApp, spawn_app};

async fn status_with(app: &TestApp, key: &str) -> u16 {
    app.client
        .get(format!(
            "{}/v1/users/u_7hQk2StoredKey/entitlements",
            app.address
        ))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn a_stored_key_is_accepted_until_revoked_and_the_bootstrap_key_keeps_working() {
    let app = spawn_app().await;
    // A request with an unknown key first: the copy is loaded now, before the key exists.
    let key = NewApiKey::generate().unwrap();
    let secret = key.secret().expose_secret().to_owned();
    assert_eq!(status_with(&app, &secret).await, 401);

    let record = ApiKeyRecord {
        name: "svc-reports".to_owned(),
        prefix: key.prefix(),
        hash: api_key_hash(secret.as_bytes()),
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    assert!(app.store.insert_api_key(&record).await.unwrap());
    // An unknown key reloads the copy at most once a second (here: the 300 ms refresh).
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status_with(&app, &secret).await, 200, "the stored key");
    assert_eq!(status_with(&app, API_KEY).await, 200, "the bootstrap key");

    app.store
        .revoke_api_key("svc-reports", chrono::Utc::now())
        .await
        .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_with(&app, &secret).await,
        401,
        "revoked, after the refresh"
    );
    assert_eq!(
        status_with(&app, API_KEY).await,
        200,
        "the bootstrap key still works"
    );
    assert_eq!(
        status_with(&app, "bk_0000000000000000000000000000000").await,
        401
    );
}

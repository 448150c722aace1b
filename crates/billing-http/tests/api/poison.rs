//! Poison events: correctly signed events carrying values no database stores, or facts the
//! rules cannot use. Each gets a specific 4xx on every delivery, never a 500, and is stored as
//! `failed` with its reason whenever its envelope can be stored; when it cannot, the answer
//! says so.

use billing_ports::{BillingStore, EventStatus};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, subscription_event};

/// `n` characters of Stripe's id alphabet that do not repeat in a short cycle (a repeated
/// letter compresses and would hide a size limit).
fn stripe_like_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            // xorshift64: enough to spread the letters.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[usize::try_from(state % 62).unwrap()])
        })
        .collect()
}

fn subscription(id: &str, user: &str) -> Value {
    subscription_event(
        id,
        "customer.subscription.updated",
        user,
        "active",
        "price_pro_monthly",
        1_764_000_000,
    )
}

fn payment_checkout(id: &str, amount: Option<i64>) -> Value {
    json!({
        "id": id, "object": "event", "type": "checkout.session.completed",
        "api_version": "2025-03-31.basil", "created": 1_764_000_000, "livemode": false,
        "data": {"object": {
            "id": "cs_test_b1Q8zKx4Lm2Nv7Rt", "object": "checkout.session", "mode": "payment",
            "customer": "cus_Rk3v9LmQ2xTz8w", "client_reference_id": "user_4f2a9c",
            "payment_intent": "pi_3QvR8t2eZvKYlo2C0mXq", "payment_status": "paid",
            "amount_total": amount, "currency": "eur",
        }},
    })
}

/// Delivers `event` twice (Stripe retries): both answers are `status` with `code`; the
/// event is stored as failed with a reason naming `field`.
async fn refused_and_stored(app: &TestApp, event: &Value, status: u16, code: &str, field: &str) {
    for _ in 0..2 {
        let (got, body) = app.webhook(event).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("stored as failed"), "{message}");
    }
    let id = event["id"].as_str().unwrap();
    let stored = app.store.event(id).await.unwrap().expect("stored");
    assert_eq!(stored.status, EventStatus::Failed);
    assert_eq!(stored.attempts, 2);
    let reason = stored.last_error.unwrap();
    assert!(reason.contains(field), "{reason}");
}

#[actix_web::test]
async fn values_no_database_stores_are_refused_at_parse_time_and_stored() {
    let app = spawn_app().await;
    // NUL in a string the object carries.
    let mut nul = subscription("evt_1RpN0l2eZvKYlo2CnulS", "user_7c1e04");
    nul["data"]["object"]["metadata"]["user_id"] = json!("user_\u{0}7c1e04");
    refused_and_stored(&app, &nul, 422, "unprocessable_event", "metadata.user_id").await;
    // A 10 KB object id (no index row holds it).
    let long_id = stripe_like_chars(10_240);
    let mut long = subscription("evt_1RpN1m2eZvKYlo2ClngI", "user_2b9d41");
    long["data"]["object"]["id"] = json!(format!("sub_{long_id}"));
    refused_and_stored(&app, &long, 422, "unprocessable_event", "data.object.id").await;
    // A period far outside what Postgres stores.
    let mut far = subscription("evt_1RpN2n2eZvKYlo2CfarP", "user_a03f5e");
    far["data"]["object"]["items"]["data"][0]["current_period_end"] = json!(9_000_000_000_000_i64);
    refused_and_stored(&app, &far, 422, "unprocessable_event", "current_period_end").await;
    // NUL in a value the error message quotes (the object discriminator).
    let mut quoted = subscription("evt_1RpN2z2eZvKYlo2Cquot", "user_0d8e3b");
    quoted["data"]["object"]["object"] = json!("subscr\u{0}iption");
    refused_and_stored(
        &app,
        &quoted,
        422,
        "unprocessable_event",
        "data.object.object",
    )
    .await;
    // An empty status.
    let mut empty = subscription("evt_1RpN3o2eZvKYlo2CemtS", "user_5e6b72");
    empty["data"]["object"]["status"] = json!("");
    refused_and_stored(
        &app,
        &empty,
        422,
        "unprocessable_event",
        "data.object.status",
    )
    .await;
    // A negative total, and a payment-mode checkout with no amount at all.
    let negative = payment_checkout("evt_1RpN4p2eZvKYlo2CnegA", Some(-4_900));
    refused_and_stored(&app, &negative, 422, "unprocessable_event", "amount_total").await;
    let no_amount = payment_checkout("evt_1RpN5q2eZvKYlo2Cnoam", None);
    refused_and_stored(&app, &no_amount, 422, "unprocessable_event", "amount_total").await;
    // The same checkout with its amount still applies afterwards.
    let fine = payment_checkout("evt_1RpN6r2eZvKYlo2Cfine", Some(4_900));
    assert_eq!(app.webhook(&fine).await.0, 200);
}

#[actix_web::test]
async fn an_envelope_that_cannot_be_stored_is_refused_and_says_so() {
    let app = spawn_app().await;
    let long_id = format!("evt_{}", stripe_like_chars(10_240));
    let nul_id = "evt_1RpN7s2eZvKYlo2C\u{0}nul".to_owned();
    let cases = [
        (long_id.clone(), 1_764_000_000_i64, "id"),
        (nul_id.clone(), 1_764_000_000, "id"),
        ("not_an_event_id_8Hq2".to_owned(), 1_764_000_000, "id"),
        (
            "evt_1RpN8t2eZvKYlo2Cfuture".to_owned(),
            99_999_999_999_999,
            "created",
        ),
        (
            "evt_1RpN9u2eZvKYlo2Cbefore".to_owned(),
            -62_000_000_000,
            "created",
        ),
    ];
    for (id, created, field) in cases {
        let mut event = subscription(&id, "user_e41d07");
        event["created"] = json!(created);
        for _ in 0..2 {
            let (status, body) = app.webhook(&event).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_payload")),
                "{body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("not stored"), "{message}");
            assert!(message.contains(&format!("`{field}`")), "{message}");
            assert!(message.contains("sha256"), "{message}");
        }
        if !id.contains('\u{0}') {
            assert!(app.store.event(&id).await.unwrap().is_none());
        }
    }
}

#[actix_web::test]
async fn a_value_the_database_refuses_while_applying_is_unprocessable() {
    let app = spawn_app().await;
    // A paid invoice naming neither a customer nor a known subscription: its credit grant
    // would belong to nobody, which the ledger's CHECK refuses. The parse is fine; the write
    // is refused on every delivery, so it is answered 422, not 500.
    let invoice = json!({
        "id": "evt_1RpNAv2eZvKYlo2Cinvc", "object": "event", "type": "invoice.paid",
        "api_version": "2025-03-31.basil", "created": 1_764_000_100, "livemode": false,
        "data": {"object": {
            "id": "in_1RpNAw2eZvKYlo2Cxq4T", "object": "invoice", "status": "paid",
            "billing_reason": "subscription_cycle", "amount_paid": 1_900, "amount_due": 1_900,
            "currency": "eur", "attempt_count": 1,
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": "sub_1RpNAx2eZvKYlo2Corph"}},
            "lines": {"object": "list", "data": [{
                "id": "il_1RpNAy2eZvKYlo2C3kLm", "object": "line_item", "amount": 1_900,
                "period": {"start": 1_764_000_000, "end": 1_766_592_000},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {
                    "subscription": "sub_1RpNAx2eZvKYlo2Corph", "proration": false}},
                "pricing": {"price_details": {"price": "price_pro_monthly"}},
            }]},
        }},
    });
    refused_and_stored(&app, &invoice, 422, "unprocessable_event", "refused").await;
}

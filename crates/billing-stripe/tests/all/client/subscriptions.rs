//! Reading subscriptions: one by id, and every one of a customer, page by page.

use billing_domain::{Fact, SubscriptionStatus};
use billing_ports::{ErrorChain, GatewayError, StripeGateway};
use billing_stripe::parse_event;
use chrono::DateTime;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::client::support::{
    client, fake_stripe, field, fixture, fixture_object, query, received,
};

/// The snapshot the webhook parser reads from the same fixture.
fn event_snapshot(shape: &str, name: &str) -> billing_domain::facts::SubscriptionSnapshot {
    match parse_event(&fixture(shape, name)).unwrap().fact {
        Fact::Subscription { subscription, .. } => subscription,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_basil_subscription_is_read_into_the_snapshot_its_event_gives() {
    let server = fake_stripe().await;
    let object = fixture_object("basil", "customer.subscription.updated.json");
    let id = object["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(&object))
        .expect(1)
        .mount(&server)
        .await;

    let snapshot = client(&server).fetch_subscription(&id).await.unwrap();

    assert_eq!(
        snapshot,
        event_snapshot("basil", "customer.subscription.updated.json")
    );
    // Basil: the period is on the first item, not on the subscription.
    assert!(object.get("current_period_start").is_none());
    assert_eq!(snapshot.customer_id, "cus_pT1rWkhYJIcKoB");
    assert_eq!(snapshot.price_ids, ["price_pro_monthly"]);
    assert_eq!(
        snapshot.current_period_start,
        DateTime::from_timestamp(1_789_563_869, 0)
    );
    assert_eq!(
        snapshot.current_period_end,
        DateTime::from_timestamp(1_792_155_869, 0)
    );
    let request = &received(&server).await[0];
    assert_eq!(request.method.as_str(), "GET");
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn a_pre_basil_subscription_is_read_too() {
    let server = fake_stripe().await;
    let object = fixture_object("pre-basil", "customer.subscription.created.json");
    let id = object["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(&object))
        .mount(&server)
        .await;

    let snapshot = client(&server).fetch_subscription(&id).await.unwrap();
    assert_eq!(
        snapshot,
        event_snapshot("pre-basil", "customer.subscription.created.json")
    );
    assert!(snapshot.current_period_end.is_some());
}

#[tokio::test]
async fn a_subscription_missing_a_required_field_is_unexpected_and_names_it() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({ "id": "sub_1", "object": "subscription", "status": "active" }),
            ),
        )
        .mount(&server)
        .await;

    let error = client(&server)
        .fetch_subscription("sub_1")
        .await
        .unwrap_err();
    let message = ErrorChain(&error).to_string();
    match error {
        GatewayError::Unexpected(_) => {
            assert!(message.contains("subscription sub_1"), "{message}");
            assert!(message.contains("`customer`"), "{message}");
            assert!(!message.contains("data.object"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_empty_subscription_id_is_rejected_without_a_request() {
    let server = fake_stripe().await;
    let error = client(&server).fetch_subscription("").await.unwrap_err();
    assert!(matches!(error, GatewayError::Rejected(_)), "{error:?}");
    assert!(received(&server).await.is_empty());
}

/// A minimal subscription of customer `cus_many`.
fn subscription(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "subscription",
        "customer": "cus_many",
        "status": status,
        "cancel_at_period_end": false,
        "metadata": { "user_id": "user_7" },
        "items": { "object": "list", "data": [{
            "id": format!("si_{id}"),
            "object": "subscription_item",
            "price": { "id": "price_basic", "object": "price" },
            "current_period_start": 1_700_000_000,
            "current_period_end": 1_702_592_000,
        }]},
    })
}

fn list(data: Vec<Value>, has_more: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list",
        "url": "/v1/subscriptions",
        "has_more": has_more,
        "data": data,
    }))
}

#[tokio::test]
async fn customer_subscriptions_follow_pages_with_status_all() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("customer", "cus_many"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(list(
            vec![
                subscription("sub_3", "active"),
                subscription("sub_2", "canceled"),
            ],
            true,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("customer", "cus_many"))
        .and(query_param("starting_after", "sub_2"))
        .respond_with(list(
            vec![subscription("sub_1", "incomplete_expired")],
            false,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let subscriptions = client(&server)
        .customer_subscriptions("cus_many")
        .await
        .unwrap();

    let ids: Vec<_> = subscriptions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["sub_3", "sub_2", "sub_1"]);
    assert_eq!(subscriptions[1].status, SubscriptionStatus::Canceled);
    assert_eq!(subscriptions[0].price_ids, ["price_basic"]);
    assert_eq!(subscriptions[0].metadata_user_id.as_deref(), Some("user_7"));

    for request in received(&server).await {
        let query = query(&request);
        assert_eq!(field(&query, "customer"), Some("cus_many"));
        assert_eq!(field(&query, "status"), Some("all"));
        assert_eq!(field(&query, "limit"), Some("100"));
    }
}

#[tokio::test]
async fn a_customer_without_subscriptions_has_an_empty_list() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(list(vec![], false))
        .expect(1)
        .mount(&server)
        .await;

    let subscriptions = client(&server)
        .customer_subscriptions("cus_none")
        .await
        .unwrap();
    assert!(subscriptions.is_empty());
}

#[tokio::test]
async fn an_empty_page_claiming_more_does_not_loop() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(list(vec![], true))
        .expect(1)
        .mount(&server)
        .await;

    let subscriptions = client(&server)
        .customer_subscriptions("cus_odd")
        .await
        .unwrap();
    assert!(subscriptions.is_empty());
}

#[tokio::test]
async fn a_failing_page_fails_the_listing() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(list(vec![subscription("sub_2", "active")], true))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("starting_after", "sub_2"))
        .respond_with(crate::client::support::stripe_error(
            400,
            "invalid_request_error",
            None,
            "bad cursor",
        ))
        .mount(&server)
        .await;

    let error = client(&server)
        .customer_subscriptions("cus_many")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Rejected(_)), "{error:?}");
}

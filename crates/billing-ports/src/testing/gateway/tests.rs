//! The fake gateway's behaviour, one Stripe semantic per test.

use billing_domain::SubscriptionStatus;

use super::*;
use crate::gateway::CheckoutKind;

fn snapshot(id: &str, customer: &str, status: SubscriptionStatus) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: id.to_owned(),
        customer_id: customer.to_owned(),
        status,
        price_ids: vec!["price_pro_monthly".to_owned()],
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        cancel_at: None,
        canceled_at: None,
        ended_at: None,
        trial_end: None,
        metadata_user_id: Some("user_81f0".to_owned()),
    }
}

fn checkout(customer: &str) -> CheckoutRequest {
    CheckoutRequest {
        customer_id: customer.to_owned(),
        user_id: "user_81f0".to_owned(),
        kind: CheckoutKind::Subscription,
        price_id: "price_pro_monthly".to_owned(),
        success_url: "https://app.example/ok".to_owned(),
        cancel_url: "https://app.example/cancel".to_owned(),
        trial_days: Some(14),
    }
}

fn is_stripe_id(id: &str, prefix: &str, len: usize) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == len && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[tokio::test]
async fn subscriptions_are_answered_from_the_stored_snapshots() {
    let stripe = FakeGateway::new();
    stripe.put_subscription(snapshot("sub_A", "cus_1", SubscriptionStatus::Trialing));
    stripe.put_subscription(snapshot("sub_B", "cus_1", SubscriptionStatus::Canceled));
    stripe.put_subscription(snapshot("sub_C", "cus_2", SubscriptionStatus::Active));
    // A later snapshot of the same subscription replaces the earlier one.
    stripe.put_subscription(snapshot("sub_A", "cus_1", SubscriptionStatus::Active));

    let a = stripe.fetch_subscription("sub_A").await.unwrap();
    assert_eq!(a.status, SubscriptionStatus::Active);
    let ids: Vec<String> = stripe
        .customer_subscriptions("cus_1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["sub_A", "sub_B"]);
    assert!(
        stripe
            .customer_subscriptions("cus_3")
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        stripe.remove_subscription("sub_A").map(|s| s.id).as_deref(),
        Some("sub_A")
    );
    assert_eq!(stripe.remove_subscription("sub_A"), None);
    assert!(matches!(
        stripe.fetch_subscription("sub_A").await,
        Err(GatewayError::NotFound(message)) if message.to_string().contains("sub_A")
    ));
    assert_eq!(stripe.calls(GatewayCall::FetchSubscription), 2);
    assert_eq!(stripe.calls(GatewayCall::CustomerSubscriptions), 2);
}

#[tokio::test]
async fn a_customer_key_answers_the_first_customer_and_refuses_other_parameters() {
    let stripe = FakeGateway::new();
    let first = stripe
        .create_customer("user_81f0", Some("ada@example.org"), "k1")
        .await
        .unwrap();
    let again = stripe
        .create_customer("user_81f0", Some("ada@example.org"), "k1")
        .await
        .unwrap();
    let other = stripe
        .create_customer("user_81f0", None, "k2")
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(is_stripe_id(&first, "cus_", 14), "{first}");
    assert!(matches!(
        stripe
            .create_customer("user_0000", Some("ada@example.org"), "k1")
            .await,
        Err(GatewayError::Rejected(cause)) if cause.to_string() == KEY_REUSED
    ));
    assert_eq!(
        stripe.customers(),
        [
            FakeCustomer {
                id: first,
                user_id: "user_81f0".to_owned(),
                email: Some("ada@example.org".to_owned()),
                idempotency_key: "k1".to_owned(),
            },
            FakeCustomer {
                id: other,
                user_id: "user_81f0".to_owned(),
                email: None,
                idempotency_key: "k2".to_owned(),
            },
        ]
    );
    assert_eq!(stripe.calls(GatewayCall::CreateCustomer), 4);
}

#[tokio::test]
async fn a_checkout_key_answers_the_first_session_and_refuses_other_parameters() {
    let stripe = FakeGateway::new();
    let first = stripe
        .create_checkout_session(&checkout("cus_1"), "k1")
        .await
        .unwrap();
    let again = stripe
        .create_checkout_session(&checkout("cus_1"), "k1")
        .await
        .unwrap();
    let other = stripe
        .create_checkout_session(&checkout("cus_1"), "k2")
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_ne!(first.id, other.id);
    assert!(is_stripe_id(&first.id, "cs_test_", 58), "{}", first.id);
    assert_eq!(
        first.url,
        format!("https://checkout.stripe.com/c/pay/{}", first.id)
    );
    assert!(matches!(
        stripe
            .create_checkout_session(&checkout("cus_2"), "k1")
            .await,
        Err(GatewayError::Rejected(cause)) if cause.to_string() == KEY_REUSED
    ));

    let recorded = stripe.checkout_session(&first.id).unwrap();
    assert_eq!(
        (recorded.request, recorded.idempotency_key),
        (checkout("cus_1"), "k1".to_owned())
    );
    assert_eq!(stripe.checkout_session("cs_test_unknown"), None);
    assert_eq!(stripe.checkout_sessions().len(), 2);
    assert_eq!(stripe.calls(GatewayCall::CreateCheckoutSession), 4);
}

#[tokio::test]
async fn each_portal_call_is_a_new_session_for_its_customer() {
    let stripe = FakeGateway::new();
    let first = stripe
        .create_portal_session("cus_1", "https://app.example/billing")
        .await
        .unwrap();
    let second = stripe
        .create_portal_session("cus_1", "https://app.example/billing")
        .await
        .unwrap();
    assert_ne!(first, second);
    assert!(
        is_stripe_id(&first, "https://billing.stripe.com/p/session/test_", 40),
        "{first}"
    );
    let sessions = stripe.portal_sessions();
    assert_eq!(
        sessions[0],
        FakePortalSession {
            customer_id: "cus_1".to_owned(),
            return_url: "https://app.example/billing".to_owned(),
            url: first,
        }
    );
    assert_eq!(sessions[1].url, second);
}

#[tokio::test]
async fn planned_failures_are_counted_create_nothing_and_heal() {
    let stripe = FakeGateway::new();
    let test_side = stripe.clone();
    test_side.fail_times(
        GatewayCall::CreateCustomer,
        GatewayError::Unavailable("connection reset".into()),
        2,
    );
    test_side.fail(
        GatewayCall::CreatePortalSession,
        GatewayError::Rejected("no portal".into()),
    );
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            stripe
                .create_customer("user_81f0", None, "k1")
                .await
                .is_ok(),
        );
    }
    assert_eq!(answers, [false, false, true]);
    assert_eq!(
        test_side.customers().len(),
        1,
        "failed calls create nothing"
    );
    assert_eq!(test_side.calls(GatewayCall::CreateCustomer), 3);
    for _ in 0..2 {
        assert!(matches!(
            stripe
                .create_portal_session("cus_1", "https://app.example")
                .await,
            Err(GatewayError::Rejected(cause)) if cause.to_string() == "no portal"
        ));
    }
    assert!(test_side.portal_sessions().is_empty());
    assert!(matches!(
        stripe.fetch_subscription("sub_A").await.map(|s| s.id),
        Err(GatewayError::NotFound(cause)) if cause.to_string() == "No such subscription: 'sub_A'"
    ));
    test_side.heal();
    assert!(
        stripe
            .create_portal_session("cus_1", "https://app.example")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn racing_duplicates_of_a_delayed_call_get_the_first_object() {
    let stripe = FakeGateway::new();
    stripe.delay(GatewayCall::CreateCustomer, Duration::from_millis(30));
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        stripe.create_customer("user_81f0", None, "k1"),
        stripe.create_customer("user_81f0", None, "k1"),
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(stripe.customers().len(), 1);
    assert_eq!(stripe.calls(GatewayCall::CreateCustomer), 2);
}

#[test]
fn random_ids_use_stripes_alphabet_and_do_not_repeat() {
    let drawn: std::collections::HashSet<String> = (0..1_000).map(|_| random_chars(14)).collect();
    assert_eq!(drawn.len(), 1_000);
    assert!(
        drawn
            .iter()
            .all(|id| id.len() == 14 && id.chars().all(|c| c.is_ascii_alphanumeric()))
    );
    let symbols: std::collections::HashSet<char> = drawn.iter().flat_map(|id| id.chars()).collect();
    assert_eq!(symbols.len(), 62, "every symbol of the alphabet appears");
}

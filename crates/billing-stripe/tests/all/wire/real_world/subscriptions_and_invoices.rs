//! Northwind's two-item subscription and its invoice in both shapes, and Fieldnote's invoices
//! from before 2019, which have no `amount_paid`.

use billing_domain::facts::{
    InvoiceChange, InvoiceFacts, SubscriptionChange, SubscriptionSnapshot,
};
use billing_domain::{Fact, SubscriptionStatus};
use billing_stripe::parse_event;
use serde_json::json;

use super::{FN_CUS, NW_CUS, check, usd};
use crate::wire::story::{REAL_WORLD, at, bytes, fixture_json};

// ---------------------------------------------------------------- Northwind: two items

const NW_SUB: &str = "sub_1R7uvRCCE3QtRND3kNkNA5BL";
const NW_INVOICE: &str = "in_1ReEIgCCE3QtRND37q1BVYCC";
const NW_PERIOD: (&str, &str) = ("2025-05-12T15:42:09Z", "2025-06-12T15:42:09Z");
/// The add-on is the first item and the first line; the catalog knows only the second.
const NW_PRICES: [&str; 2] = ["price_addon_seats", "price_enterprise_monthly"];

fn northwind_subscription() -> Fact {
    Fact::Subscription {
        change: SubscriptionChange::Created,
        subscription: SubscriptionSnapshot {
            id: NW_SUB.to_owned(),
            customer_id: NW_CUS.to_owned(),
            status: SubscriptionStatus::Active,
            price_ids: NW_PRICES.map(str::to_owned).to_vec(),
            current_period_start: Some(at(NW_PERIOD.0)),
            current_period_end: Some(at(NW_PERIOD.1)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial_end: None,
            metadata_user_id: Some("user_8f3k2q".to_owned()),
        },
    }
}

#[test]
fn a_two_item_subscription_lists_every_price_in_item_order_in_both_shapes() {
    for (shape, api) in [("pre-basil", "2024-06-20"), ("basil", "2025-03-31.basil")] {
        check(
            &format!("two-items.{shape}.customer.subscription.created"),
            "evt_1RS5l5CCE3QtRND3KtZTCeCh",
            api,
            "2025-05-12T15:42:11Z",
            northwind_subscription(),
        );
    }
    // The shapes really differ where the parser has to look in two places.
    let pre = fixture_json(
        REAL_WORLD,
        "two-items.pre-basil.customer.subscription.created",
    );
    let pre = &pre["data"]["object"];
    assert!(pre["current_period_start"].is_i64());
    assert!(
        pre["items"]["data"][0]
            .get("current_period_start")
            .is_none()
    );
    assert!(pre["plan"].is_null());
    let basil = fixture_json(REAL_WORLD, "two-items.basil.customer.subscription.created");
    let basil = &basil["data"]["object"];
    assert!(basil.get("current_period_start").is_none());
    assert!(basil["items"]["data"][1]["current_period_end"].is_i64());
}

#[test]
fn the_two_item_subscriptions_invoice_lists_both_line_prices_in_both_shapes() {
    let facts = InvoiceFacts {
        id: NW_INVOICE.to_owned(),
        customer_id: Some(NW_CUS.to_owned()),
        subscription_id: Some(NW_SUB.to_owned()),
        status: Some("paid".to_owned()),
        billing_reason: Some("subscription_create".to_owned()),
        amount_paid: usd(53_900),
        amount_due: usd(53_900),
        attempt_count: 1,
        period_start: Some(at(NW_PERIOD.0)),
        period_end: Some(at(NW_PERIOD.1)),
        next_payment_attempt: None,
        price_ids: NW_PRICES.map(str::to_owned).to_vec(),
    };
    for (shape, api) in [("pre-basil", "2024-06-20"), ("basil", "2025-03-31.basil")] {
        check(
            &format!("two-items.{shape}.invoice.paid"),
            "evt_1R8sHSCCE3QtRND3X1PNM91L",
            api,
            "2025-05-12T15:42:13Z",
            Fact::Invoice {
                change: InvoiceChange::Paid,
                invoice: facts.clone(),
            },
        );
    }
}

// ---------------------------------------------------------------- invoices before 2019

const FN_SUB: &str = "sub_BrHV2n0tup2EPD";

#[test]
fn a_2017_paid_invoice_without_amount_paid_reads_its_total() {
    let body = fixture_json(REAL_WORLD, "legacy-2017.invoice.payment_succeeded");
    let object = &body["data"]["object"];
    assert!(object.get("amount_paid").is_none());
    assert_eq!(
        (&object["paid"], &object["total"]),
        (&json!(true), &json!(2900))
    );
    check(
        "legacy-2017.invoice.payment_succeeded",
        "evt_1Bv8hrxiqNW5eP2NjRlTkLf7",
        "2017-08-15",
        "2017-10-03T18:21:53Z",
        Fact::Invoice {
            change: InvoiceChange::PaymentSucceeded,
            invoice: InvoiceFacts {
                id: "in_1BJPEvxiqNW5eP2NjFEBuSHI".to_owned(),
                customer_id: Some(FN_CUS.to_owned()),
                subscription_id: Some(FN_SUB.to_owned()),
                // No `status` or `billing_reason` yet in 2017.
                status: None,
                billing_reason: None,
                amount_paid: usd(2900),
                amount_due: usd(2900),
                attempt_count: 1,
                // The subscription line's period, although it says `subscription: null`.
                period_start: Some(at("2017-10-03T17:21:48Z")),
                period_end: Some(at("2017-11-03T17:21:48Z")),
                next_payment_attempt: None,
                price_ids: vec!["pro-monthly".to_owned()],
            },
        },
    );
}

#[test]
fn a_2018_failed_invoice_without_amount_paid_paid_nothing() {
    let body = fixture_json(REAL_WORLD, "legacy-2018.invoice.payment_failed");
    assert!(body["data"]["object"].get("amount_paid").is_none());
    let facts = InvoiceFacts {
        id: "in_1CI1rQxiqNW5eP2NFio3PsY0".to_owned(),
        customer_id: Some(FN_CUS.to_owned()),
        subscription_id: Some(FN_SUB.to_owned()),
        status: None,
        billing_reason: None,
        amount_paid: usd(0),
        amount_due: usd(2900),
        attempt_count: 1,
        period_start: Some(at("2018-04-03T17:21:48Z")),
        period_end: Some(at("2018-05-03T17:21:48Z")),
        next_payment_attempt: Some(at("2018-04-06T18:22:04Z")),
        price_ids: vec!["pro-monthly".to_owned()],
    };
    check(
        "legacy-2018.invoice.payment_failed",
        "evt_1ChWKjxiqNW5eP2NGfUDSqR2",
        "2018-02-28",
        "2018-04-03T18:21:54Z",
        Fact::Invoice {
            change: InvoiceChange::PaymentFailed,
            invoice: facts.clone(),
        },
    );

    // `invoice.payment_failed` never needs `paid` or `total`.
    let mut body = body;
    let object = body["data"]["object"].as_object_mut().unwrap();
    object.remove("paid");
    object.remove("total");
    match parse_event(&bytes(&body)).unwrap().fact {
        Fact::Invoice { invoice, .. } => assert_eq!(invoice, facts),
        other => panic!("{other:?}"),
    }
}

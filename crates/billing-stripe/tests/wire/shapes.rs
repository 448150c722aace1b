//! The differences between API versions, expanded references, and `null` versus absent fields,
//! exercised by editing fixtures.

use billing_domain::facts::{
    ChargeFacts, CheckoutMode, CheckoutSession, CustomerFacts, DisputeFacts, InvoiceFacts,
    PaymentIntentChange, PaymentIntentFacts, RefundFacts, SubscriptionChange, SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Fact, SubscriptionStatus};
use billing_stripe::parse_event;
use serde_json::{Value, json};

use crate::story::{BASIL, PRE_BASIL, PRICE_ID, STORIES, Story, at, bytes, fixture_json};

fn parse(value: &Value) -> BillingEvent {
    parse_event(&bytes(value)).unwrap()
}

fn object(event: &mut Value) -> &mut Value {
    &mut event["data"]["object"]
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn subscription(value: &Value) -> SubscriptionSnapshot {
    match parse(value).fact {
        Fact::Subscription { subscription, .. } => subscription,
        other => panic!("not a subscription: {other:?}"),
    }
}

fn invoice(value: &Value) -> InvoiceFacts {
    match parse(value).fact {
        Fact::Invoice { invoice, .. } => invoice,
        other => panic!("not an invoice: {other:?}"),
    }
}

fn checkout(value: &Value) -> CheckoutSession {
    match parse(value).fact {
        Fact::CheckoutCompleted(session) => session,
        other => panic!("not a checkout session: {other:?}"),
    }
}

fn customer(value: &Value) -> CustomerFacts {
    match parse(value).fact {
        Fact::Customer { customer, .. } => customer,
        other => panic!("not a customer: {other:?}"),
    }
}

fn payment_intent(value: &Value) -> PaymentIntentFacts {
    match parse(value).fact {
        Fact::PaymentIntent { payment_intent, .. } => payment_intent,
        other => panic!("not a payment intent: {other:?}"),
    }
}

fn charge(value: &Value) -> ChargeFacts {
    match parse(value).fact {
        Fact::ChargeRefunded(charge) => charge,
        other => panic!("not a charge: {other:?}"),
    }
}

fn refund(value: &Value) -> RefundFacts {
    match parse(value).fact {
        Fact::RefundUpdated(refund) => refund,
        other => panic!("not a refund: {other:?}"),
    }
}

fn dispute(value: &Value) -> DisputeFacts {
    match parse(value).fact {
        Fact::Dispute { dispute, .. } => dispute,
        other => panic!("not a dispute: {other:?}"),
    }
}

/// An expanded object standing in for an id, as `expand[]` renders it.
fn expanded(id: &str, kind: &str) -> Value {
    json!({ "id": id, "object": kind, "livemode": false, "metadata": {} })
}

// ---------------------------------------------------------------- subscription periods

#[test]
fn pre_basil_fixtures_carry_the_period_on_the_subscription_only() {
    let event = fixture_json(PRE_BASIL.folder, "customer.subscription.updated");
    let sub = &event["data"]["object"];
    assert!(sub["current_period_start"].is_i64());
    assert!(
        sub["items"]["data"][0]
            .get("current_period_start")
            .is_none()
    );
}

#[test]
fn basil_fixtures_carry_the_period_on_items_only() {
    let event = fixture_json(BASIL.folder, "customer.subscription.updated");
    let sub = &event["data"]["object"];
    assert!(sub.get("current_period_start").is_none());
    assert!(sub["items"]["data"][0]["current_period_start"].is_i64());
}

#[test]
fn subscription_level_period_wins_over_item_periods() {
    // Pre-basil versions rendered today also carry item periods; the subscription's pair wins.
    let mut event = fixture_json(PRE_BASIL.folder, "customer.subscription.updated");
    let item = &mut object(&mut event)["items"]["data"][0];
    item["current_period_start"] = json!(1_000_000_000);
    item["current_period_end"] = json!(1_100_000_000);
    let sub = subscription(&event);
    assert_eq!(sub.current_period_start, Some(at(PRE_BASIL.resumed_at)));
    assert_eq!(sub.current_period_end, Some(at(PRE_BASIL.main_period_end)));
}

#[test]
fn basil_period_is_the_first_items_even_when_other_items_differ() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    let items = object(&mut event)["items"]["data"].as_array_mut().unwrap();
    let mut annual = items[0].clone();
    annual["id"] = json!("si_annualAddon01");
    annual["price"]["id"] = json!("price_storage_yearly");
    annual["current_period_start"] = json!(1_780_000_000);
    annual["current_period_end"] = json!(1_820_000_000);
    items.push(annual);
    let sub = subscription(&event);
    assert_eq!(sub.price_ids, [PRICE_ID, "price_storage_yearly"]);
    assert_eq!(sub.current_period_start, Some(at(BASIL.resumed_at)));
    assert_eq!(sub.current_period_end, Some(at(BASIL.main_period_end)));
}

#[test]
fn a_subscription_without_periods_or_items_has_no_period_or_price() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        let sub = object(&mut event);
        remove(sub, "current_period_start");
        remove(sub, "current_period_end");
        remove(sub, "items");
        remove(sub, "plan");
        let sub = subscription(&event);
        assert_eq!(sub.current_period_start, None);
        assert_eq!(sub.current_period_end, None);
        assert!(sub.price_ids.is_empty());
        // The rest still reads.
        assert_eq!(sub.status, SubscriptionStatus::PastDue);
    }
}

#[test]
fn empty_items_list_reads_as_no_item() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["items"]["data"] = json!([]);
    remove(object(&mut event), "plan");
    let sub = subscription(&event);
    assert!(sub.price_ids.is_empty());
    assert_eq!(sub.current_period_end, None);
}

// ---------------------------------------------------------------- subscription price

#[test]
fn price_may_be_an_id_string() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.created");
        object(&mut event)["items"]["data"][0]["price"] = json!("price_as_string");
        assert_eq!(subscription(&event).price_ids, ["price_as_string"]);
    }
}

#[test]
fn price_falls_back_to_the_items_plan_then_the_subscriptions_plan() {
    let mut event = fixture_json(PRE_BASIL.folder, "customer.subscription.created");
    let item = &mut object(&mut event)["items"]["data"][0];
    item["price"] = Value::Null;
    item["plan"]["id"] = json!("plan_legacy_item");
    assert_eq!(subscription(&event).price_ids, ["plan_legacy_item"]);

    remove(&mut object(&mut event)["items"]["data"][0], "plan");
    object(&mut event)["plan"] = json!("plan_legacy_top");
    assert_eq!(subscription(&event).price_ids, ["plan_legacy_top"]);
}

// ---------------------------------------------------------------- subscription statuses

#[test]
fn every_known_status_and_an_unknown_one_parse() {
    for status in SubscriptionStatus::KNOWN {
        let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
        object(&mut event)["status"] = json!(status.as_str());
        assert_eq!(subscription(&event).status, status);
    }
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["status"] = json!("hibernating");
    assert_eq!(
        subscription(&event).status,
        SubscriptionStatus::Unknown("hibernating".to_owned())
    );
}

#[test]
fn scheduled_cancellation_reads() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["cancel_at_period_end"] = json!(true);
    object(&mut event)["cancel_at"] = json!(1_792_155_869);
    let sub = subscription(&event);
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.cancel_at, Some(at("2026-10-16T13:04:29Z")));
}

// ---------------------------------------------------------------- invoice subscription

#[test]
fn invoice_subscription_is_read_from_the_place_each_version_puts_it() {
    let pre = fixture_json(PRE_BASIL.folder, "invoice.paid");
    assert!(pre["data"]["object"].get("parent").is_none());
    assert_eq!(
        invoice(&pre).subscription_id.as_deref(),
        Some(PRE_BASIL.sub)
    );

    let basil = fixture_json(BASIL.folder, "invoice.paid");
    assert!(basil["data"]["object"].get("subscription").is_none());
    assert_eq!(invoice(&basil).subscription_id.as_deref(), Some(BASIL.sub));
}

#[test]
fn invoice_subscription_may_be_expanded_in_either_place() {
    let mut pre = fixture_json(PRE_BASIL.folder, "invoice.paid");
    object(&mut pre)["subscription"] = expanded(PRE_BASIL.sub, "subscription");
    assert_eq!(
        invoice(&pre).subscription_id.as_deref(),
        Some(PRE_BASIL.sub)
    );

    let mut basil = fixture_json(BASIL.folder, "invoice.paid");
    object(&mut basil)["parent"]["subscription_details"]["subscription"] =
        expanded(BASIL.sub, "subscription");
    assert_eq!(invoice(&basil).subscription_id.as_deref(), Some(BASIL.sub));
}

#[test]
fn one_off_invoices_have_no_subscription_and_use_the_invoice_period() {
    let mut pre = fixture_json(PRE_BASIL.folder, "invoice.paid");
    let inv = object(&mut pre);
    inv["subscription"] = Value::Null;
    inv["subscription_details"] = Value::Null;
    let line = &mut inv["lines"]["data"][0];
    line["type"] = json!("invoiceitem");
    line["subscription"] = Value::Null;
    line["subscription_item"] = Value::Null;
    let facts = invoice(&pre);
    assert_eq!(facts.subscription_id, None);
    assert!(facts.price_ids.is_empty());
    assert_eq!(facts.period_start, Some(at(PRE_BASIL.resumed_at)));
    assert_eq!(facts.period_end, Some(at(PRE_BASIL.resumed_at)));

    let mut basil = fixture_json(BASIL.folder, "invoice.paid");
    let inv = object(&mut basil);
    inv["parent"] = Value::Null;
    inv["lines"]["data"][0]["parent"] = json!({
        "invoice_item_details": { "invoice_item": "ii_1oneOffCharge", "proration": false,
                                  "proration_details": { "credited_items": null }, "subscription": null },
        "subscription_item_details": null,
        "type": "invoice_item_details"
    });
    let facts = invoice(&basil);
    assert_eq!(facts.subscription_id, None);
    assert!(facts.price_ids.is_empty());
    assert_eq!(facts.period_start, Some(at(BASIL.resumed_at)));
    assert_eq!(facts.period_end, Some(at(BASIL.resumed_at)));
}

#[test]
fn invoice_without_lines_uses_the_invoice_period() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.payment_failed");
        remove(object(&mut event), "lines");
        let facts = invoice(&event);
        assert_eq!(facts.subscription_id.as_deref(), Some(story.sub));
        assert!(facts.price_ids.is_empty());
        assert_eq!(facts.period_start, Some(at(story.resumed_at)));
        assert_eq!(facts.period_end, Some(at(story.resumed_at)));
    }
}

/// A proration line for `subscription` over `[start, end]` on `price`, in the shape of `story`.
fn proration_line(
    story: &Story,
    subscription: &str,
    (start, end): (i64, i64),
    amount: i64,
    price: &str,
) -> Value {
    if story.folder == BASIL.folder {
        json!({
            "id": "il_1proration0001", "object": "line_item", "amount": amount,
            "currency": story.currency, "description": "Time on Pro after 20 Sep 2026",
            "parent": {
                "invoice_item_details": null,
                "subscription_item_details": { "invoice_item": "ii_1proration0001", "proration": true,
                    "proration_details": { "credited_items": null },
                    "subscription": subscription, "subscription_item": "si_other" },
                "type": "subscription_item_details"
            },
            "period": { "end": end, "start": start },
            "pricing": { "price_details": { "price": price, "product": "prod_other" },
                         "type": "price_details", "unit_amount_decimal": null },
            "quantity": 1
        })
    } else {
        json!({
            "id": "il_1proration0001", "object": "line_item", "amount": amount,
            "currency": story.currency, "description": "Time on Pro after 20 Jul 2024",
            "period": { "end": end, "start": start },
            "plan": { "id": price, "object": "plan" },
            "price": { "id": price, "object": "price" },
            "proration": true, "subscription": subscription, "subscription_item": "si_other",
            "type": "invoiceitem", "quantity": 1
        })
    }
}

const OLD_PERIOD: (i64, i64) = (1_700_000_000, 1_700_100_000);

#[test]
fn invoice_price_is_read_from_the_place_each_version_puts_it() {
    let pre = fixture_json(PRE_BASIL.folder, "invoice.paid");
    assert!(pre["data"]["object"]["lines"]["data"][0]["price"].is_object());
    assert_eq!(invoice(&pre).price_ids, [PRICE_ID]);

    let basil = fixture_json(BASIL.folder, "invoice.paid");
    let line = &basil["data"]["object"]["lines"]["data"][0];
    assert!(line.get("price").is_none());
    assert!(line["pricing"]["price_details"]["price"].is_string());
    assert_eq!(invoice(&basil).price_ids, [PRICE_ID]);
}

#[test]
fn invoice_line_price_may_be_expanded_or_a_string_or_a_legacy_plan() {
    let mut basil = fixture_json(BASIL.folder, "invoice.paid");
    object(&mut basil)["lines"]["data"][0]["pricing"]["price_details"]["price"] =
        expanded("price_expanded", "price");
    assert_eq!(invoice(&basil).price_ids, ["price_expanded"]);

    let mut pre = fixture_json(PRE_BASIL.folder, "invoice.paid");
    object(&mut pre)["lines"]["data"][0]["price"] = json!("price_as_string");
    assert_eq!(invoice(&pre).price_ids, ["price_as_string"]);

    object(&mut pre)["lines"]["data"][0]["price"] = Value::Null;
    object(&mut pre)["lines"]["data"][0]["plan"]["id"] = json!("plan_legacy");
    assert_eq!(invoice(&pre).price_ids, ["plan_legacy"]);
}

#[test]
fn invoice_period_prefers_the_non_proration_subscription_line() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        let lines = object(&mut event)["lines"]["data"].as_array_mut().unwrap();
        lines.insert(
            0,
            proration_line(story, story.sub, OLD_PERIOD, 700, "price_new"),
        );
        let facts = invoice(&event);
        assert_eq!(
            facts.period_start,
            Some(at(story.resumed_at)),
            "{}",
            story.folder
        );
        assert_eq!(
            facts.period_end,
            Some(at(story.main_period_end)),
            "{}",
            story.folder
        );
        assert_eq!(facts.price_ids, [PRICE_ID], "{}", story.folder);
    }
}

#[test]
fn proration_only_invoices_take_the_charged_line_over_the_credit() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        let new_period = (1_700_050_000, 1_702_000_000);
        object(&mut event)["lines"]["data"] = json!([
            proration_line(story, story.sub, OLD_PERIOD, -633, "price_old"),
            proration_line(story, story.sub, new_period, 1266, "price_new"),
        ]);
        let facts = invoice(&event);
        assert_eq!(facts.price_ids, ["price_new"], "{}", story.folder);
        assert_eq!(facts.period_start, Some(at("2023-11-15T12:06:40Z")));
        assert_eq!(facts.period_end, Some(at("2023-12-08T01:46:40Z")));
    }
}

#[test]
fn a_lone_credit_line_still_gives_period_and_price() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        object(&mut event)["lines"]["data"] = json!([proration_line(
            story,
            story.sub,
            OLD_PERIOD,
            -633,
            "price_old"
        )]);
        let facts = invoice(&event);
        assert_eq!(facts.period_start, Some(at("2023-11-14T22:13:20Z")));
        assert_eq!(facts.period_end, Some(at("2023-11-16T02:00:00Z")));
        assert_eq!(facts.price_ids, ["price_old"]);
    }
}

#[test]
fn invoice_lines_of_another_subscription_are_skipped() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        let lines = object(&mut event)["lines"]["data"].as_array_mut().unwrap();
        let mut other = lines[0].clone();
        other["period"] = json!({ "start": 1_600_000_000, "end": 1_600_100_000 });
        if story.folder == BASIL.folder {
            other["parent"]["subscription_item_details"]["subscription"] = json!("sub_other");
        } else {
            other["subscription"] = json!("sub_other");
        }
        lines.insert(0, other);
        let facts = invoice(&event);
        assert_eq!(
            facts.period_end,
            Some(at(story.main_period_end)),
            "{}",
            story.folder
        );
    }
}

#[test]
fn invoice_prices_are_every_non_proration_lines_in_order_each_once() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        let lines = object(&mut event)["lines"]["data"].as_array_mut().unwrap();
        let first = lines[0].clone();
        let mut addon = first.clone();
        let mut again = first.clone();
        if story.folder == BASIL.folder {
            addon["pricing"]["price_details"]["price"] = json!("price_addon_storage");
            again["pricing"]["price_details"]["price"] = json!(PRICE_ID);
        } else {
            addon["price"]["id"] = json!("price_addon_storage");
            again["price"] = json!(PRICE_ID);
        }
        // An add-on line first, the plan second, the plan once more (a second quantity
        // line), and a proration, whose price does not count next to regular lines.
        *lines = vec![
            addon,
            first,
            again,
            proration_line(story, story.sub, OLD_PERIOD, 700, "price_new"),
        ];
        let facts = invoice(&event);
        assert_eq!(
            facts.price_ids,
            ["price_addon_storage", PRICE_ID],
            "{}",
            story.folder
        );
        // The period is the first regular line's.
        assert_eq!(facts.period_end, Some(at(story.main_period_end)));
    }
}

#[test]
fn old_invoices_without_amount_paid_read_total_when_paid_and_zero_otherwise() {
    let mut event = fixture_json(PRE_BASIL.folder, "invoice.payment_succeeded");
    remove(object(&mut event), "amount_paid");
    assert_eq!(
        invoice(&event).amount_paid,
        PRE_BASIL.money(PRE_BASIL.amount)
    );
    object(&mut event)["amount_paid"] = Value::Null;
    object(&mut event)["total"] = json!(1234);
    assert_eq!(invoice(&event).amount_paid, PRE_BASIL.money(1234));
    object(&mut event)["paid"] = json!(false);
    assert_eq!(invoice(&event).amount_paid, PRE_BASIL.money(0));

    // A failed payment paid nothing: neither `paid` nor `total` is needed, nor looked at.
    let mut event = fixture_json(PRE_BASIL.folder, "invoice.payment_failed");
    remove(object(&mut event), "amount_paid");
    remove(object(&mut event), "total");
    object(&mut event)["paid"] = json!("not a boolean");
    let facts = invoice(&event);
    assert_eq!(facts.amount_paid, PRE_BASIL.money(0));
    assert_eq!(facts.amount_due, PRE_BASIL.money(PRE_BASIL.amount));
    // A sent `amount_paid` is still read as sent.
    object(&mut event)["amount_paid"] = json!(300);
    assert_eq!(invoice(&event).amount_paid, PRE_BASIL.money(300));
}

// ---------------------------------------------------------------- expanded references

#[test]
fn expanded_customer_subscription_and_payment_intent_read_as_ids() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(subscription(&event).customer_id, story.cus);

        let mut event = fixture_json(story.folder, "invoice.paid");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(invoice(&event).customer_id.as_deref(), Some(story.cus));

        let mut event = fixture_json(story.folder, "checkout.session.completed");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        object(&mut event)["subscription"] = expanded(story.sub, "subscription");
        assert_eq!(checkout(&event), story.checkout());

        let mut event = fixture_json(story.folder, "payment_intent.succeeded");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(
            payment_intent(&event).customer_id.as_deref(),
            Some(story.cus)
        );

        let mut event = fixture_json(story.folder, "charge.refunded");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        let facts = charge(&event);
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));
        assert_eq!(facts.customer_id.as_deref(), Some(story.cus));
    }
}

#[test]
fn expanded_charge_and_payment_intent_on_refunds_and_disputes_read_as_ids() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "charge.refund.updated");
        object(&mut event)["charge"] = expanded(story.ch_ok, "charge");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        let facts = refund(&event);
        assert_eq!(facts.charge_id.as_deref(), Some(story.ch_ok));
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));

        let mut event = fixture_json(story.folder, "charge.dispute.created");
        object(&mut event)["charge"] = expanded(story.ch_ok, "charge");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        let facts = dispute(&event);
        assert_eq!(facts.charge_id.as_deref(), Some(story.ch_ok));
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));
    }
}

#[test]
fn a_deleted_customer_expanded_still_has_its_id() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.deleted");
    object(&mut event)["customer"] =
        json!({ "id": BASIL.cus, "object": "customer", "deleted": true });
    assert_eq!(subscription(&event).customer_id, BASIL.cus);
}

// ---------------------------------------------------------------- null versus absent

/// Sets `key` of the event's object to `null` in one copy and removes it in another.
fn null_and_absent(story: &Story, event_type: &str, key: &str) -> [Value; 2] {
    let mut nulled = fixture_json(story.folder, event_type);
    object(&mut nulled)[key] = Value::Null;
    let mut absent = fixture_json(story.folder, event_type);
    remove(object(&mut absent), key);
    [nulled, absent]
}

#[test]
fn null_and_absent_optional_fields_both_read_as_none() {
    for story in STORIES {
        for event in null_and_absent(story, "checkout.session.completed", "customer") {
            assert_eq!(checkout(&event).customer_id, None);
        }
        for event in null_and_absent(story, "checkout.session.completed", "client_reference_id") {
            let session = checkout(&event);
            assert_eq!(session.client_reference_id, None);
            assert_eq!(session.user_id(), Some("user_123"));
        }
        for event in null_and_absent(story, "checkout.session.completed", "subscription") {
            assert_eq!(checkout(&event).subscription_id, None);
        }
        for event in null_and_absent(story, "customer.updated", "email") {
            assert_eq!(customer(&event).email, None);
        }
        for event in null_and_absent(story, "customer.updated", "metadata") {
            assert_eq!(customer(&event).metadata_user_id, None);
        }
        for event in null_and_absent(story, "customer.subscription.created", "trial_end") {
            assert_eq!(subscription(&event).trial_end, None);
        }
        for event in null_and_absent(
            story,
            "customer.subscription.created",
            "cancel_at_period_end",
        ) {
            assert!(!subscription(&event).cancel_at_period_end);
        }
        for event in null_and_absent(story, "customer.subscription.deleted", "ended_at") {
            assert_eq!(subscription(&event).ended_at, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "next_payment_attempt") {
            assert_eq!(invoice(&event).next_payment_attempt, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "customer") {
            assert_eq!(invoice(&event).customer_id, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "billing_reason") {
            assert_eq!(invoice(&event).billing_reason, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "attempt_count") {
            assert_eq!(invoice(&event).attempt_count, 0);
        }
        for event in null_and_absent(story, "payment_intent.payment_failed", "last_payment_error") {
            assert_eq!(payment_intent(&event).last_error, None);
        }
        for event in null_and_absent(story, "charge.refunded", "payment_intent") {
            assert_eq!(charge(&event).payment_intent_id, None);
        }
        for event in null_and_absent(story, "charge.refunded", "customer") {
            assert_eq!(charge(&event).customer_id, None);
        }
        for event in null_and_absent(story, "payment_intent.succeeded", "latest_charge") {
            assert_eq!(payment_intent(&event).latest_charge_id, None);
        }
        for event in null_and_absent(story, "charge.refund.updated", "charge") {
            assert_eq!(refund(&event).charge_id, None);
        }
        // Old renderings of disputes have no `payment_intent` at all.
        for event in null_and_absent(story, "charge.dispute.closed", "payment_intent") {
            assert_eq!(dispute(&event).payment_intent_id, None);
        }
    }
}

#[test]
fn null_and_absent_envelope_fields() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        event["api_version"] = Value::Null;
        remove(&mut event, "livemode");
        let parsed = parse(&event);
        assert_eq!(parsed.api_version, None);
        assert!(!parsed.livemode);
    }
}

// ---------------------------------------------------------------- checkout details

#[test]
fn checkout_email_falls_back_to_the_prefilled_one() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["customer_details"] = Value::Null;
    object(&mut event)["customer_email"] = json!("prefilled@example.com");
    assert_eq!(
        checkout(&event).customer_email.as_deref(),
        Some("prefilled@example.com")
    );
}

#[test]
fn checkout_payment_mode_with_amount_and_payment_intent() {
    let mut event = fixture_json(PRE_BASIL.folder, "checkout.session.completed");
    let session = object(&mut event);
    session["mode"] = json!("payment");
    session["subscription"] = Value::Null;
    session["payment_intent"] = json!("pi_3oneTimePayment");
    session["amount_total"] = json!(4900);
    session["payment_status"] = json!("paid");
    let facts = checkout(&event);
    assert_eq!(facts.mode, CheckoutMode::Payment);
    assert_eq!(
        facts.payment_intent_id.as_deref(),
        Some("pi_3oneTimePayment")
    );
    assert_eq!(facts.amount_total, Some(PRE_BASIL.money(4900)));
    assert_eq!(facts.payment_status.as_deref(), Some("paid"));
}

#[test]
fn checkout_without_amount_needs_no_currency_and_unknown_modes_are_kept() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    let session = object(&mut event);
    session["amount_total"] = Value::Null;
    session["currency"] = Value::Null;
    session["mode"] = json!("installments");
    let facts = checkout(&event);
    assert_eq!(facts.amount_total, None);
    assert_eq!(facts.mode, CheckoutMode::Unknown("installments".to_owned()));
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["mode"] = json!("setup");
    assert_eq!(checkout(&event).mode, CheckoutMode::Setup);
}

#[test]
fn checkout_client_reference_id_wins_for_the_user_id() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["client_reference_id"] = json!("user_from_reference");
    let session = checkout(&event);
    assert_eq!(session.user_id(), Some("user_from_reference"));
    assert_eq!(session.metadata_user_id.as_deref(), Some("user_123"));
}

// ---------------------------------------------------------------- payment intents

#[test]
fn payment_intent_metadata_user_id_is_read() {
    let mut event = fixture_json(BASIL.folder, "payment_intent.succeeded");
    object(&mut event)["metadata"] = json!({ "user_id": "user_123", "order": "42" });
    assert_eq!(
        payment_intent(&event).metadata_user_id.as_deref(),
        Some("user_123")
    );
}

#[test]
fn latest_charge_may_be_expanded_and_wins_over_the_old_charges_list() {
    let mut event = fixture_json(BASIL.folder, "payment_intent.succeeded");
    object(&mut event)["latest_charge"] = expanded(BASIL.ch_ok, "charge");
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some(BASIL.ch_ok)
    );
    object(&mut event)["charges"] = json!({ "object": "list", "data": [{ "id": "ch_older" }] });
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some(BASIL.ch_ok)
    );
    // Before 2022-11-15 only the list is sent: its first (newest) charge.
    object(&mut event)["latest_charge"] = Value::Null;
    object(&mut event)["charges"]["data"] = json!([{ "id": "ch_newest" }, { "id": "ch_older" }]);
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some("ch_newest")
    );
    // A payment intent never confirmed has no charge at all.
    object(&mut event)["charges"]["data"] = json!([]);
    assert_eq!(payment_intent(&event).latest_charge_id, None);
    remove(object(&mut event), "charges");
    remove(object(&mut event), "latest_charge");
    assert_eq!(payment_intent(&event).latest_charge_id, None);
}

#[test]
fn payment_intent_change_is_taken_from_the_event_type() {
    let cases = [
        ("payment_intent.succeeded", PaymentIntentChange::Succeeded),
        (
            "payment_intent.payment_failed",
            PaymentIntentChange::PaymentFailed,
        ),
        ("payment_intent.processing", PaymentIntentChange::Processing),
        (
            "payment_intent.requires_action",
            PaymentIntentChange::RequiresAction,
        ),
        ("payment_intent.canceled", PaymentIntentChange::Canceled),
    ];
    for (event_type, expected) in cases {
        let mut event = fixture_json(PRE_BASIL.folder, "payment_intent.succeeded");
        event["type"] = json!(event_type);
        match parse(&event).fact {
            Fact::PaymentIntent { change, .. } => assert_eq!(change, expected, "{event_type}"),
            other => panic!("{event_type}: {other:?}"),
        }
    }
}

#[test]
fn every_dispute_event_is_a_dispute_and_only_closed_is_closed() {
    let cases = [
        ("charge.dispute.created", false),
        ("charge.dispute.updated", false),
        ("charge.dispute.funds_withdrawn", false),
        ("charge.dispute.funds_reinstated", false),
        ("charge.dispute.closed", true),
    ];
    for story in STORIES {
        for (event_type, expected) in cases {
            let mut event = fixture_json(story.folder, "charge.dispute.created");
            event["type"] = json!(event_type);
            match parse(&event).fact {
                Fact::Dispute { closed, dispute } => {
                    assert_eq!(closed, expected, "{event_type}");
                    assert_eq!(dispute.status, "needs_response");
                }
                other => panic!("{event_type}: {other:?}"),
            }
        }
    }
}

#[test]
fn dispute_statuses_are_kept_as_sent() {
    for status in [
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
        "prevented",
        "some_future_status",
    ] {
        let mut event = fixture_json(BASIL.folder, "charge.dispute.closed");
        object(&mut event)["status"] = json!(status);
        assert_eq!(dispute(&event).status, status);
    }
}

#[test]
fn payment_error_without_message_keeps_its_code() {
    let mut event = fixture_json(PRE_BASIL.folder, "payment_intent.payment_failed");
    object(&mut event)["last_payment_error"]["message"] = Value::Null;
    assert_eq!(
        payment_intent(&event).last_error.as_deref(),
        Some("card_declined")
    );
}

// ---------------------------------------------------------------- unknown and extra fields

#[test]
fn unknown_fields_anywhere_are_ignored() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        event["context"] = json!("acct_1Future");
        event["data"]["future_data"] = json!([1, 2, 3]);
        object(&mut event)["billing_mode"] = json!({ "type": "flexible", "updated_at": 1 });
        object(&mut event)["items"]["data"][0]["something_new"] = json!({ "deep": [null] });
        assert_eq!(
            parse(&event),
            story.expected("customer.subscription.updated")
        );
    }
}

#[test]
fn subscription_change_is_taken_from_the_event_type() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    event["type"] = json!("customer.subscription.resumed");
    match parse(&event).fact {
        Fact::Subscription { change, .. } => assert_eq!(change, SubscriptionChange::Resumed),
        other => panic!("{other:?}"),
    }
}

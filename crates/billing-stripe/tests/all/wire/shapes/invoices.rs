//! Invoices: where each version puts the subscription, the period and the prices, which line
//! is chosen, and the amount paid of invoices older than `amount_paid`.

use serde_json::{Value, json};

use super::{expanded, invoice, object, remove};
use crate::wire::story::{BASIL, PRE_BASIL, PRICE_ID, STORIES, Story, at, fixture_json};

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

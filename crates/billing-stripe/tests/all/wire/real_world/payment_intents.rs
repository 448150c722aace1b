//! Payment intents: declined, needing authentication, SEPA processing, and Fieldnote's 2020
//! renderings with embedded charges.

use billing_domain::Fact;
use billing_domain::facts::{PaymentIntentChange, PaymentIntentFacts};

use super::{FN_CUS, NW_CUS, check, eur, usd};
use crate::wire::story::{REAL_WORLD, fixture_json};

// ---------------------------------------------------------------- payment intents

const NW_RENEWAL_PI: &str = "pi_3RgNzGCCE3QtRND3roYM0wSm";
const NW_DECLINED_CHARGE: &str = "ch_3RgNzGCCE3QtRND3FnsRGusp";

fn northwind_renewal(status: &str, last_error: Option<&str>) -> PaymentIntentFacts {
    PaymentIntentFacts {
        id: NW_RENEWAL_PI.to_owned(),
        customer_id: Some(NW_CUS.to_owned()),
        amount: usd(53_900),
        status: status.to_owned(),
        last_error: last_error.map(str::to_owned),
        latest_charge_id: Some(NW_DECLINED_CHARGE.to_owned()),
        metadata_user_id: None,
    }
}

#[test]
fn a_declined_card_gives_the_message_and_the_latest_charge() {
    check(
        "card-declined.payment_intent.payment_failed",
        "evt_3RuRNMCCE3QtRND32Dzb9Ik5",
        "2024-06-20",
        "2025-06-12T16:42:23Z",
        Fact::PaymentIntent {
            change: PaymentIntentChange::PaymentFailed,
            payment_intent: northwind_renewal(
                "requires_payment_method",
                Some("Your card was declined."),
            ),
        },
    );
}

#[test]
fn a_payment_needing_authentication_still_names_the_declined_charge() {
    // 3D Secure comes before any charge, so `latest_charge` is still the earlier decline.
    check(
        "three-d-secure.payment_intent.requires_action",
        "evt_3RStexCCE3QtRND3x5OB4GKw",
        "2024-06-20",
        "2025-06-13T15:52:22Z",
        Fact::PaymentIntent {
            change: PaymentIntentChange::RequiresAction,
            payment_intent: northwind_renewal("requires_action", None),
        },
    );
}

#[test]
fn a_sepa_debit_in_processing_names_its_py_charge() {
    check(
        "sepa-debit.payment_intent.processing",
        "evt_3RB5KyHadY8NBeUdyC8ivNy5",
        "2025-03-31.basil",
        "2025-10-01T06:12:42Z",
        Fact::PaymentIntent {
            change: PaymentIntentChange::Processing,
            payment_intent: PaymentIntentFacts {
                id: "pi_3RjOC6HadY8NBeUd3QmlItGc".to_owned(),
                customer_id: Some("cus_L3psFwWwxEiAUr".to_owned()),
                amount: eur(2900),
                status: "processing".to_owned(),
                last_error: None,
                latest_charge_id: Some("py_3RjOC6HadY8NBeUdWyWyEIRp".to_owned()),
                metadata_user_id: None,
            },
        },
    );
}

fn fieldnote_order(status: &str) -> PaymentIntentFacts {
    PaymentIntentFacts {
        id: "pi_1HxgOdxiqNW5eP2Nl2cMmI9O".to_owned(),
        customer_id: Some(FN_CUS.to_owned()),
        amount: usd(7900),
        status: status.to_owned(),
        last_error: Some("Your card was declined.".to_owned()),
        // No `latest_charge` in 2020-08-27: the newest entry of `charges`.
        latest_charge_id: Some("ch_1HxgOdxiqNW5eP2N2oAmdfGX".to_owned()),
        metadata_user_id: Some("user_2v9x1m".to_owned()),
    }
}

#[test]
fn a_2020_declined_card_gives_the_first_embedded_charge() {
    let body = fixture_json(
        REAL_WORLD,
        "card-declined-2020.payment_intent.payment_failed",
    );
    assert!(body["data"]["object"].get("latest_charge").is_none());
    check(
        "card-declined-2020.payment_intent.payment_failed",
        "evt_3HC7oyxiqNW5eP2NGuP2WIot",
        "2020-08-27",
        "2020-09-11T08:15:14Z",
        Fact::PaymentIntent {
            change: PaymentIntentChange::PaymentFailed,
            payment_intent: fieldnote_order("requires_payment_method"),
        },
    );
}

#[test]
fn an_abandoned_2020_payment_intent_is_canceled_with_its_last_error() {
    check(
        "abandoned-2020.payment_intent.canceled",
        "evt_3HO2e9xiqNW5eP2N9ssDUurk",
        "2020-08-27",
        "2020-09-12T08:30:01Z",
        Fact::PaymentIntent {
            change: PaymentIntentChange::Canceled,
            payment_intent: fieldnote_order("canceled"),
        },
    );
}

//! A Charges API charge (no payment intent) refunded and disputed, and disputes through every
//! event: an inquiry, a prevented dispute and a won chargeback.

use billing_domain::Fact;
use billing_domain::facts::{ChargeFacts, DisputeFacts, DisputeOutcome, RefundFacts};

use super::{FN_CUS, check, eur, parsed, usd};
use crate::wire::story::{REAL_WORLD, fixture_json};

// ---------------------------------------------------------------- a Charges API charge

const FN_CHARGE: &str = "ch_1G4625xiqNW5eP2NRfnkdnDB";
const FN_DISPUTE: &str = "du_1GOSmbxiqNW5eP2NwcO3emho";

#[test]
fn a_charges_api_charge_is_refunded_without_a_payment_intent() {
    check(
        "charges-api.charge.refunded",
        "evt_1GusHlxiqNW5eP2NWsSQvA4F",
        "2019-12-03",
        "2020-02-14T10:31:56Z",
        Fact::ChargeRefunded(ChargeFacts {
            id: FN_CHARGE.to_owned(),
            payment_intent_id: None,
            customer_id: Some(FN_CUS.to_owned()),
            amount: usd(4500),
            amount_refunded: 1500,
        }),
    );
    check(
        "charges-api.charge.refund.updated",
        "evt_1GFaA8xiqNW5eP2N6GITSj5O",
        "2019-12-03",
        "2020-02-14T10:47:09Z",
        Fact::RefundUpdated(RefundFacts {
            id: "re_1GNRPPxiqNW5eP2NmJ3KMF6Z".to_owned(),
            charge_id: Some(FN_CHARGE.to_owned()),
            payment_intent_id: None,
            amount: usd(1500),
            status: "succeeded".to_owned(),
        }),
    );
}

fn fieldnote_dispute(status: &str) -> DisputeFacts {
    DisputeFacts {
        id: FN_DISPUTE.to_owned(),
        charge_id: Some(FN_CHARGE.to_owned()),
        payment_intent_id: None,
        amount: usd(3000),
        status: status.to_owned(),
    }
}

#[test]
fn a_charges_api_charges_dispute_has_no_payment_intent_and_is_lost() {
    for name in [
        "charges-api.charge.dispute.created",
        "charges-api.charge.dispute.closed",
    ] {
        let body = fixture_json(REAL_WORLD, name);
        assert!(body["data"]["object"].get("payment_intent").is_none());
    }
    check(
        "charges-api.charge.dispute.created",
        "evt_1GcgftxiqNW5eP2N6MSziI3g",
        "2019-12-03",
        "2020-03-02T21:55:04Z",
        Fact::Dispute {
            closed: false,
            dispute: fieldnote_dispute("needs_response"),
        },
    );
    check(
        "charges-api.charge.dispute.closed",
        "evt_1GSSpKxiqNW5eP2NbOKOstLA",
        "2019-12-03",
        "2020-05-11T19:02:38Z",
        Fact::Dispute {
            closed: true,
            dispute: fieldnote_dispute("lost"),
        },
    );
}

// ---------------------------------------------------------------- disputes

#[test]
fn an_inquiry_opens_and_closes_without_a_chargeback() {
    let dispute = |status: &str| DisputeFacts {
        id: "dp_1R7yHuCCE3QtRND3uatvzKO1".to_owned(),
        charge_id: Some("ch_3R2JVkCCE3QtRND3Sa9J26MP".to_owned()),
        payment_intent_id: Some("pi_3R2JVkCCE3QtRND3SWl9EsHt".to_owned()),
        amount: usd(53_900),
        status: status.to_owned(),
    };
    check(
        "inquiry.charge.dispute.created",
        "evt_3R9xOoCCE3QtRND3IQer4NGR",
        "2024-06-20",
        "2025-07-02T19:44:31Z",
        Fact::Dispute {
            closed: false,
            dispute: dispute("warning_needs_response"),
        },
    );
    check(
        "inquiry.charge.dispute.closed",
        "evt_3RQL0DCCE3QtRND3BMV8ZnF0",
        "2024-06-20",
        "2025-07-24T05:10:12Z",
        Fact::Dispute {
            closed: true,
            dispute: dispute("warning_closed"),
        },
    );
}

#[test]
fn a_prevented_dispute_arrives_created_and_already_ended() {
    let event = parsed("prevented.charge.dispute.created");
    check(
        "prevented.charge.dispute.created",
        "evt_3RExDdHadY8NBeUdtxCBdCus",
        "2025-08-27.basil",
        "2025-12-02T13:18:45Z",
        Fact::Dispute {
            closed: false,
            dispute: DisputeFacts {
                id: "dp_1RKFKTHadY8NBeUd64kjvynz".to_owned(),
                charge_id: Some("ch_3RiEoWHadY8NBeUd5yX6baUd".to_owned()),
                payment_intent_id: Some("pi_3RiEoWHadY8NBeUdIlx48Nj0".to_owned()),
                amount: eur(1900),
                status: "prevented".to_owned(),
            },
        },
    );
    // `closed` is only the event type; the status says the dispute ended.
    match event.fact {
        Fact::Dispute { dispute, .. } => assert_eq!(
            DisputeOutcome::of_status(&dispute.status),
            DisputeOutcome::ClosedWithoutChargeback
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_won_chargeback_moves_through_every_dispute_event() {
    let dispute = |status: &str| DisputeFacts {
        id: "dp_1R9fFCHadY8NBeUd3znruWdr".to_owned(),
        charge_id: Some("ch_3Rw28OHadY8NBeUdIqixJwdC".to_owned()),
        payment_intent_id: Some("pi_3Rw28OHadY8NBeUdw7rtW4tJ".to_owned()),
        amount: eur(5900),
        status: status.to_owned(),
    };
    let steps = [
        (
            "won.charge.dispute.funds_withdrawn",
            "evt_3RLlSlHadY8NBeUdKfIW9UTk",
            "2025-11-03T09:27:16Z",
            "needs_response",
            false,
        ),
        (
            "won.charge.dispute.updated",
            "evt_3RHecEHadY8NBeUdBINUVzw8",
            "2025-11-12T16:40:02Z",
            "under_review",
            false,
        ),
        (
            "won.charge.dispute.funds_reinstated",
            "evt_3RrXPuHadY8NBeUdGMgwKtsT",
            "2025-12-15T08:03:52Z",
            "won",
            false,
        ),
        (
            "won.charge.dispute.closed",
            "evt_3RqPlAHadY8NBeUdzbsoc9rd",
            "2025-12-15T08:03:52Z",
            "won",
            true,
        ),
    ];
    for (name, id, created, status, closed) in steps {
        check(
            name,
            id,
            "2025-03-31.basil",
            created,
            Fact::Dispute {
                closed,
                dispute: dispute(status),
            },
        );
    }
}

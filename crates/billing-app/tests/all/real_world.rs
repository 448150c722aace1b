//! The Stripe adapter's real-world fixtures (several items, Charges API charges, dispute
//! statuses, payment intent states, pre-2019 invoices) parsed from JSON and ingested, in
//! delivery order and reversed: both orders end in the same, right state.

use std::path::PathBuf;
use std::sync::Arc;

use crate::support::{self, credits, t0};
use billing_app::{AppSettings, BillingApp};
use billing_domain::{Catalog, SubscriptionStatus};
use billing_ports::{
    BillingStore, CustomerRecord, DisputeStatus, ManualClock, PaymentRecord, PaymentStatus,
    StoreError, TxFuture,
};
use billing_store_diesel::DieselStore;

on_both_backends!(
    several_items_are_on_the_highest_tier_in_both_shapes,
    a_charges_api_charge_keeps_its_refund_and_lost_dispute,
    dispute_outcomes_follow_stripe_statuses,
    a_payment_intent_seen_first_by_its_failure_keeps_the_error,
    payment_intent_states_start_from_their_first_event,
    pre_2019_invoices_grant_credits_from_their_total,
);

/// The example catalog, plus the legacy plan id `pro-monthly` of the 2017 fixtures as PRO.
fn app(store: DieselStore) -> BillingApp<DieselStore> {
    let toml = include_str!("../../../../plans.toml").replace(
        r#"price_ids = ["price_pro_monthly", "price_pro_yearly"]"#,
        r#"price_ids = ["price_pro_monthly", "price_pro_yearly", "pro-monthly"]"#,
    );
    BillingApp::new(
        Arc::new(store),
        Arc::new(Catalog::from_toml_str(&toml).unwrap()),
        Arc::new(ManualClock::new(t0())),
        None,
        AppSettings::default(),
    )
}

fn fixture(name: &str) -> (billing_domain::BillingEvent, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../billing-stripe/tests/fixtures/real-world")
        .join(format!("{name}.json"));
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (billing_stripe::parse_event(body.as_bytes()).unwrap(), body)
}

/// Ingests the named fixtures in this order, each twice (a redelivery changes nothing).
async fn deliver(app: &BillingApp<DieselStore>, names: &[&str]) {
    for name in names {
        for _ in 0..2 {
            let (event, body) = fixture(name);
            app.ingest(event, body)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Runs `check` after delivering `names` in order on one fresh store, and reversed on another.
async fn in_both_orders<F, Fut>(store: DieselStore, names: &[&str], check: F)
where
    F: Fn(DieselStore) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let app = app(store.clone());
    deliver(&app, names).await;
    check(store.clone()).await;
    let reversed_db = reversed_database(&store).await;
    let reversed = app_on(&reversed_db);
    let mut backwards = names.to_vec();
    backwards.reverse();
    deliver(&reversed, &backwards).await;
    check(reversed_db.store().clone()).await;
}

async fn reversed_database(like: &DieselStore) -> billing_store_diesel::testing::TestDatabase {
    match like.backend() {
        billing_store_diesel::Backend::Postgres => {
            billing_store_diesel::testing::TestDatabase::postgres().await
        }
        billing_store_diesel::Backend::Sqlite => {
            billing_store_diesel::testing::TestDatabase::sqlite().await
        }
    }
}

fn app_on(db: &billing_store_diesel::testing::TestDatabase) -> BillingApp<DieselStore> {
    app(db.store().clone())
}

async fn payment(store: &DieselStore, pi: Option<&str>, charge: Option<&str>) -> PaymentRecord {
    let (pi, charge) = (pi.map(str::to_owned), charge.map(str::to_owned));
    let mut rows = store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.payments_matching(pi.as_deref(), charge.as_deref()).await })
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

async fn link(store: &DieselStore, customer: &str, user: &str) {
    let record = CustomerRecord {
        stripe_customer_id: customer.to_owned(),
        user_id: Some(user.to_owned()),
        email: None,
        deleted: false,
    };
    store
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move { tx.save_customer(&record, t0()).await })
        })
        .await
        .unwrap();
}

async fn several_items_are_on_the_highest_tier_in_both_shapes(store: DieselStore) {
    for shape in ["basil", "pre-basil"] {
        let db = reversed_database(&store).await;
        let names = [
            format!("two-items.{shape}.customer.subscription.created"),
            format!("two-items.{shape}.invoice.paid"),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        in_both_orders(db.store().clone(), &names, |store| async move {
            let sub = support::subscription(&store, "sub_1R7uvRCCE3QtRND3kNkNA5BL")
                .await
                .unwrap();
            assert_eq!(sub.status, SubscriptionStatus::Active);
            assert_eq!(sub.tier, "ENTERPRISE");
            assert_eq!(sub.price_id.as_deref(), Some("price_enterprise_monthly"));
            assert_eq!(
                sub.item_price_ids,
                ["price_addon_seats", "price_enterprise_monthly"]
            );
            // The invoice's lines alone decide its credits, whichever came first.
            assert_eq!(credits(&store, "user_8f3k2q").await, 10_000);
            let ent = app(store.clone())
                .entitlements("user_8f3k2q")
                .await
                .unwrap();
            assert_eq!(ent.tier.as_str(), "ENTERPRISE");
        })
        .await;
    }
}

async fn a_charges_api_charge_keeps_its_refund_and_lost_dispute(store: DieselStore) {
    let names = [
        "charges-api.charge.refunded",
        "charges-api.charge.refund.updated",
        "charges-api.charge.dispute.created",
        "charges-api.charge.dispute.closed",
    ];
    in_both_orders(store, &names, |store| async move {
        let p = payment(&store, None, Some("ch_1G4625xiqNW5eP2NRfnkdnDB")).await;
        assert_eq!(p.payment_intent_id, None);
        assert_eq!(p.amount.amount_minor, 4_500);
        assert_eq!(p.amount_refunded, 1_500);
        assert_eq!(p.stripe_customer_id.as_deref(), Some("cus_Ak2I8OzOlxTylL"));
        assert_eq!(p.dispute_status, DisputeStatus::Lost);
        assert_eq!(p.dispute_stripe_status.as_deref(), Some("lost"));
    })
    .await;
}

async fn dispute_outcomes_follow_stripe_statuses(store: DieselStore) {
    let cases: [(&[&str], &str, DisputeStatus, &str); 3] = [
        (
            &[
                "inquiry.charge.dispute.created",
                "inquiry.charge.dispute.closed",
            ],
            "pi_3R2JVkCCE3QtRND3SWl9EsHt",
            DisputeStatus::ClosedWithoutChargeback,
            "warning_closed",
        ),
        (
            &["prevented.charge.dispute.created"],
            "pi_3RiEoWHadY8NBeUdIlx48Nj0",
            DisputeStatus::ClosedWithoutChargeback,
            "prevented",
        ),
        (
            &[
                "won.charge.dispute.funds_withdrawn",
                "won.charge.dispute.updated",
                "won.charge.dispute.funds_reinstated",
                "won.charge.dispute.closed",
            ],
            "pi_3Rw28OHadY8NBeUdw7rtW4tJ",
            DisputeStatus::Won,
            "won",
        ),
    ];
    for (names, pi, outcome, stripe_status) in cases {
        let db = reversed_database(&store).await;
        in_both_orders(db.store().clone(), names, |store| async move {
            let p = payment(&store, Some(pi), None).await;
            assert_eq!(
                (p.dispute_status, p.dispute_stripe_status.as_deref()),
                (outcome, Some(stripe_status)),
                "{pi}"
            );
        })
        .await;
    }
}

async fn a_payment_intent_seen_first_by_its_failure_keeps_the_error(store: DieselStore) {
    for (name, pi, charge) in [
        (
            "card-declined.payment_intent.payment_failed",
            "pi_3RgNzGCCE3QtRND3roYM0wSm",
            "ch_3RgNzGCCE3QtRND3FnsRGusp",
        ),
        (
            "card-declined-2020.payment_intent.payment_failed",
            "pi_1HxgOdxiqNW5eP2Nl2cMmI9O",
            "",
        ),
    ] {
        let app = app(store.clone());
        deliver(&app, &[name]).await;
        let p = payment(&store, Some(pi), None).await;
        assert_eq!(p.status, PaymentStatus::Failed, "{name}");
        assert_eq!(
            p.last_error.as_deref(),
            Some("Your card was declined."),
            "{name}"
        );
        if !charge.is_empty() {
            assert_eq!(p.charge_id.as_deref(), Some(charge));
        } else {
            assert!(
                p.charge_id.as_deref().is_some_and(|c| c.starts_with("ch_")),
                "{p:?}"
            );
        }
    }
}

async fn payment_intent_states_start_from_their_first_event(store: DieselStore) {
    // 3-D Secure asked for after the decline: the newer event decides, whatever the order.
    in_both_orders(
        store.clone(),
        &[
            "card-declined.payment_intent.payment_failed",
            "three-d-secure.payment_intent.requires_action",
        ],
        |store| async move {
            let p = payment(&store, Some("pi_3RgNzGCCE3QtRND3roYM0wSm"), None).await;
            assert_eq!(
                (p.status, p.last_error),
                (PaymentStatus::RequiresAction, None)
            );
        },
    )
    .await;
    // Declined in 2020, then abandoned: canceled is final.
    let db = reversed_database(&store).await;
    in_both_orders(
        db.store().clone(),
        &[
            "card-declined-2020.payment_intent.payment_failed",
            "abandoned-2020.payment_intent.canceled",
        ],
        |store| async move {
            let p = payment(&store, Some("pi_1HxgOdxiqNW5eP2Nl2cMmI9O"), None).await;
            assert_eq!(p.status, PaymentStatus::Canceled);
            assert_eq!(p.user_id.as_deref(), Some("user_2v9x1m"));
        },
    )
    .await;
    let app = app(store.clone());
    deliver(&app, &["sepa-debit.payment_intent.processing"]).await;
    let p = payment(&store, Some("pi_3RjOC6HadY8NBeUd3QmlItGc"), None).await;
    assert_eq!(p.status, PaymentStatus::Processing);
    assert_eq!(p.charge_id.as_deref(), Some("py_3RjOC6HadY8NBeUdWyWyEIRp"));
}

async fn pre_2019_invoices_grant_credits_from_their_total(store: DieselStore) {
    link(&store, "cus_Ak2I8OzOlxTylL", "user_legacy_41c7").await;
    let app = app(store.clone());
    deliver(
        &app,
        &[
            "legacy-2017.invoice.payment_succeeded",
            "legacy-2018.invoice.payment_failed",
        ],
    )
    .await;
    // One paid invoice of the legacy PRO plan; the failed one grants nothing.
    assert_eq!(credits(&store, "user_legacy_41c7").await, 1_000);
}

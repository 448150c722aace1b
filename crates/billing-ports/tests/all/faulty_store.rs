//! A fault injected midway through a unit of work rolls back what the work wrote before it,
//! and the same store works again once healed.

use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{
    BillingStore, Cause, CreditEntry, CreditReason, CustomerRecord, ScopedFutureExt, StoreError,
};
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeZone, Utc};

const CUSTOMER: &str = "cus_T4nW8pLq2ZcR6v";
const USER: &str = "user_3f9b1d7e";

fn customer() -> CustomerRecord {
    CustomerRecord {
        stripe_customer_id: CUSTOMER.to_owned(),
        user_id: Some(USER.to_owned()),
        email: Some("ada.k@example.org".to_owned()),
        deleted: false,
    }
}

fn grant(invoice: &str) -> CreditEntry {
    CreditEntry {
        user_id: Some(USER.to_owned()),
        stripe_customer_id: Some(CUSTOMER.to_owned()),
        amount: 1_000,
        reason: CreditReason::SubscriptionPeriod,
        source_key: format!("invoice:{invoice}"),
        created_at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap(),
    }
}

/// Saves the customer, then grants credits: the unit of work a fault on `AddCredit` cuts in two.
async fn customer_then_credit<S: BillingStore>(
    store: &S,
    invoice: &str,
) -> Result<bool, StoreError> {
    let (customer, entry) = (customer(), grant(invoice));
    store
        .transaction(|tx| {
            async move {
                tx.save_customer(&customer, entry.created_at).await?;
                tx.add_credit(&entry).await
            }
            .scope_boxed()
        })
        .await
}

async fn balance<S: BillingStore>(store: &S) -> (Option<CustomerRecord>, i64) {
    store
        .read(|tx| {
            async move {
                let customer = tx.customer(CUSTOMER).await?;
                let credits = tx.credit_balance(USER).await?;
                Ok::<_, StoreError>((customer, credits))
            }
            .scope_boxed()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_midway_rolls_back_the_whole_unit_of_work() {
    let db = TestDatabase::sqlite().await;
    let faulty = FaultyStore::new(db.store().clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Unavailable(Cause::msg("injected: connection reset during add_credit")),
    );

    let error = customer_then_credit(&faulty, "in_1T4nX2eZvKYlo2Ca9Qd")
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    // The customer saved before the fault is gone with the transaction.
    assert_eq!(balance(db.store()).await, (None, 0));
    assert_eq!(faulty.calls(StoreCall::SaveCustomer), 1);
    assert_eq!(faulty.calls(StoreCall::AddCredit), 1);

    faulty.heal();
    assert!(
        customer_then_credit(&faulty, "in_1T4nX2eZvKYlo2Ca9Qd")
            .await
            .unwrap()
    );
    assert_eq!(balance(db.store()).await, (Some(customer()), 1_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_bookkeeping_calls_can_fail_too() {
    let db = TestDatabase::sqlite().await;
    let faulty = FaultyStore::new(db.store().clone());
    customer_then_credit(&faulty, "in_1T4nY72eZvKYlo2CeK3w")
        .await
        .unwrap();

    faulty.fail_times(
        StoreCall::CreditBalance,
        StoreError::Query(Cause::msg("injected: statement failed")),
        1,
    );
    let failed = faulty
        .read(|tx| async move { tx.credit_balance(USER).await }.scope_boxed())
        .await;
    assert!(matches!(failed, Err(StoreError::Query(_))), "{failed:?}");
    // One failure only: the next read answers.
    assert_eq!(balance(&faulty).await.1, 1_000);

    faulty.fail(
        StoreCall::Event,
        StoreError::Unavailable(Cause::msg("injected: pool exhausted")),
    );
    assert!(faulty.event("evt_1T4nZ12eZvKYlo2CxP0s").await.is_err());
    faulty.fail(
        StoreCall::Transaction,
        StoreError::Unavailable(Cause::msg("injected: no connection")),
    );
    let refused = customer_then_credit(&faulty, "in_1T4nZ82eZvKYlo2Cb4Rm").await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))));
    // Refused before any statement ran.
    assert_eq!(faulty.calls(StoreCall::SaveCustomer), 1);
}

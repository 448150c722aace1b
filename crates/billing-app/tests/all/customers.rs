//! Customers and their users under concurrency: two Stripe customers of one user, first seen
//! at the same moment, never collide on the user's unique link.

use crate::support::{app, customer_user, t0};
use billing_domain::facts::CustomerFacts;
use billing_domain::{BillingEvent, Fact};
use billing_store_diesel::DieselStore;

on_both_backends!(two_customers_of_one_user_arriving_together_both_apply_and_one_links);

fn customer_created(event_id: &str, customer: &str, user: &str) -> BillingEvent {
    BillingEvent {
        id: event_id.to_owned(),
        event_type: "customer.created".to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: true,
        created: t0(),
        fact: Fact::Customer {
            customer: CustomerFacts {
                id: customer.to_owned(),
                email: None,
                metadata_user_id: Some(user.to_owned()),
            },
            deleted: false,
        },
    }
}

async fn two_customers_of_one_user_arriving_together_both_apply_and_one_links(store: DieselStore) {
    let app = app(store.clone());
    for round in 0..20 {
        let user = format!("user_r{round}_8QmZ2c");
        let (a, b) = (format!("cus_A{round}xT4q9"), format!("cus_B{round}kP7w2"));
        let first = customer_created(&format!("evt_1A{round}Lq3"), &a, &user);
        let second = customer_created(&format!("evt_1B{round}Zr8"), &b, &user);
        let (one, two) = tokio::join!(
            app.ingest(first, "{}".into()),
            app.ingest(second, "{}".into())
        );
        one.unwrap();
        two.unwrap();
        let linked = [
            customer_user(&store, &a).await,
            customer_user(&store, &b).await,
        ];
        assert_eq!(
            linked
                .iter()
                .filter(|u| u.as_deref() == Some(user.as_str()))
                .count(),
            1,
            "round {round}: {linked:?}"
        );
    }
}

//! Delivering bodies to the app as the webhook endpoint does (parse, then ingest with the raw
//! body), a bounded number in flight on tokio tasks.

use billing_app::{BillingApp, IngestOutcome};
use billing_store_diesel::DieselStore;
use billing_streamgen::Stream;
use futures_util::StreamExt;

/// What one delivery returned.
pub type Outcome = Result<IngestOutcome, String>;

/// Delivers `stream.events[i]` for each `i` of `order`, `in_flight` at a time; the outcome of
/// each delivery, in `order`'s order.
pub async fn deliver(
    app: &BillingApp<DieselStore>,
    stream: &Stream,
    order: &[usize],
    in_flight: usize,
) -> Vec<Outcome> {
    let tasks = order.iter().enumerate().map(|(slot, &i)| {
        let app = app.clone();
        let body = stream.events[i].body.clone();
        let task = tokio::spawn(async move {
            let event =
                billing_stripe::parse_event(body.as_bytes()).map_err(|e| format!("parse: {e}"))?;
            app.ingest(event, body).await.map_err(|e| e.to_string())
        });
        async move {
            let outcome = task
                .await
                .unwrap_or_else(|e| panic!("delivery task panicked: {e}"));
            (slot, outcome)
        }
    });
    let mut outcomes: Vec<(usize, Outcome)> = futures_util::stream::iter(tasks)
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|(slot, _)| *slot);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// A short word for an outcome, for reports.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Ok(IngestOutcome::Processed) => "processed".to_owned(),
        Ok(IngestOutcome::Ignored) => "ignored".to_owned(),
        Ok(IngestOutcome::Stale) => "STALE".to_owned(),
        Ok(IngestOutcome::Duplicate(status)) => format!("duplicate({status})"),
        Err(error) => format!("ERROR {error}"),
    }
}

/// Delivers the stream in time order, one event at a time per customer, `customers` customers
/// at once: customers share no state, so this is the in-order delivery, only faster. The
/// outcome of each event, by its index in the stream.
pub async fn deliver_in_order(
    app: &BillingApp<DieselStore>,
    stream: &Stream,
    customers: usize,
) -> Vec<Outcome> {
    let mut by_customer: Vec<Vec<usize>> = vec![Vec::new(); stream.customers.len()];
    for (i, event) in stream.events.iter().enumerate() {
        by_customer[event.customer].push(i);
    }
    let tasks = by_customer.into_iter().map(|indices| {
        let app = app.clone();
        let bodies: Vec<(usize, String)> = indices
            .into_iter()
            .map(|i| (i, stream.events[i].body.clone()))
            .collect();
        let task = tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(bodies.len());
            for (i, body) in bodies {
                let outcome = match billing_stripe::parse_event(body.as_bytes()) {
                    Ok(event) => app.ingest(event, body).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("parse: {e}")),
                };
                outcomes.push((i, outcome));
            }
            outcomes
        });
        async move {
            task.await
                .unwrap_or_else(|e| panic!("delivery task panicked: {e}"))
        }
    });
    let mut outcomes: Vec<(usize, Outcome)> = futures_util::stream::iter(tasks)
        .buffer_unordered(customers.max(1))
        .flat_map(futures_util::stream::iter)
        .collect()
        .await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

//! The final state, read with SQL from the billing server's tables (`migrations/postgres`) and
//! judged by the generator's oracle: every delivered event stored once and done with its body,
//! every subscription equal to its newest snapshot, each paid invoice's credits granted once
//! (and no other grant), payments and refunds at their totals; and, from the answers, every
//! event applied by exactly one of its deliveries.

use std::collections::{BTreeMap, HashMap};

use billing_streamgen::oracle::{
    StoredEvent, StoredPayment, StoredSubscription, event_problem, payment_problems,
    subscription_diff,
};
use billing_streamgen::{Expected, Scenario};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::error::Error;
use crate::replay::Outcome;

/// Ids per query.
const CHUNK: usize = 2_000;

/// One level's deliveries, to check.
pub(crate) struct Delivered<'a> {
    /// The stream and its delivery order.
    pub(crate) scenario: &'a Scenario,
    /// What the stream must end as.
    pub(crate) expected: &'a Expected,
    /// Each delivery's outcome, in `scenario.order`'s order.
    pub(crate) outcomes: &'a [Outcome],
}

/// What the check found, by kind, and how much it looked at.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Findings {
    /// Events, subscriptions, grants, users and payments checked.
    pub(crate) checked: BTreeMap<&'static str, usize>,
    /// Kind of difference → every instance, in a readable sentence.
    pub(crate) problems: BTreeMap<&'static str, Vec<String>>,
}

impl Findings {
    /// True when nothing is wrong.
    pub(crate) fn passed(&self) -> bool {
        self.problems.values().all(Vec::is_empty)
    }

    fn add(&mut self, kind: &'static str, problem: String) {
        self.problems.entry(kind).or_default().push(problem);
    }

    fn count(&mut self, what: &'static str, n: usize) {
        *self.checked.entry(what).or_default() += n;
    }
}

/// Checks every level's stream against the database at `url`.
pub(crate) async fn check(url: &str, levels: &[Delivered<'_>]) -> Result<Findings, Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(Error::database("connect for the check"))?;
    tokio::spawn(async move {
        // Ends with the client; a broken connection shows in the next query.
        let _ = connection.await;
    });
    let mut findings = Findings::default();
    for level in levels {
        check_answers(level, &mut findings);
        check_events(&client, level, &mut findings).await?;
        check_subscriptions(&client, level, &mut findings).await?;
        check_credits(&client, level, &mut findings).await?;
        check_payments(&client, level, &mut findings).await?;
    }
    Ok(findings)
}

/// From the answers: every event applied by exactly one 2xx answer that is not a duplicate.
fn check_answers(level: &Delivered<'_>, findings: &mut Findings) {
    let events = &level.scenario.stream.events;
    let mut applied = vec![0usize; events.len()];
    for (&i, outcome) in level.scenario.order.iter().zip(level.outcomes) {
        match outcome.answer {
            crate::replay::Answer::Status {
                duplicate: false, ..
            } if outcome.answer.is_success() => applied[i] += 1,
            _ => {}
        }
    }
    for (event, n) in events.iter().zip(applied) {
        if n != 1 {
            findings.add(
                "events not applied by exactly one delivery (by the answers)",
                format!("{} {}: applied {n} times", event.event_type, event.id),
            );
        }
    }
}

async fn check_events(
    client: &Client,
    level: &Delivered<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let events = &level.scenario.stream.events;
    findings.count("events", events.len());
    let mut stored: HashMap<String, StoredEvent> = HashMap::with_capacity(events.len());
    let hashes: HashMap<&str, String> = events
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                hex::encode(Sha256::digest(e.body.as_bytes())),
            )
        })
        .collect();
    for chunk in events.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
        let rows = client
            .query(
                "SELECT id, status, attempts, \
                 encode(sha256(convert_to(payload, 'UTF8')), 'hex') \
                 FROM stripe_events WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(Error::database("read stripe_events"))?;
        for row in rows {
            let id: String = row.get(0);
            let hash: String = row.get(3);
            let payload_matches = hashes.get(id.as_str()) == Some(&hash);
            stored.insert(
                id,
                StoredEvent {
                    status: row.get(1),
                    attempts: i64::from(row.get::<_, i32>(2)),
                    payload_matches,
                },
            );
        }
    }
    for event in events {
        if let Some(problem) = event_problem(stored.get(&event.id)) {
            findings.add(
                "events not stored once and done",
                format!("{} {}: {problem}", event.event_type, event.id),
            );
        }
    }
    Ok(())
}

async fn check_subscriptions(
    client: &Client,
    level: &Delivered<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let truths = &level.expected.subscriptions;
    findings.count("subscriptions", truths.len());
    let ids: Vec<&str> = truths.keys().map(String::as_str).collect();
    let mut stored: HashMap<String, StoredSubscription> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = client
            .query(
                "SELECT stripe_subscription_id, status, price_id, \
                 extract(epoch FROM current_period_start)::bigint, \
                 extract(epoch FROM current_period_end)::bigint, cancel_at_period_end \
                 FROM subscriptions WHERE stripe_subscription_id = ANY($1)",
                &[&chunk],
            )
            .await
            .map_err(Error::database("read subscriptions"))?;
        for row in rows {
            stored.insert(
                row.get(0),
                StoredSubscription {
                    status: row.get(1),
                    price_id: row.get(2),
                    current_period_start: row.get(3),
                    current_period_end: row.get(4),
                    cancel_at_period_end: row.get(5),
                },
            );
        }
    }
    let events = &level.scenario.stream.events;
    for (id, truth) in truths {
        let diffs = match stored.get(id) {
            None => vec!["not stored".to_owned()],
            Some(record) => subscription_diff(&truth.snapshot, record),
        };
        if !diffs.is_empty() {
            let newest = &events[truth.event];
            findings.add(
                "subscriptions not equal to their newest snapshot",
                format!(
                    "{id} ({}): {} — newest snapshot {} {}: {}",
                    truth.snapshot.user,
                    diffs.join("; "),
                    newest.event_type,
                    newest.id,
                    newest.intent.summary()
                ),
            );
        }
    }
    Ok(())
}

async fn check_credits(
    client: &Client,
    level: &Delivered<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let expected = level.expected;
    findings.count("paid invoices", expected.grants.len());
    findings.count("users", expected.credits.len());
    let keys: Vec<String> = expected
        .grants
        .keys()
        .map(|invoice| format!("invoice:{invoice}"))
        .collect();
    let mut grants: HashMap<String, (Option<String>, i64)> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let rows = client
            .query(
                "SELECT source_key, user_id, amount FROM credit_ledger WHERE source_key = ANY($1)",
                &[&chunk],
            )
            .await
            .map_err(Error::database("read credit_ledger by invoice"))?;
        for row in rows {
            grants.insert(row.get(0), (row.get(1), row.get(2)));
        }
    }
    for (invoice, grant) in &expected.grants {
        let problem = match grants.get(&format!("invoice:{invoice}")) {
            None => Some("no credit grant".to_owned()),
            Some((user, _)) if user.as_deref() != Some(&grant.user) => Some(format!(
                "granted to {} (expected {})",
                user.as_deref().unwrap_or("no user"),
                grant.user
            )),
            Some((_, amount)) if *amount != grant.credits => {
                Some(format!("{amount} credits (expected {})", grant.credits))
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            findings.add(
                "paid invoices not granted once",
                format!("{invoice}: {problem}"),
            );
        }
    }
    let users: Vec<&str> = expected.credits.keys().map(String::as_str).collect();
    let mut balances: HashMap<String, i64> = HashMap::new();
    for chunk in users.chunks(CHUNK) {
        let rows = client
            .query(
                "SELECT user_id, CAST(SUM(amount) AS BIGINT) FROM credit_ledger \
                 WHERE user_id = ANY($1) GROUP BY user_id",
                &[&chunk],
            )
            .await
            .map_err(Error::database("read credit balances"))?;
        for row in rows {
            balances.insert(row.get(0), row.get(1));
        }
    }
    for (user, &want) in &expected.credits {
        let got = balances.get(user).copied().unwrap_or(0);
        if got != want {
            findings.add(
                "users with wrong credits",
                format!("{user}: {got} credits (expected {want})"),
            );
        }
    }
    Ok(())
}

async fn check_payments(
    client: &Client,
    level: &Delivered<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let truths = &level.expected.payments;
    findings.count("payments", truths.len());
    let ids: Vec<&str> = truths.keys().map(String::as_str).collect();
    let mut payments: HashMap<String, StoredPayment> = HashMap::new();
    let mut orders: HashMap<String, i64> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let rows = client
            .query(
                "SELECT payment_intent_id, status, amount_refunded FROM payments \
                 WHERE payment_intent_id = ANY($1)",
                &[&chunk],
            )
            .await
            .map_err(Error::database("read payments"))?;
        for row in rows {
            payments.insert(
                row.get(0),
                StoredPayment {
                    status: row.get(1),
                    amount_refunded: row.get(2),
                },
            );
        }
        let rows = client
            .query(
                "SELECT payment_intent_id, amount_refunded FROM orders \
                 WHERE payment_intent_id = ANY($1)",
                &[&chunk],
            )
            .await
            .map_err(Error::database("read orders"))?;
        for row in rows {
            orders.insert(row.get(0), row.get(1));
        }
    }
    for (pi, truth) in truths {
        for problem in payment_problems(pi, truth, payments.get(pi), orders.get(pi).copied()) {
            findings.add("payments with a wrong state", problem);
        }
    }
    Ok(())
}

//! `billingctl trigger SCENARIO --url … [--secret …] [--api-key …] [--plans FILE]`: sends a
//! realistic, signed sequence of Stripe webhook events to a server, offline (like `stripe
//! trigger`), and prints the user's entitlements after each step. Subscriptions are on the
//! catalog's cheapest paid price (`--plans`, else the configuration's `PLANS_FILE`).
//!
//! The bodies are `billing-streamgen`'s: the adapter's fixture payloads (API version
//! `2025-03-31.basil`) with fresh Stripe-shaped ids on every run, each parsed back before it is
//! sent. Each is signed with the secret at send time.

mod scenarios;

use std::path::PathBuf;

use billing_domain::Catalog;
use billing_server::config::Config;
use billing_streamgen::fixtures::Templates;
use billing_streamgen::journey::{Account, Actor};
use billing_streamgen::model::Shape;
use billing_streamgen::render::Renderer;
use billing_streamgen::stream::check_parsed;
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;

use crate::cli::TriggerArgs;
use crate::error::CtlError;
use crate::output::Output;
use crate::trigger::scenarios::Paid;

/// A story `trigger` can play.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// A subscription bought, renewed, failing into grace, recovered, canceled.
    SubscriptionLifecycle,
    /// A one-time purchase with a partial refund and a lost dispute.
    OneTimeRefundDispute,
    /// A trial converting into a paid subscription.
    TrialConversion,
}

/// One delivered event and the server's answer.
#[derive(Serialize)]
struct Delivery {
    id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    status: u16,
    answer: Value,
}

/// One step: what was sent, and the entitlements read afterwards.
#[derive(Serialize)]
struct StepReport {
    title: String,
    deliveries: Vec<Delivery>,
    /// `GET /v1/users/{user}/entitlements`, when an API key was given.
    entitlements: Option<Value>,
}

/// The whole run (`--json`).
#[derive(Serialize)]
struct Report {
    scenario: Scenario,
    user: String,
    customer: String,
    steps: Vec<StepReport>,
}

impl Serialize for Scenario {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let name = clap::ValueEnum::to_possible_value(self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        serializer.serialize_str(&name)
    }
}

/// The first entry of a comma-separated list (the configuration's form).
fn first(list: &str) -> String {
    list.split(',').next().unwrap_or_default().trim().to_owned()
}

/// The catalog whose prices the stories use: `--plans`, else the configuration's.
fn catalog(config: &Option<PathBuf>, plans: Option<&std::path::Path>) -> Result<Catalog, CtlError> {
    match plans {
        Some(file) => crate::plans::read(file),
        None => Ok(Config::load_catalog(config.as_deref())?),
    }
}

/// Plays the scenario against the server. A refused delivery makes it fail (exit 1) after the
/// report; under `--json` the report is the error's details (one document).
pub(crate) async fn run(
    config: &Option<PathBuf>,
    args: TriggerArgs,
    out: &Output,
) -> Result<(), CtlError> {
    let catalog = catalog(config, args.plans.as_deref())?;
    let paid = Paid::of(&catalog).ok_or(CtlError::NoPaidPrice)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(CtlError::Random)?;
    let mut rng = StdRng::from_seed(seed);
    let mut renderer = Renderer::new(&mut rng);
    renderer.add_product(&mut rng, paid.price.product_name);
    let templates: &Templates = renderer.templates(Shape::Basil);
    let mut account = Account::new(&mut rng, templates);
    let now = Utc::now().timestamp();
    let (customer, renames, steps) = {
        let mut actor = Actor::new(&mut rng, &mut account, templates, now, now);
        let steps = scenarios::play(args.scenario, &mut actor, now, &paid);
        let journey = actor.finish();
        (
            journey.customer,
            journey.renames,
            scenarios::split(steps, journey.events),
        )
    };
    let secret = first(&args.secret);
    let api_key = args.api_key.as_deref().map(first).filter(|k| !k.is_empty());
    let base = args.url.trim_end_matches('/').to_owned();
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    out.line(format_args!(
        "{:?} for user {} (customer {}) at {base}",
        args.scenario, customer.user, customer.id
    ));
    let mut reports = Vec::new();
    let mut refused = 0;
    let mut sent = 0;
    for (n, step) in steps.into_iter().enumerate() {
        out.line(format_args!("\n== {}. {}", n + 1, step.title));
        let mut deliveries = Vec::new();
        for planned in step.events {
            let id = account.ids.long(&mut rng, "evt");
            let body = renderer.render(
                &mut rng,
                Shape::Basil,
                &renames,
                &id,
                planned.created,
                &planned.intent,
            );
            let event = billing_streamgen::Event {
                id,
                created: planned.created,
                event_type: planned.intent.event_type(),
                body,
                intent: planned.intent,
                customer: 0,
            };
            check_parsed(&event)?;
            let delivery = deliver(&client, &base, &secret, event).await?;
            out.line(format_args!(
                "   {:<38} {} -> {}",
                delivery.event_type, delivery.id, delivery.status
            ));
            if !(200..300).contains(&delivery.status) {
                refused += 1;
                out.line(format_args!("      {}", delivery.answer));
            }
            sent += 1;
            deliveries.push(delivery);
        }
        let entitlements = match &api_key {
            Some(key) => Some(entitlements(&client, &base, key, &customer.user).await?),
            None => None,
        };
        match &entitlements {
            Some(value) => out.line(format_args!(
                "   entitlements: {}",
                serde_json::to_string_pretty(value)?.replace('\n', "\n   ")
            )),
            None => out.line("   (no --api-key: entitlements not read)"),
        }
        reports.push(StepReport {
            title: step.title,
            deliveries,
            entitlements,
        });
    }
    if refused > 0 {
        return Err(CtlError::Refused {
            refused,
            sent,
            details: if out.is_json() {
                serde_json::to_value(report(args.scenario, customer, reports))?
            } else {
                Value::Null
            },
        });
    }
    if out.is_json() {
        out.print(&report(args.scenario, customer, reports), |_| String::new())?;
    }
    Ok(())
}

/// The whole run, for `--json`.
fn report(
    scenario: Scenario,
    customer: billing_streamgen::model::CustomerObj,
    steps: Vec<StepReport>,
) -> Report {
    Report {
        scenario,
        user: customer.user,
        customer: customer.id,
        steps,
    }
}

/// Signs and posts one event; the server's status and answer.
async fn deliver(
    client: &awc::Client,
    base: &str,
    secret: &str,
    event: billing_streamgen::Event,
) -> Result<Delivery, CtlError> {
    let signature =
        stripe_webhook_signature::sign(event.body.as_bytes(), secret, Utc::now().timestamp());
    let mut response = client
        .post(format!("{base}/webhooks/stripe"))
        .insert_header(("Stripe-Signature", signature))
        .insert_header(("Content-Type", "application/json"))
        .send_body(event.body)
        .await
        .map_err(|e| CtlError::Http(format!("POST {base}/webhooks/stripe: {e}")))?;
    let body = response
        .body()
        .await
        .map_err(|e| CtlError::Http(format!("reading the answer: {e}")))?;
    Ok(Delivery {
        id: event.id,
        event_type: event.event_type,
        status: response.status().as_u16(),
        answer: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
    })
}

/// The user's entitlements, as `/v1` answers them.
async fn entitlements(
    client: &awc::Client,
    base: &str,
    api_key: &str,
    user: &str,
) -> Result<Value, CtlError> {
    let url = format!("{base}/v1/users/{user}/entitlements");
    let mut response = client
        .get(&url)
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .send()
        .await
        .map_err(|e| CtlError::Http(format!("GET {url}: {e}")))?;
    let body = response
        .body()
        .await
        .map_err(|e| CtlError::Http(format!("reading the answer: {e}")))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(CtlError::Http(format!(
            "GET {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(serde_json::from_slice(&body)?)
}

//! `billing-server demo`: plays a realistic, signed Stripe event sequence against a running
//! server — a subscription bought, renewed, a payment failing into grace, recovered, cancelled —
//! and prints the user's entitlements after each step. No Stripe account needed.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// Where to send the events.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The webhook signing secret the server is configured with.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET")]
    webhook_secret: String,
    /// An API key the server accepts.
    #[arg(long, env = "BILLING_API_KEYS")]
    api_key: String,
    /// The user the story is about.
    #[arg(long, default_value = "demo_user")]
    user: String,
}

/// One purchase story's ids and times.
struct Story {
    user: String,
    tag: String,
    now: DateTime<Utc>,
}

impl Story {
    fn period(&self, n: i64) -> (i64, i64) {
        // Period 3 started yesterday, so its grace period (3 days) is still running now.
        let start = self.now - TimeDelta::days(1) - TimeDelta::days(30 * (3 - n));
        (start.timestamp(), (start + TimeDelta::days(30)).timestamp())
    }

    fn event(&self, name: &str, event_type: &str, created: i64, object: Value) -> Value {
        json!({
            "id": format!("evt_{}_{name}", self.tag), "object": "event", "type": event_type,
            "api_version": "2025-03-31.basil", "created": created, "livemode": false,
            "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
            "data": {"object": object},
        })
    }

    fn subscription(&self, status: &str, period: i64, cancel_at_period_end: bool) -> Value {
        let (start, end) = self.period(period);
        json!({
            "id": format!("sub_{}", self.tag), "object": "subscription", "customer": format!("cus_{}", self.tag),
            "status": status, "cancel_at_period_end": cancel_at_period_end, "cancel_at": null,
            "canceled_at": if status == "canceled" { json!(self.now.timestamp()) } else { Value::Null },
            "ended_at": null, "trial_end": null, "metadata": {"user_id": self.user},
            "items": {"object": "list", "data": [{
                "id": format!("si_{}", self.tag), "object": "subscription_item",
                "price": {"id": "price_pro_monthly", "object": "price", "unit_amount": 2000, "currency": "usd"},
                "current_period_start": start, "current_period_end": end, "quantity": 1,
            }]},
        })
    }

    fn invoice(&self, n: i64, status: &str, paid: i64) -> Value {
        let (start, end) = self.period(n);
        json!({
            "id": format!("in_{}_{n}", self.tag), "object": "invoice", "customer": format!("cus_{}", self.tag),
            "status": status, "billing_reason": if n == 1 { "subscription_create" } else { "subscription_cycle" },
            "amount_due": 2000, "amount_paid": paid, "amount_remaining": 2000 - paid, "currency": "usd",
            "attempt_count": 1, "period_start": start, "period_end": start, "next_payment_attempt": null,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": format!("sub_{}", self.tag), "metadata": {}}},
            "lines": {"object": "list", "data": [{
                "id": format!("il_{}_{n}", self.tag), "object": "line_item", "amount": 2000, "currency": "usd",
                "period": {"start": start, "end": end},
                "pricing": {"type": "price_details", "price_details": {"price": "price_pro_monthly", "product": "prod_pro"}},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": format!("sub_{}", self.tag), "subscription_item": format!("si_{}", self.tag)}},
            }]},
        })
    }

    /// The story, as (step title, events of the step).
    fn steps(&self) -> Vec<(&'static str, Vec<Value>)> {
        let (p1, _) = self.period(1);
        let (p2, _) = self.period(2);
        let (p3, _) = self.period(3);
        let now = self.now.timestamp();
        let customer = json!({
            "id": format!("cus_{}", self.tag), "object": "customer", "email": format!("{}@example.com", self.user),
            "metadata": {"user_id": self.user},
        });
        let checkout = json!({
            "id": format!("cs_{}", self.tag), "object": "checkout.session", "mode": "subscription",
            "customer": format!("cus_{}", self.tag), "customer_email": null, "client_reference_id": self.user,
            "metadata": {"user_id": self.user}, "subscription": format!("sub_{}", self.tag), "payment_intent": null,
            "amount_total": 2000, "currency": "usd", "payment_status": "paid", "status": "complete",
        });
        vec![
            (
                "1. subscription bought (PRO, monthly)",
                vec![
                    self.event("customer", "customer.created", p1, customer),
                    self.event("checkout", "checkout.session.completed", p1 + 5, checkout),
                    self.event(
                        "sub_created",
                        "customer.subscription.created",
                        p1 + 5,
                        self.subscription("active", 1, false),
                    ),
                    self.event(
                        "paid_1",
                        "invoice.paid",
                        p1 + 6,
                        self.invoice(1, "paid", 2000),
                    ),
                ],
            ),
            (
                "2. renewed for a second month",
                vec![
                    self.event(
                        "sub_renewed",
                        "customer.subscription.updated",
                        p2,
                        self.subscription("active", 2, false),
                    ),
                    self.event(
                        "paid_2",
                        "invoice.paid",
                        p2 + 1,
                        self.invoice(2, "paid", 2000),
                    ),
                ],
            ),
            (
                "3. the third payment fails: past due, in grace",
                vec![
                    self.event(
                        "failed_3",
                        "invoice.payment_failed",
                        p3,
                        self.invoice(3, "open", 0),
                    ),
                    self.event(
                        "sub_past_due",
                        "customer.subscription.updated",
                        p3,
                        self.subscription("past_due", 3, false),
                    ),
                ],
            ),
            (
                "4. the retry succeeds: recovered",
                vec![
                    self.event(
                        "paid_3",
                        "invoice.paid",
                        now - 3600,
                        self.invoice(3, "paid", 2000),
                    ),
                    self.event(
                        "sub_recovered",
                        "customer.subscription.updated",
                        now - 3600,
                        self.subscription("active", 3, false),
                    ),
                ],
            ),
            (
                "5. cancelled (at period end, then ended early by support)",
                vec![
                    self.event(
                        "sub_canceling",
                        "customer.subscription.updated",
                        now - 1800,
                        self.subscription("active", 3, true),
                    ),
                    self.event(
                        "sub_deleted",
                        "customer.subscription.deleted",
                        now - 60,
                        self.subscription("canceled", 3, true),
                    ),
                ],
            ),
        ]
    }
}

/// Runs the story against the server at `args.url`.
#[allow(
    clippy::print_stdout,
    reason = "the demo prints the story for the person running it"
)]
pub(crate) async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let story = Story {
        user: args.user.clone(),
        tag: format!("demo{}", now.timestamp()),
        now,
    };
    let client = awc::Client::default();
    let secret = args
        .webhook_secret
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let api_key = args
        .api_key
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    for (title, events) in story.steps() {
        println!("\n== {title}");
        for event in events {
            let body = serde_json::to_vec(&event)?;
            let signature = stripe_webhook_signature::sign(&body, &secret, Utc::now().timestamp());
            let mut response = client
                .post(format!("{}/webhooks/stripe", args.url))
                .insert_header(("Stripe-Signature", signature))
                .insert_header(("Content-Type", "application/json"))
                .send_body(body)
                .await?;
            let answer = String::from_utf8_lossy(&response.body().await?).into_owned();
            println!(
                "   {:<38} -> {} {answer}",
                event["type"].as_str().unwrap_or(""),
                response.status().as_u16()
            );
        }
        let mut response = client
            .get(format!("{}/v1/users/{}/entitlements", args.url, args.user))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .send()
            .await?;
        let entitlements: Value = serde_json::from_slice(&response.body().await?)?;
        println!(
            "   entitlements: {}",
            serde_json::to_string_pretty(&entitlements)?.replace('\n', "\n   ")
        );
    }
    Ok(())
}

//! Against `localstripe` (a stateful fake of the Stripe API, from PyPI): create a customer
//! through the client, give it a subscription, and read it back.
//!
//! localstripe has no prices, Checkout, billing portal or idempotency keys, so only the
//! customer and subscription calls are exercised; it answers in a pre-basil shape, which the
//! wire parser reads like any other. Install it with
//! `python3 -m pip install localstripe==1.15.10`. The test is skipped, with the reason
//! printed, when `python3` or pip is missing; when both are there but localstripe is not, it
//! fails and says how to install it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use billing_domain::SubscriptionStatus;
use billing_ports::{GatewayError, StripeGateway};
use billing_stripe::client::{StripeClient, StripeClientConfig};
use stripe_client_core::{RequestBuilder, StripeMethod};

use crate::client::support::SECRET;

/// Serves localstripe's application on 127.0.0.1 (its own command listens on every
/// interface), on a port the OS picks and prints, without its pickle file in /tmp.
const SERVE: &str = r#"
import socket
from aiohttp import web
from localstripe import resources
from localstripe.server import app
resources.store.dump_to_disk = lambda: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
"#;

/// The pip command that installs the fake.
const INSTALL: &str = "python3 -m pip install localstripe==1.15.10";

/// A running localstripe, stopped when dropped.
struct LocalStripe {
    child: Child,
    port: u16,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts localstripe, or says why the test cannot run.
fn start() -> Option<LocalStripe> {
    if !succeeds("python3", &["--version"]) {
        eprintln!("skipped: python3 is not installed (localstripe needs it)");
        return None;
    }
    if !succeeds("python3", &["-c", "import localstripe"]) {
        if !succeeds("python3", &["-m", "pip", "--version"]) {
            eprintln!("skipped: pip is not installed, so localstripe cannot be ({INSTALL})");
            return None;
        }
        panic!("localstripe is not installed; run: {INSTALL}");
    }
    let mut child = Command::new("python3")
        .args(["-c", SERVE])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Ok(port) = line.trim().parse() else {
        let _ = child.kill();
        let mut stderr = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("localstripe did not start: {line:?} {stderr}");
    };
    Some(LocalStripe { child, port })
}

/// A POST through async-stripe's client, for the objects our client does not create.
async fn post(client: &stripe::Client, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let form: BTreeMap<&str, &str> = form.iter().copied().collect();
    let value = RequestBuilder::new(StripeMethod::Post, path)
        .form(&form)
        .customize::<miniserde::json::Value>()
        .send(client)
        .await
        .unwrap();
    serde_json::from_str(&miniserde::json::to_string(&value)).unwrap()
}

#[tokio::test]
async fn customer_and_subscriptions_round_trip_through_localstripe() {
    let Some(fake) = start() else {
        return;
    };
    let base = format!("http://127.0.0.1:{}/", fake.port);
    let client = StripeClient::new(StripeClientConfig {
        api_base: Some(base.clone()),
        timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(50),
        ..StripeClientConfig::new(SECRET)
    })
    .unwrap();

    let customer = client
        .create_customer("user_ls", Some("ls@example.com"), "customer-user_ls")
        .await
        .unwrap();
    assert!(customer.starts_with("cus_"), "{customer}");
    assert!(
        client
            .customer_subscriptions(&customer)
            .await
            .unwrap()
            .is_empty()
    );

    let raw = stripe::ClientBuilder::new(SECRET)
        .url(base)
        .build()
        .unwrap();
    let product = post(&raw, "/products", &[("name", "Pro"), ("type", "service")]).await;
    let product = product["id"].as_str().unwrap();
    post(
        &raw,
        "/plans",
        &[
            ("id", "price_pro_monthly"),
            ("amount", "1900"),
            ("currency", "eur"),
            ("interval", "month"),
            ("product", product),
        ],
    )
    .await;
    let created = post(
        &raw,
        "/subscriptions",
        &[
            ("customer", customer.as_str()),
            ("items[0][plan]", "price_pro_monthly"),
            ("metadata[user_id]", "user_ls"),
            // Without a trial, localstripe wants a payment method first.
            ("trial_period_days", "14"),
        ],
    )
    .await;
    let subscription_id = created["id"].as_str().unwrap();

    let listed = client.customer_subscriptions(&customer).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let snapshot = &listed[0];
    assert_eq!(snapshot.id, subscription_id);
    assert_eq!(snapshot.customer_id, customer);
    assert_eq!(snapshot.price_ids, ["price_pro_monthly"]);
    assert_eq!(snapshot.metadata_user_id.as_deref(), Some("user_ls"));
    assert!(!matches!(snapshot.status, SubscriptionStatus::Unknown(_)));
    assert!(snapshot.current_period_end.is_some());

    let fetched = client.fetch_subscription(subscription_id).await.unwrap();
    assert_eq!(&fetched, snapshot);

    let missing = client.fetch_subscription("sub_missing").await.unwrap_err();
    assert!(matches!(missing, GatewayError::NotFound(_)), "{missing:?}");
}

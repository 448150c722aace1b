//! Running the binary with a configuration that points at a test database.

use std::process::Command;

use billing_ports::{BillingStore, EventStatus, NewEvent, StoreError, TxFuture};
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeDelta, Utc};
use serde_json::Value;

pub const PLANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.toml");

/// What one run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the one JSON document `--json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// `billingctl ARGS` with the server's configuration in the environment, on `db`.
pub fn billingctl(db: &TestDatabase, args: &[&str]) -> Run {
    billingctl_with(db, &[], args)
}

/// `billingctl ARGS` on `db`, with `extra` environment variables beside the configuration.
pub fn billingctl_with(db: &TestDatabase, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_billingctl"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("STRIPE_SECRET_KEY", "sk_test_billingctl")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_billingctl")
        .env("BILLING_API_KEYS", "bootstrap_key_0123456789")
        .env("PLANS_FILE", PLANS)
        .env("DATABASE_MAX_CONNECTIONS", "2")
        .envs(extra.iter().copied());
    run(command)
}

/// `billingctl ARGS` with nothing configured.
pub fn bare(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_billingctl"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    run(command)
}

fn run(mut command: Command) -> Run {
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Stripe-shaped event id never used before.
pub fn event_id() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).unwrap();
    let alnum: String = bytes
        .iter()
        .map(|b| char::from(ALNUM[usize::from(*b % 62)]))
        .collect();
    format!("evt_{alnum}")
}

const ALNUM: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Stores an event of `event_type` received `age` ago: done in `status`, or failed with
/// `error`.
pub async fn stored_event(
    db: &TestDatabase,
    event_type: &str,
    status: EventStatus,
    age: TimeDelta,
    error: Option<&str>,
) -> String {
    let id = event_id();
    let received = Utc::now() - age;
    let event = NewEvent {
        id: id.clone(),
        event_type: event_type.to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: false,
        created: received - TimeDelta::seconds(2),
        payload: format!(
            r#"{{"id":"{id}","object":"event","type":"{event_type}","data":{{"object":{{}}}}}}"#
        ),
        received_at: received,
    };
    let store = db.store();
    match error {
        Some(error) => {
            let failure = billing_ports::Failure {
                error,
                kind: billing_ports::FailureKind::Transient,
                backoff: billing_ports::Backoff::default(),
            };
            store
                .record_failure(&event, &failure, received)
                .await
                .unwrap()
        }
        None => {
            store
                .transaction(|tx| -> TxFuture<'_, '_, (), StoreError> {
                    Box::pin(async move {
                        tx.claim_event(&event, status, received).await?;
                        Ok(())
                    })
                })
                .await
                .unwrap();
        }
    }
    id
}

//! `billingctl deliveries list | replay`: the push of the change feed to the product's URLs,
//! as the server records it (one delivery per change record and endpoint, one attempt row per
//! try).

use std::path::PathBuf;

use billing_ports::{DeliveryFilter, DeliverySummary, PushStore, ReplaySelection};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::DeliveriesCommand;
use crate::error::CtlError;
use crate::output::{Output, Table, shorten, time_and_age};

/// A delivery as `deliveries list --json` shows it.
#[derive(Serialize)]
struct Delivery {
    id: i64,
    endpoint_id: String,
    endpoint: String,
    change_cursor: i64,
    change_id: String,
    kind: String,
    user_id: String,
    status: &'static str,
    attempts: u32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DeliverySummary> for Delivery {
    fn from(d: DeliverySummary) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            endpoint: d.endpoint,
            change_cursor: d.change_seq,
            change_id: d.change_id,
            kind: d.kind,
            user_id: d.user_id,
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize)]
struct Deliveries {
    deliveries: Vec<Delivery>,
}

#[derive(Serialize)]
struct Replayed {
    replayed: usize,
}

/// Runs one `deliveries` command.
pub(crate) async fn run(
    config: &Option<PathBuf>,
    command: DeliveriesCommand,
    out: &Output,
) -> Result<(), CtlError> {
    let config = crate::app::config(config)?;
    let app = crate::app::open(&config)?;
    let store = app.store();
    let now = Utc::now();
    match command {
        DeliveriesCommand::List {
            status,
            endpoint,
            limit,
        } => {
            let filter = DeliveryFilter {
                status: status.map(Into::into),
                endpoint_id: endpoint,
                limit,
            };
            let listed = Deliveries {
                deliveries: store
                    .push_deliveries(&filter)
                    .await?
                    .into_iter()
                    .map(Delivery::from)
                    .collect(),
            };
            out.print(&listed, |l| {
                if l.deliveries.is_empty() {
                    return "no deliveries".to_owned();
                }
                let mut table = Table::new(&[
                    "ID", "STATUS", "ATTEMPTS", "CHANGE", "KIND", "USER", "ENDPOINT", "LAST",
                    "NEXT",
                ]);
                for d in &l.deliveries {
                    let last = match (&d.last_error, d.last_status_code) {
                        (Some(error), _) => shorten(error, 60),
                        (None, Some(code)) => format!("HTTP {code}"),
                        (None, None) => "-".to_owned(),
                    };
                    table.row(vec![
                        d.id.to_string(),
                        d.status.to_owned(),
                        d.attempts.to_string(),
                        format!("{} ({})", d.change_id, d.change_cursor),
                        d.kind.clone(),
                        d.user_id.clone(),
                        d.endpoint.clone(),
                        last,
                        d.next_attempt_at
                            .map_or_else(|| "-".to_owned(), |t| time_and_age(t, now)),
                    ]);
                }
                table.to_string()
            })
        }
        DeliveriesCommand::Replay {
            ids,
            failed,
            endpoint,
        } => {
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            let selection = if failed {
                ReplaySelection::Failed {
                    endpoint_id: endpoint,
                }
            } else {
                ReplaySelection::Ids(ids.clone())
            };
            let replayed = store.replay_pushes(&selection, now).await?;
            if !failed && replayed < ids.len() {
                return Err(CtlError::NotFound(format!(
                    "{} of {} delivery id(s) not found",
                    ids.len() - replayed,
                    ids.len()
                )));
            }
            out.print(&Replayed { replayed }, |r| {
                format!(
                    "{} deliveries due again; the pushing server sends them at its next round",
                    r.replayed
                )
            })
        }
    }
}

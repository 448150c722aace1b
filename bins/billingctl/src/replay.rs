//! `billingctl events replay ID… | --failed [--since …]`: stored payloads re-applied through
//! the server's own exactly-once ingest (`BillingApp::replay_event`, `replay_failed`), each
//! event's outcome reported.

use billing_app::{BillingApp, EventReplay, ReplayOutcome};
use billing_store_diesel::DieselStore;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::ReplayArgs;
use crate::error::CtlError;
use crate::output::{Output, Table, shorten};

/// What `--json` prints: every event's outcome and the counts by outcome.
#[derive(Serialize)]
pub(crate) struct Replayed {
    /// Each event handled, in order.
    events: Vec<Outcome>,
    /// How many events had each outcome.
    counts: Counts,
}

/// One event's outcome.
#[derive(Serialize)]
struct Outcome {
    id: String,
    /// `applied`, `ignored`, `stale`, `duplicate`, `failed` or `not_found`.
    outcome: &'static str,
    /// For `duplicate`: the status it already had.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// For `failed`: the error and whether the sweeper may retry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_kind: Option<&'static str>,
}

/// Events by outcome.
#[derive(Serialize, Default)]
struct Counts {
    applied: usize,
    ignored: usize,
    stale: usize,
    duplicate: usize,
    failed: usize,
    not_found: usize,
}

/// Runs a replay and reports it; an event still failing or not found makes it fail (exit 1),
/// with the outcomes in the error's details under `--json`.
pub(crate) async fn run(
    app: &BillingApp<DieselStore>,
    args: ReplayArgs,
    now: DateTime<Utc>,
    out: &Output,
) -> Result<(), CtlError> {
    let replays = if args.failed {
        let progress = out.progress(None, "replaying failed events");
        let replays = app
            .replay_failed(args.since.map(|s| s.at(now)), |_| progress.advance(1))
            .await;
        progress.finish();
        replays?
    } else {
        let progress = out.progress(Some(args.ids.len() as u64), "replaying");
        let mut replays = Vec::with_capacity(args.ids.len());
        for id in args.ids {
            let outcome = app.replay_event(&id).await;
            progress.advance(1);
            replays.push(EventReplay {
                id,
                outcome: outcome?,
            });
        }
        progress.finish();
        replays
    };
    let replayed = summarize(replays);
    let unapplied = replayed.counts.failed + replayed.counts.not_found;
    if unapplied > 0 && out.is_json() {
        return Err(CtlError::Unapplied {
            unapplied,
            total: replayed.events.len(),
            details: serde_json::to_value(&replayed)?,
        });
    }
    out.print(&replayed, human)?;
    if unapplied > 0 {
        return Err(CtlError::Unapplied {
            unapplied,
            total: replayed.events.len(),
            details: serde_json::Value::Null,
        });
    }
    Ok(())
}

/// The outcomes as printed, with their counts.
fn summarize(replays: Vec<EventReplay>) -> Replayed {
    let mut counts = Counts::default();
    let events = replays
        .into_iter()
        .map(|EventReplay { id, outcome }| {
            let count = match &outcome {
                ReplayOutcome::Applied => &mut counts.applied,
                ReplayOutcome::Ignored => &mut counts.ignored,
                ReplayOutcome::Stale => &mut counts.stale,
                ReplayOutcome::Duplicate(_) => &mut counts.duplicate,
                ReplayOutcome::Failed { .. } => &mut counts.failed,
                ReplayOutcome::NotFound => &mut counts.not_found,
            };
            *count += 1;
            let label = outcome.label();
            let (status, error, failure_kind) = match outcome {
                ReplayOutcome::Duplicate(status) => (Some(status.as_str()), None, None),
                ReplayOutcome::Failed { error, kind } => (None, Some(error), Some(kind.as_str())),
                _ => (None, None, None),
            };
            Outcome {
                id,
                outcome: label,
                status,
                error,
                failure_kind,
            }
        })
        .collect();
    Replayed { events, counts }
}

/// The table people read.
fn human(replayed: &Replayed) -> String {
    if replayed.events.is_empty() {
        return "no event to replay".to_owned();
    }
    let mut table = Table::new(&["ID", "OUTCOME", "DETAIL"]);
    for e in &replayed.events {
        let detail = match (e.status, &e.error, e.failure_kind) {
            (Some(status), _, _) => format!("already {status}: nothing changed"),
            (_, Some(error), Some(kind)) => format!("{kind}: {}", shorten(error, 80)),
            _ if e.outcome == "not_found" => "no stored event with this id".to_owned(),
            _ => String::new(),
        };
        table.row(vec![e.id.clone(), e.outcome.to_owned(), detail]);
    }
    let c = &replayed.counts;
    format!(
        "{table}\n{} applied, {} ignored, {} stale, {} duplicate, {} failed, {} not found",
        c.applied, c.ignored, c.stale, c.duplicate, c.failed, c.not_found
    )
}

//! `billingctl events list | show | replay | purge` (replay in `replay`).

use std::path::PathBuf;

use billing_ports::FailureKind;
use billing_ports::{BillingStore, EventFilter, EventRecord, EventSummary};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{EventsCommand, ListArgs};
use crate::error::CtlError;
use crate::output::{Output, Table, shorten, time_and_age};

/// How long Stripe redelivers an event: a done event younger than this is still the duplicate
/// check of a redelivery, so `purge` keeps it unless forced.
const STRIPE_REDELIVERY: TimeDelta = TimeDelta::days(3);

/// Runs one `events` command.
pub(crate) async fn run(
    config: &Option<PathBuf>,
    command: EventsCommand,
    out: &Output,
) -> Result<(), CtlError> {
    let config = crate::app::config(config)?;
    let app = crate::app::open(&config)?;
    let now = Utc::now();
    match command {
        EventsCommand::List(args) => list(app.store().as_ref(), args, now, out).await,
        EventsCommand::Show { id } => {
            let max_attempts = config.server.jobs.max_attempts;
            show(app.store().as_ref(), &id, now, max_attempts, out).await
        }
        EventsCommand::Replay(args) => crate::replay::run(&app, args, now, out).await,
        EventsCommand::Purge { older_than, force } => {
            if older_than.0 < STRIPE_REDELIVERY && !force {
                return Err(CtlError::PurgeTooRecent {
                    given: older_than.to_string(),
                });
            }
            let before = now - older_than.0;
            let progress = out.progress(None, "purging done events");
            let purged = app
                .purge_events_with(before, &mut |n| progress.advance(n))
                .await;
            progress.finish();
            let purged = Purged {
                purged: purged?,
                before,
            };
            out.print(&purged, |p| {
                format!(
                    "purged {} done event(s) received before {} (failed events are kept)",
                    p.purged,
                    time_and_age(p.before, now)
                )
            })
        }
    }
}

/// An event in `events list --json`.
#[derive(Serialize)]
struct Listed {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    status: &'static str,
    attempts: u32,
    created: DateTime<Utc>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl From<EventSummary> for Listed {
    fn from(e: EventSummary) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            status: e.status.as_str(),
            attempts: e.attempts,
            created: e.created,
            received_at: e.received_at,
            processed_at: e.processed_at,
            last_error: e.last_error,
        }
    }
}

#[derive(Serialize)]
struct Listing {
    events: Vec<Listed>,
    /// True when more events matched than `--limit` let through.
    truncated: bool,
}

async fn list<S: BillingStore>(
    store: &S,
    args: ListArgs,
    now: DateTime<Utc>,
    out: &Output,
) -> Result<(), CtlError> {
    let filter = EventFilter {
        status: args.status.map(Into::into),
        event_type: args.event_type,
        since: args.since.map(|s| s.at(now)),
        // One more than shown, to tell whether the limit cut the list.
        limit: args.limit.saturating_add(1),
    };
    let mut events = store.list_events(&filter).await?;
    let truncated = events.len() > args.limit as usize;
    events.truncate(args.limit as usize);
    let listing = Listing {
        events: events.into_iter().map(Listed::from).collect(),
        truncated,
    };
    out.print(&listing, |listing| {
        if listing.events.is_empty() {
            return "no events match".to_owned();
        }
        let mut table = Table::new(&["ID", "TYPE", "STATUS", "ATTEMPTS", "RECEIVED", "LAST ERROR"]);
        for e in &listing.events {
            table.row(vec![
                e.id.clone(),
                e.event_type.clone(),
                e.status.to_owned(),
                e.attempts.to_string(),
                time_and_age(e.received_at, now),
                e.last_error
                    .as_deref()
                    .map_or_else(String::new, |e| shorten(e, 60)),
            ]);
        }
        if listing.truncated {
            let shown = listing.events.len();
            return format!("{table}\n(first {shown} shown; --limit to see more)");
        }
        table.to_string()
    })
}

/// `events show --json`: the event with its payload as JSON.
#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    event: Listed,
    /// `transient` (the sweeper retries it) or `permanent`, for a failed event.
    failure_kind: Option<&'static str>,
    /// When the sweeper retries it next, if it will.
    next_attempt_at: Option<DateTime<Utc>>,
    /// True when the sweeper gave up on it (a transient failure after SWEEPER_MAX_ATTEMPTS
    /// attempts): only a replay by hand applies it.
    given_up: bool,
    payload: Value,
}

async fn show<S: BillingStore>(
    store: &S,
    id: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
    out: &Output,
) -> Result<(), CtlError> {
    let Some(event) = store.event(id).await? else {
        return Err(CtlError::NotFound(format!("no stored event {id:?}")));
    };
    let EventRecord {
        id,
        event_type,
        status,
        attempts,
        last_error,
        created,
        payload,
        received_at,
        processed_at,
        failure_kind,
        next_attempt_at,
    } = event;
    // The sweeper retries a transient failure while it has failed fewer than max_attempts
    // times (`BillingApp::replay_failed`); past that, the stored next attempt never comes.
    let given_up = failure_kind == Some(FailureKind::Transient) && attempts >= max_attempts;
    let next_attempt_at = next_attempt_at.filter(|_| !given_up);
    // A stored payload is the verified body; one that is not JSON is shown as text.
    let payload = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    let shown = Shown {
        event: Listed {
            id,
            event_type,
            status: status.as_str(),
            attempts,
            created,
            received_at,
            processed_at,
            last_error,
        },
        failure_kind: failure_kind.map(|k| k.as_str()),
        next_attempt_at,
        given_up,
        payload,
    };
    out.print(&shown, |s| {
        let e = &s.event;
        let mut table = Table::new(&["", ""]);
        let mut field = |name: &str, value: String| table.row(vec![format!("{name}:"), value]);
        field("id", e.id.clone());
        field("type", e.event_type.clone());
        field("status", e.status.to_owned());
        field("attempts", e.attempts.to_string());
        field("created", time_and_age(e.created, now));
        field("received", time_and_age(e.received_at, now));
        field(
            "processed",
            e.processed_at
                .map_or_else(|| "-".to_owned(), |t| time_and_age(t, now)),
        );
        field(
            "last error",
            e.last_error.clone().unwrap_or_else(|| "-".to_owned()),
        );
        if let Some(kind) = s.failure_kind {
            let retry = match s.next_attempt_at {
                _ if s.given_up => {
                    format!("given up after {} attempts: replay it by hand", e.attempts)
                }
                Some(t) => format!("next automatic attempt {}", time_and_age(t, now)),
                None => "not retried automatically (replay it by hand)".to_owned(),
            };
            field("failure", format!("{kind}; {retry}"));
        }
        let table = table.to_string();
        let fields = table.lines().skip(1).collect::<Vec<_>>().join("\n");
        let payload = serde_json::to_string_pretty(&s.payload).unwrap_or_default();
        format!("{fields}\npayload:\n{payload}")
    })
}

/// `events purge --json`.
#[derive(Serialize)]
struct Purged {
    purged: u64,
    before: DateTime<Utc>,
}

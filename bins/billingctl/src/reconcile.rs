//! `billingctl reconcile [--since 3d | --customer cus_… | --all] [--dry-run]`: local state
//! reconciled with Stripe (`BillingApp::reconcile`): the Events API caught up through the
//! server's own ingest, subscriptions compared and repaired, every difference reported.

use billing_app::{BillingApp, ReconcileReport, ReconcileScope};
use billing_ports::ReconcileCursor;
use billing_store_diesel::DieselStore;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cli::ReconcileArgs;
use crate::error::CtlError;
use crate::output::{Output, Table, shorten, time_and_age};

/// Runs one reconciliation and reports it. Events it stored as failed make it fail (exit 1)
/// after the report: they need a look (`events show`) or the sweeper.
pub(crate) async fn run(
    app: &BillingApp<DieselStore>,
    args: ReconcileArgs,
    now: DateTime<Utc>,
    out: &Output,
) -> Result<(), CtlError> {
    let scope = match (args.since, args.customer, args.all) {
        (Some(since), _, _) => ReconcileScope::Since(since.span(now).ok_or_else(|| {
            CtlError::BadArgument(format!(
                "--since {} is in the future",
                since.at(now).to_rfc3339()
            ))
        })?),
        (_, Some(customer), _) => ReconcileScope::Customer(customer),
        (_, _, true) => ReconcileScope::All,
        _ => ReconcileScope::Events,
    };
    let progress = out.progress(None, "reconciling with Stripe");
    let report = app.reconcile(scope, args.dry_run).await;
    progress.finish();
    let report = report?;
    let document = document(&report);
    out.print(&document, |_| human(&report, now))?;
    match report.events.failed.len() {
        0 => Ok(()),
        failed => Err(CtlError::Unapplied {
            unapplied: failed,
            total: report.events.listed,
            details: Value::Null,
        }),
    }
}

/// The scope as a word and its value.
fn scope(scope: &ReconcileScope) -> (&'static str, Option<String>) {
    match scope {
        ReconcileScope::Since(span) => ("since", Some(format!("{}s", span.num_seconds()))),
        ReconcileScope::Customer(customer) => ("customer", Some(customer.clone())),
        ReconcileScope::All => ("all", None),
        ReconcileScope::Events => ("events", None),
    }
}

fn cursor(cursor: Option<&ReconcileCursor>) -> Value {
    cursor.map_or(Value::Null, |c| {
        json!({
            "event_id": c.event_id,
            "event_created": c.event_created,
            "last_success_at": c.last_success_at,
        })
    })
}

/// What `--json` prints (stable field names).
fn document(report: &ReconcileReport) -> Value {
    let (scope, value) = scope(&report.scope);
    let e = &report.events;
    json!({
        "scope": scope,
        "scope_value": value,
        "dry_run": report.dry_run,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "events": {
            "since": e.since,
            "capped": e.capped,
            "gap_from": e.gap_from,
            "listed": e.listed,
            "skipped": e.skipped,
            "applied": e.applied,
            "ignored": e.ignored,
            "stale": e.stale,
            "duplicates": e.duplicates,
            "would_ingest": e.would_ingest,
            "failed": e.failed.iter().map(|f| json!({"id": f.id, "error": f.error})).collect::<Vec<_>>(),
            "cursor_before": cursor(e.cursor_before.as_ref()),
            "cursor_after": cursor(e.cursor_after.as_ref()),
        },
        "subscriptions_checked": report.subscriptions_checked,
        "differences": report.differences.iter().map(|d| json!({
            "subscription_id": d.subscription_id,
            "customer_id": d.customer_id,
            "field": d.kind.as_str(),
            "before": d.before,
            "after": d.after,
            "repaired": d.repaired,
        })).collect::<Vec<_>>(),
        "unreadable": report.unreadable.iter().map(|u| json!({"id": u.id, "error": u.error})).collect::<Vec<_>>(),
    })
}

/// The report people read.
fn human(report: &ReconcileReport, now: DateTime<Utc>) -> String {
    let mut lines = Vec::new();
    let (scope, value) = scope(&report.scope);
    let what = if report.dry_run {
        "dry run (nothing changed)"
    } else {
        "applied"
    };
    lines.push(format!(
        "reconciliation, scope {scope}{}: {what}",
        value.map(|v| format!(" {v}")).unwrap_or_default()
    ));
    let e = &report.events;
    let since = e
        .since
        .map_or_else(|| "-".to_owned(), |t| time_and_age(t, now));
    lines.push(format!("events since {since}: {} listed", e.listed));
    if e.capped {
        lines.push("  (Stripe keeps 30 days of events: the span was cut to that)".to_owned());
    }
    if let Some(gap) = e.gap_from {
        lines.push(format!(
            "  warning: events created between {} and the window's start could not be checked (older than Stripe keeps); the subscription sweep repairs state",
            time_and_age(gap, now)
        ));
    }
    if report.dry_run {
        lines.push(format!(
            "  {} not done here would be ingested, {} already done",
            e.would_ingest, e.duplicates
        ));
    } else {
        lines.push(format!(
            "  {} applied, {} ignored, {} stale, {} duplicates (already done), {} failed, {} of other customers",
            e.applied,
            e.ignored,
            e.stale,
            e.duplicates,
            e.failed.len(),
            e.skipped
        ));
    }
    for failed in &e.failed {
        lines.push(format!(
            "  failed {}: {} (see `billingctl events show {}`)",
            failed.id,
            shorten(&failed.error, 80),
            failed.id
        ));
    }
    let moved = e.cursor_after != e.cursor_before;
    let at = |c: &Option<ReconcileCursor>| {
        c.as_ref()
            .and_then(|c| c.event_id.clone())
            .unwrap_or_else(|| "none".to_owned())
    };
    lines.push(format!(
        "  cursor: {}{}",
        at(&e.cursor_after),
        if moved {
            format!(" (was {})", at(&e.cursor_before))
        } else {
            " (unchanged)".to_owned()
        }
    ));
    lines.push(format!(
        "subscriptions: {} checked, {} field(s) differed",
        report.subscriptions_checked,
        report.differences.len()
    ));
    if !report.differences.is_empty() {
        let mut table = Table::new(&[
            "SUBSCRIPTION",
            "CUSTOMER",
            "FIELD",
            "BEFORE",
            "AFTER",
            "REPAIRED",
        ]);
        for d in &report.differences {
            let show = |v: &Option<String>| v.as_deref().map_or("-".to_owned(), |v| shorten(v, 40));
            table.row(vec![
                d.subscription_id.clone(),
                d.customer_id.clone(),
                d.kind.as_str().to_owned(),
                show(&d.before),
                show(&d.after),
                if d.repaired { "yes" } else { "no" }.to_owned(),
            ]);
        }
        lines.push(table.to_string());
    }
    for u in &report.unreadable {
        lines.push(format!(
            "  unreadable subscription {}: {}",
            u.id,
            shorten(&u.error, 80)
        ));
    }
    lines.join("\n")
}

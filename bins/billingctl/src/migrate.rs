//! `billingctl migrate [--check]`.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::MigrateArgs;
use crate::error::CtlError;
use crate::output::Output;

#[derive(Serialize)]
struct Migrations {
    /// `--check`: the migrations not applied; else: the ones just applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<Vec<String>>,
}

/// Applies the pending migrations (listing them), or with `--check` only lists them and
/// fails when there are any.
pub(crate) async fn run(
    config: &Option<PathBuf>,
    args: MigrateArgs,
    out: &Output,
) -> Result<(), CtlError> {
    let config = crate::app::config(config)?;
    let store = config.server.database.open()?;
    let pending = store.pending_migrations().await?;
    if args.check {
        if !pending.is_empty() {
            return Err(CtlError::Pending(pending));
        }
        let report = Migrations {
            pending: Some(pending),
            applied: None,
        };
        return out.print(&report, |_| "the database is up to date".to_owned());
    }
    store.run_migrations().await?;
    let report = Migrations {
        pending: None,
        applied: Some(pending),
    };
    out.print(&report, |r| match r.applied.as_deref() {
        Some([]) | None => "the database is up to date; nothing applied".to_owned(),
        Some(applied) => format!("applied {}:\n  {}", applied.len(), applied.join("\n  ")),
    })
}

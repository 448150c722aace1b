//! `billingctl`: the operator's tool for the billing server. It reads the server's own
//! configuration (`--config`, `billing.toml`, environment: `billing_server::config`) and works
//! on its database directly, or sends signed events to a running server (`trigger`).
//!
//! Output is for people by default (aligned tables, times with their age) and one JSON
//! document with `--json`; long work shows a progress bar on a terminal. Exit codes: 0 done,
//! 1 the command failed or found problems (an unknown event, pending migrations, a bad
//! catalog), 2 the command line or the configuration is wrong.

mod app;
mod cli;
mod deliveries;
mod error;
mod events;
mod keys;
mod migrate;
mod output;
mod plans;
mod progress;
mod reconcile;
mod replay;
mod trigger;
mod when;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::Output;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let out = Output::new(cli.json);
    let result = match cli.command {
        Command::Deliveries(command) => deliveries::run(&cli.config, command, &out).await,
        Command::Events(command) => events::run(&cli.config, command, &out).await,
        Command::Keys(command) => keys::run(&cli.config, command, &out).await,
        Command::Migrate(args) => migrate::run(&cli.config, args, &out).await,
        Command::Plans(command) => plans::run(command, &out),
        Command::Reconcile(args) => reconcile(&cli.config, args, &out).await,
        Command::Trigger(args) => trigger::run(&cli.config, args, &out).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => out.fail(&error),
    }
}

/// `billingctl reconcile`: the app with the configured Stripe client.
async fn reconcile(
    config: &Option<std::path::PathBuf>,
    args: cli::ReconcileArgs,
    out: &Output,
) -> Result<(), error::CtlError> {
    let config = app::config(config)?;
    let app = app::open(&config)?;
    reconcile::run(&app, args, chrono::Utc::now(), out).await
}

/// Warnings and errors of the libraries go to stderr (`RUST_LOG` changes the level).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

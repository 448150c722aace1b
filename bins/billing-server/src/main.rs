//! The billing server: `billing-server` (serve) and `billing-server migrate`. It reads the
//! configuration and hands it to [`billing_http::Server`]. The operator's commands (events,
//! keys, trigger, …) are in `billingctl`.

use std::path::PathBuf;
use std::process::ExitCode;

use billing_server::{config, serve};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Stripe billing server")]
struct Cli {
    /// A TOML configuration file (default: ./billing.toml when present); environment
    /// variables override it.
    #[arg(long, global = true, env = "BILLING_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default): runs pending migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    serve::init_tracing(config.log_format);
    match cli.command {
        Some(Command::Migrate) => serve::report(serve::migrate(config).await.map_err(Into::into)),
        _ => serve::report(serve::serve(config).await),
    }
}
